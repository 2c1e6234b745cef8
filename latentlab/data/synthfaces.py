"""SynthFaces: procedurally drawn, face-like portraits whose generative factors are known exactly.

Every image is a function of a factor vector and a detail seed, drawn with anti-aliased OpenCV primitives
on a 4x super-sampled canvas and reduced with area averaging, so the same (factors, seed, resolution) gives
the same pixels everywhere. The factors are the ground truth for direction discovery and for the
disentanglement metrics; the detail seed drives what the factors do not determine (freckles, hair strands,
skin and background texture, the exact iris shade), which is what StyleGAN's noise inputs are for.

Factors (``FACTORS``; all floats, binaries are 0.0 or 1.0):

========== ============ ======================================================================
name       range        effect
========== ============ ======================================================================
yaw        [-1, 1]      head turned to the image's left (-1) or right (+1), about +-35 degrees
roll       [-1, 1]      head tilted, +-18 degrees (positive = clockwise on screen)
face_width [0, 1]       narrow and long (0) to wide and round (1)
skin_tone  [0, 1]       light (0) to dark (1) along a skin palette
hair_color [0, 1]       black, dark brown, auburn, blond, light grey as it goes 0 -> 1
hair_length[0, 1]       cropped (0) to shoulder length (1)
smile      [0, 1]       downturned (0), neutral (~0.35), broad open smile (1); "smiling" = smile > 0.5
eyes_open  {0, 1}       closed (0) or open (1)
glasses    {0, 1}       no glasses (0) or round glasses (1)
bg_hue     [0, 1)       hue of the background
bg_light   [0, 1]       dark (0) to light (1) background
light_dir  [-1, 1]      key light from the image's left (-1), front (0) or right (+1)
shirt_hue  [0, 1)       hue of the shirt
========== ============ ======================================================================

``sample_factors`` draws them independently: uniform on the ranges, binaries with probability 0.5
(eyes open 0.75, glasses 0.35).
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..utils import bar_disable

FACTORS: tuple[str, ...] = ("yaw", "roll", "face_width", "skin_tone", "hair_color", "hair_length", "smile",
                            "eyes_open", "glasses", "bg_hue", "bg_light", "light_dir", "shirt_hue")  # fmt: skip
BINARY: tuple[str, ...] = ("eyes_open", "glasses")
RANGES: dict[str, tuple[float, float]] = {
    "yaw": (-1.0, 1.0), "roll": (-1.0, 1.0), "face_width": (0.0, 1.0), "skin_tone": (0.0, 1.0),
    "hair_color": (0.0, 1.0), "hair_length": (0.0, 1.0), "smile": (0.0, 1.0), "eyes_open": (0.0, 1.0),
    "glasses": (0.0, 1.0), "bg_hue": (0.0, 1.0), "bg_light": (0.0, 1.0), "light_dir": (-1.0, 1.0),
    "shirt_hue": (0.0, 1.0),
}  # fmt: skip
# Derived binary attributes: name -> (factor, threshold); attribute = factor > threshold.
ATTRIBUTES: dict[str, tuple[str, float]] = {"smiling": ("smile", 0.5), "eyes_open": ("eyes_open", 0.5),
                                            "glasses": ("glasses", 0.5), "long_hair": ("hair_length", 0.5)}  # fmt: skip

_SUPERSAMPLE = 4
# Palettes, sampled by linear interpolation (RGB 0..255).
_SKIN = np.array([[255, 224, 200], [241, 194, 160], [214, 160, 120], [170, 114, 78], [112, 70, 45], [74, 46, 32]])
_HAIR = np.array([[22, 18, 16], [70, 44, 28], [140, 64, 30], [214, 174, 96], [200, 200, 196]])


def _palette(p: np.ndarray, t: float) -> np.ndarray:
    x = float(np.clip(t, 0, 1)) * (len(p) - 1)
    i = min(int(x), len(p) - 2)
    return p[i] + (p[i + 1] - p[i]) * (x - i)


@dataclass(frozen=True)
class Face:
    """One portrait's factors (see the module docstring for ranges and meaning)."""

    yaw: float = 0.0
    roll: float = 0.0
    face_width: float = 0.5
    skin_tone: float = 0.3
    hair_color: float = 0.2
    hair_length: float = 0.3
    smile: float = 0.6
    eyes_open: float = 1.0
    glasses: float = 0.0
    bg_hue: float = 0.6
    bg_light: float = 0.6
    light_dir: float = 0.0
    shirt_hue: float = 0.55

    @classmethod
    def from_mapping(cls, m: Mapping[str, float]) -> Face:
        """Build from ``{name: value}``; unknown names and out-of-range values are errors."""
        unknown = sorted(set(m) - set(FACTORS))
        if unknown:
            raise ValueError(f"unknown SynthFaces factor(s): {', '.join(unknown)}; known: {', '.join(FACTORS)}")
        for k, v in m.items():
            lo, hi = RANGES[k]
            if not lo <= float(v) <= hi:
                raise ValueError(f"factor {k}={v} is outside its range [{lo}, {hi}]")
        return cls(**{k: float(v) for k, v in m.items()})

    def vector(self) -> np.ndarray:
        """``[len(FACTORS)]`` float32 in ``FACTORS`` order."""
        return np.array([getattr(self, k) for k in FACTORS], dtype=np.float32)

    def attributes(self) -> dict[str, bool]:
        """The derived binary attributes (``ATTRIBUTES``)."""
        return {name: getattr(self, f) > t for name, (f, t) in ATTRIBUTES.items()}


def sample_factors(rng: np.random.Generator) -> Face:
    """Draw one :class:`Face` with independent factors (uniform; eyes open 75%, glasses 35%)."""
    u = rng.random(len(FACTORS))
    d = {}
    for k, x in zip(FACTORS, u, strict=True):
        lo, hi = RANGES[k]
        d[k] = lo + (hi - lo) * float(x)
    d["eyes_open"] = float(u[FACTORS.index("eyes_open")] < 0.75)
    d["glasses"] = float(u[FACTORS.index("glasses")] < 0.35)
    return Face(**d)


# --------------------------------------------------------------------------------------------------
# Drawing.


class _Canvas:
    """A super-sampled RGB float canvas with a head transform (roll about the neck) in unit coordinates."""

    def __init__(self, size: int, roll_deg: float, pivot: tuple[float, float]):
        self.size = size
        self.img = np.zeros((size, size, 3), np.float32)
        self.roll = roll_deg
        c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
        self._rot = np.array([[c, -s], [s, c]])
        self._pivot = np.array(pivot)

    def p(self, x: float, y: float, head: bool = True) -> tuple[int, int]:
        """Unit coordinates (0..1, y down) -> integer pixel coordinates with 4 fractional bits."""
        v = np.array([x, y])
        if head:
            v = self._pivot + self._rot @ (v - self._pivot)
        return int(round(v[0] * self.size * 16)), int(round(v[1] * self.size * 16))

    def r(self, radius: float) -> int:
        return max(int(round(radius * self.size * 16)), 1)

    def ellipse(self, mask_or_img, x, y, rx, ry, color, angle=0.0, start=0, end=360, thickness=-1, head=True):
        ang = angle + (self.roll if head else 0.0)
        cv2.ellipse(mask_or_img, self.p(x, y, head), (self.r(rx), self.r(ry)), ang, start, end, color,
                    thickness if thickness < 0 else max(int(thickness * self.size), 1), cv2.LINE_AA, 4)

    def poly(self, target, pts, color, head=True):
        arr = np.array([self.p(x, y, head) for x, y in pts], np.int32)
        cv2.fillPoly(target, [arr], color, cv2.LINE_AA, 4)

    def polyline(self, target, pts, color, thickness, head=True):
        arr = np.array([self.p(x, y, head) for x, y in pts], np.int32)
        cv2.polylines(target, [arr], False, color, max(int(thickness * self.size), 1), cv2.LINE_AA, 4)

    def mask(self) -> np.ndarray:
        return np.zeros((self.size, self.size), np.float32)

    def paint(self, mask: np.ndarray, color) -> None:
        """Alpha-blend ``color`` where ``mask`` (0..1) is set."""
        m = mask[..., None]
        self.img = self.img * (1 - m) + np.asarray(color, np.float32)[None, None] / 255.0 * m


def render(face: Face, resolution: int = 64, seed: int = 0) -> np.ndarray:
    """Draw ``face`` at ``resolution`` with detail seed ``seed``.

    Args:
        face: the factors.
        resolution: output side, a power of two in 32..256 (other sizes >= 16 work too).
        seed: drives the stochastic detail only (freckles, strands, textures), never a factor.
    Returns:
        uint8 ``[resolution, resolution, 3]`` RGB.
    """
    if resolution < 16:
        raise ValueError(f"SynthFaces renders at 16 px or more, got {resolution}")
    detail = np.random.default_rng([int(seed), 0x5F])
    S = resolution * _SUPERSAMPLE
    f = face
    skin = _palette(_SKIN, f.skin_tone)
    hair = _palette(_HAIR, f.hair_color)
    bg = np.array(colorsys.hsv_to_rgb(f.bg_hue % 1.0, 0.45, 0.3 + 0.6 * f.bg_light)) * 255
    shirt = np.array(colorsys.hsv_to_rgb(f.shirt_hue % 1.0, 0.6, 0.55)) * 255

    # Head geometry in unit coordinates.
    cx, cy = 0.5, 0.47
    fw = 0.19 + 0.06 * f.face_width  # half width of the face
    fh = 0.27 - 0.03 * f.face_width  # half height
    yaw = f.yaw
    cv = _Canvas(S, roll_deg=18.0 * f.roll, pivot=(cx, cy + fh))
    face_cx = cx + 0.03 * yaw
    feat = lambda dx: face_cx + dx * (1 - 0.25 * abs(yaw)) + 0.09 * yaw  # noqa: E731  (features turn with yaw)

    # Background with a faint vertical gradient and texture.
    yy = np.linspace(-1, 1, S, dtype=np.float32)[:, None, None]
    cv.img[:] = bg / 255.0 * (1.0 - 0.12 * yy)
    cv.img += detail.normal(0, 0.015, (S // 8, S // 8, 1)).repeat(8, 0).repeat(8, 1).astype(np.float32)

    # Long hair behind the head (drawn first).
    back = cv.mask()
    hl = f.hair_length
    if hl > 0.05:
        length = 0.05 + 0.42 * hl
        half_w = fw + 0.035 + 0.02 * hl
        cv.poly(back, [(face_cx - half_w, cy - 0.05), (face_cx + half_w, cy - 0.05),
                       (face_cx + half_w, cy + length), (face_cx - half_w, cy + length)], 1.0)  # fmt: skip
        cv.ellipse(back, face_cx, cy + length, half_w, 0.04, 1.0)  # rounded ends
        cv.paint(back, hair * 0.85)

    # Shoulders, shirt and neck (not rolled: the body stays upright).
    body = cv.mask()
    cv.ellipse(body, 0.5, 1.12, 0.42, 0.3, 1.0, head=False)
    cv.paint(body, shirt)
    neck = cv.mask()
    cv.poly(neck, [(cx - 0.075, cy + fh - 0.06), (cx + 0.075, cy + fh - 0.06), (cx + 0.085, 0.9),
                   (cx - 0.085, 0.9)], 1.0, head=False)  # fmt: skip
    cv.paint(neck, skin * 0.82)

    # Ears: the one on the side the head turns away from shows more.
    for side in (-1, 1):
        ex = face_cx + side * (fw - 0.01) - 0.05 * yaw
        vis = 1.0 - 0.8 * max(0.0, side * yaw)
        ear = cv.mask()
        cv.ellipse(ear, ex, cy + 0.01, 0.028 * vis + 0.004, 0.05, 1.0)
        cv.paint(ear, skin * 0.92)

    # Face.
    face_m = cv.mask()
    cv.ellipse(face_m, face_cx, cy, fw, fh, 1.0)
    cv.ellipse(face_m, face_cx, cy + fh * 0.45, fw * 0.78, fh * 0.62, 1.0)  # the jaw
    cv.paint(face_m, skin)
    # Skin texture and freckles (detail): the random draws do not depend on the factors.
    tex = detail.normal(0, 1, (S // 4, S // 4)).astype(np.float32)
    tex = cv2.resize(tex, (S, S), interpolation=cv2.INTER_LINEAR) * 0.018
    cv.img += (face_m * tex)[..., None]
    n_freckles = int(detail.integers(0, 25))
    fpos = detail.random((25, 2))
    freck = cv.mask()
    for k in range(n_freckles):
        fx = feat((fpos[k, 0] - 0.5) * 1.3 * fw)
        fy = cy + 0.02 + fpos[k, 1] * 0.08
        cv.ellipse(freck, fx, fy, 0.004, 0.004, 1.0)
    cv.paint(freck * face_m * 0.5, skin * 0.72)
    # Cheeks.
    for side in (-1, 1):
        cheek = cv.mask()
        cv.ellipse(cheek, feat(side * 0.62 * fw), cy + 0.075, 0.035, 0.022, 1.0)
        cv.paint(cheek * 0.3, (225, 110, 110))

    # Hair on top: a cap over the forehead; strands are detail.
    cap = cv.mask()
    cv.ellipse(cap, face_cx, cy - fh * 0.4, fw * 1.08, fh * 0.75, 1.0, start=180, end=360)
    cv.poly(cap, [(face_cx - fw * 1.08, cy - fh * 0.4), (face_cx + fw * 1.08, cy - fh * 0.4),
                  (face_cx + fw * 1.04, cy - fh * 0.1), (face_cx + fw * 0.75, cy - fh * 0.3),
                  (feat(0.1 * fw), cy - fh * 0.42), (face_cx - fw * 0.75, cy - fh * 0.3),
                  (face_cx - fw * 1.04, cy - fh * 0.1)], 1.0)  # fmt: skip
    cap = np.clip(cap, 0, 1)
    cv.paint(cap, hair)
    strands = cv.mask()
    for _ in range(14):
        a = detail.random(3)
        x0 = face_cx + (a[0] - 0.5) * 1.8 * fw
        cv.polyline(strands, [(x0, cy - fh * 1.05), (x0 + (a[1] - 0.5) * 0.05, cy - fh * (0.55 + 0.2 * a[2]))],
                    1.0, 0.004)  # fmt: skip
    cv.paint(strands * cap * 0.6, hair * 0.6 + 40)

    # Eyebrows.
    eye_y = cy - 0.015
    for side in (-1, 1):
        x = feat(side * 0.42 * fw)
        brow = cv.mask()
        cv.ellipse(brow, x, eye_y - 0.03, 0.04, 0.014, 1.0, start=200, end=340, thickness=0.011)
        cv.paint(brow, hair * 0.7)

    # Eyes.
    iris = np.array(colorsys.hsv_to_rgb(0.08 + 0.5 * detail.random(), 0.55, 0.45)) * 255
    for side in (-1, 1):
        x = feat(side * 0.42 * fw)
        squash = 1 - 0.3 * max(0.0, -side * yaw)  # the far eye looks narrower
        m = cv.mask()
        if f.eyes_open > 0.5:
            cv.ellipse(m, x, eye_y, 0.032 * squash, 0.017, 1.0)
            cv.paint(m, (245, 245, 240))
            ir = cv.mask()
            cv.ellipse(ir, x + 0.01 * yaw, eye_y, 0.013, 0.013, 1.0)
            cv.paint(ir * m, iris)
            pu = cv.mask()
            cv.ellipse(pu, x + 0.01 * yaw, eye_y, 0.006, 0.006, 1.0)
            cv.paint(pu * m, (15, 12, 12))
            lid = cv.mask()
            cv.ellipse(lid, x, eye_y, 0.032 * squash, 0.017, 1.0, start=180, end=360, thickness=0.006)
            cv.paint(lid, (40, 28, 24))
        else:
            cv.ellipse(m, x, eye_y - 0.004, 0.03 * squash, 0.012, 1.0, start=10, end=170, thickness=0.007)
            cv.paint(m, (45, 30, 25))

    # Nose: a shadow on the side away from the light, and nostrils.
    nx = feat(0.0) + 0.02 * yaw
    nose = cv.mask()
    cv.polyline(nose, [(nx, eye_y + 0.02), (nx + 0.012 + 0.01 * yaw, cy + 0.075), (nx - 0.012, cy + 0.085)],
                1.0, 0.007)  # fmt: skip
    cv.paint(nose * 0.6, skin * 0.7)

    # Mouth: the curve bends from down (0) to up (1); a broad smile opens and shows teeth.
    mx, my = feat(0.0) + 0.01 * yaw, cy + 0.145
    half = 0.055 + 0.02 * f.smile
    bend = (f.smile - 0.35) * 0.06
    pts_top = [(mx + half * t, my - bend * (1 - t * t)) for t in np.linspace(-1, 1, 15)]
    opening = max(0.0, f.smile - 0.55) * 0.09
    if opening > 0:
        pts_bottom = [(mx + half * t, my - bend * (1 - t * t) + opening * (1 - t * t)) for t in np.linspace(1, -1, 15)]
        mouth = cv.mask()
        cv.poly(mouth, pts_top + pts_bottom, 1.0)
        cv.paint(mouth, (120, 30, 35))
        teeth = cv.mask()
        cv.poly(teeth, pts_top + [(x, y + opening * 0.45) for x, y in pts_top[::-1]], 1.0)
        cv.paint(teeth * mouth, (240, 236, 228))
    lips = cv.mask()
    cv.polyline(lips, pts_top, 1.0, 0.009)
    cv.paint(lips, np.array([150, 60, 60]) * (1 - 0.3 * f.skin_tone))

    # Glasses: two round rims and a bridge.
    if f.glasses > 0.5:
        g = cv.mask()
        for side in (-1, 1):
            x = feat(side * 0.42 * fw)
            cv.ellipse(g, x, eye_y, 0.052 * (1 - 0.2 * max(0.0, -side * yaw)), 0.04, 1.0, thickness=0.009)
        cv.polyline(g, [(feat(-0.42 * fw) + 0.05, eye_y - 0.005), (feat(0.42 * fw) - 0.05, eye_y - 0.005)], 1.0,
                    0.008)  # fmt: skip
        cv.paint(g, (25, 25, 30))

    # Key light: brighten the lit side of everything that is not background, darken the other.
    fg = np.clip(face_m + back + body + neck + cap, 0, 1)
    xx = (np.linspace(0, 1, S, dtype=np.float32)[None, :] - cx) / 0.25
    shade = 1.0 + 0.28 * f.light_dir * np.clip(xx, -1.5, 1.5)
    cv.img = cv.img * (1 + (shade[..., None] - 1) * fg[..., None])

    out = cv2.resize(np.clip(cv.img, 0, 1), (resolution, resolution), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def keypoints(face: Face, resolution: int = 64) -> np.ndarray:
    """Where :func:`render` draws the eye centres and the mouth corners, FFHQ's four alignment keypoints.

    The same geometry as :func:`render` (features turned with yaw, rolled about the neck), in the index
    coordinates of the ``resolution``-pixel image (pixel ``(i, j)`` centred at ``(i, j)``): the answer a
    landmark detector should give, for alignment tests with ground truth.

    Returns:
        float64 ``[4, 2]`` (x, y): eye_left (on the image's left), eye_right, mouth_left, mouth_right.
    """
    f = face
    cx, cy = 0.5, 0.47
    fw = 0.19 + 0.06 * f.face_width
    fh = 0.27 - 0.03 * f.face_width
    face_cx = cx + 0.03 * f.yaw
    feat = lambda dx: face_cx + dx * (1 - 0.25 * abs(f.yaw)) + 0.09 * f.yaw  # noqa: E731  (as in render)
    eye_y = cy - 0.015
    mx, my = feat(0.0) + 0.01 * f.yaw, cy + 0.145
    half = 0.055 + 0.02 * f.smile
    pts = np.array([[feat(-0.42 * fw), eye_y], [feat(0.42 * fw), eye_y], [mx - half, my], [mx + half, my]])
    a = math.radians(18.0 * f.roll)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pivot = np.array([cx, cy + fh])
    pts = pivot + (pts - pivot) @ rot.T
    # Unit coordinates -> the super-sampled canvas's pixels -> INTER_AREA's reduction by _SUPERSAMPLE.
    return (pts * resolution * _SUPERSAMPLE + 0.5) / _SUPERSAMPLE - 0.5


# --------------------------------------------------------------------------------------------------
# Datasets.


def item(index: int, seed: int = 0) -> tuple[Face, int]:
    """The factors and detail seed of image ``index`` of the dataset with ``seed`` (independent of the count)."""
    face = sample_factors(np.random.default_rng([int(seed), int(index), 1]))
    detail_seed = int(np.random.SeedSequence([int(seed), int(index), 2]).generate_state(1)[0])
    return face, detail_seed


def render_item(index: int, resolution: int = 64, seed: int = 0) -> tuple[np.ndarray, Face]:
    """Image ``index`` of the dataset with ``seed``: uint8 ``[R, R, 3]`` and its factors."""
    face, detail_seed = item(index, seed)
    return render(face, resolution, detail_seed), face


def _encoded(args: tuple[int, int, int]) -> tuple[bytes, list[float]]:
    index, resolution, seed = args
    img, face = render_item(index, resolution, seed)
    ok, png = cv2.imencode(".png", img[:, :, ::-1])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise RuntimeError("PNG encoding failed")
    return png.tobytes(), [round(float(v), 6) for v in face.vector()]


def write_dataset(
    out: str | os.PathLike,
    count: int,
    resolution: int = 64,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Render ``count`` SynthFaces into a training zip (NVIDIA's layout) whose labels are the factor vectors.

    ``dataset.json`` holds ``"labels"``: ``[[name, [factor values in FACTORS order]], ...]`` (so ``--cond``
    training conditions on the factors), ``"factors"``: the names, and ``"synthfaces"``: the seed, resolution
    and count. Image ``i`` depends only on ``(seed, i, resolution)``, so a bigger dataset extends a smaller one.

    Args:
        out: the ``.zip`` to write (atomically).
        count: number of images.
        resolution: side in pixels, a power of two in 32..256.
        seed: dataset seed.
        workers: rendering processes; None = all CPU cores.
        progress: show a progress bar.
    """
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    from ..io.atomic import atomic_path
    from .datasets import archive_name

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise ValueError(f"the dataset must be a .zip file, got {str(out)!r}")
    if resolution not in (32, 64, 128, 256):
        raise ValueError(f"SynthFaces datasets are 32, 64, 128 or 256 px, got {resolution}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    workers = workers or os.cpu_count() or 1
    jobs = [(i, resolution, seed) for i in range(count)]
    labels = []
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        pool = ProcessPoolExecutor(workers) if workers > 1 else None
        try:
            results = pool.map(_encoded, jobs, chunksize=64) if pool else map(_encoded, jobs)
            for i, (png, vec) in enumerate(tqdm(results, total=count, desc="synth", unit="img",
                                                disable=bar_disable(progress), leave=False)):  # fmt: skip
                name = archive_name(i)
                z.writestr(name, png)
                labels.append([name, vec])
        finally:
            if pool is not None:
                pool.shutdown()
        meta = {"labels": labels, "factors": list(FACTORS),
                "synthfaces": {"seed": seed, "resolution": resolution, "count": count}}  # fmt: skip
        z.writestr("dataset.json", json.dumps(meta))
    return out
