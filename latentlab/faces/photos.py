"""Photos in, aligned crops out: reading any photo safely, finding faces, and one crop plus transform per face.

:func:`align_photos` is ``latentlab align``: for every photo it finds the faces (dlib, or landmarks the caller
gives), cuts FFHQ's crop of each (:func:`~latentlab.faces.align_image`) and writes ``<stem>_<k>.png`` with
its transform ``<stem>_<k>.json`` beside it (``k`` = 0 for the largest face). A photo that cannot be used (not
an image, too many pixels, no face, a face too small) is listed with the reason in the report and skipped; the
run goes on. The report, ``align.json``, lists every crop and every skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..io.atomic import atomic_path
from ..io.foreign import file_sha256
from ..io.images import save_image, to_8bit_mode
from ..validate import InvalidInput, count, number
from .ffhq import TRANSFORM_SIZE, align_image
from .geometry import FFHQ, AlignError, Template, check_keypoints, ffhq_quad, keypoints_from_68

MAX_PIXELS = 150_000_000  # about 450 MB as RGB; Pillow's own bomb limit is 179 M
MIN_FACE = 64  # the smallest crop square, in photo pixels, worth aligning


def load_photo(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo as uint8 RGB ``[H, W, 3]`` by :func:`~latentlab.io.images.to_8bit_mode` (EXIF orientation,
    16-bit and float grey, transparency over white, CMYK), the rule training images follow too.

    The size is checked from the header before any pixel is decoded, so a huge file is refused without
    being read.

    Raises:
        AlignError: no such file, not an image, or more than ``max_pixels`` pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise AlignError(f"no such photo: {str(path)!r}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise AlignError(f"{path}: {w}x{h} is {w * h / 1e6:.0f} megapixels, more than the limit of "
                                 f"{max_pixels / 1e6:.0f} (max_pixels; --max-pixels on the command line)")  # fmt: skip
            return np.asarray(to_8bit_mode(im))
    except AlignError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise AlignError(f"{path}: not a readable image ({e})") from None


@dataclass(frozen=True)
class AlignedFace:
    """One crop written by :func:`align_photos`."""

    source: str
    index: int
    crop: str
    transform: str
    score: float | None
    side: float  # the crop square's side in photo pixels


@dataclass
class AlignReport:
    """What :func:`align_photos` did: the crops it wrote and the photos or faces it skipped, with reasons."""

    crops: list[AlignedFace] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"crops": [...], "skipped": [{"source", "reason"}]}``."""
        return {"crops": [vars(c) for c in self.crops],
                "skipped": [{"source": s, "reason": r} for s, r in self.skipped]}  # fmt: skip


def read_landmarks_file(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Landmarks from a JSON file: ``{"<photo file name>": [face, ...]}``, each face 68 or 4 ``[x, y]`` points.

    68 points are dlib's (iBUG 300-W order); 4 are FFHQ's keypoints directly (eye_left, eye_right, mouth_left,
    mouth_right). Keys are matched against a photo's file name, then its full path.

    Raises:
        AlignError: unreadable, not that shape, or non-finite points.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise AlignError(f"no such landmarks file: {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AlignError(f"{path}: unreadable landmarks file ({e})") from None
    if not isinstance(d, dict):
        raise AlignError(f"{path}: expected an object mapping photo names to lists of faces")
    out: dict[str, list[np.ndarray]] = {}
    for name, faces in d.items():
        if not isinstance(faces, list) or not faces:
            raise AlignError(f"{path}: {name!r} must be a non-empty list of faces (each a list of [x, y])")
        arrs = []
        for i, face in enumerate(faces):
            try:
                a = np.array(face, np.float64)
            except (TypeError, ValueError):
                raise AlignError(f"{path}: {name!r} face {i} is not a list of [x, y] numbers") from None
            if a.shape not in ((68, 2), (4, 2)) or not np.isfinite(a).all():
                raise AlignError(f"{path}: {name!r} face {i} must be 68 or 4 finite [x, y] points, got shape "
                                 f"{list(a.shape)}")  # fmt: skip
            arrs.append(a)
        out[name] = arrs
    return out


def _faces_from_points(points: list[np.ndarray]):
    """(keypoints, landmarks or None, box, score) per given face, largest first."""
    faces = []
    for a in points:
        lm = a if a.shape == (68, 2) else None
        kp = keypoints_from_68(a) if lm is not None else check_keypoints(a)
        lo, hi = (lm if lm is not None else kp).min(0), (lm if lm is not None else kp).max(0)
        faces.append((kp, lm, (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), None))
    return sorted(faces, key=lambda f: -ffhq_quad(f[0])[1])


def align_photos(
    photos: Iterable[str | os.PathLike],
    outdir: str | os.PathLike,
    *,
    size: int = 1024,
    largest: bool = False,
    detector: Any = None,
    landmarks: Mapping[str, list[np.ndarray]] | None = None,
    min_face: float = MIN_FACE,
    transform_size: int = TRANSFORM_SIZE,
    template: Template = FFHQ,
    max_pixels: int = MAX_PIXELS,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> AlignReport:
    """Align every face in ``photos`` into ``outdir`` (``latentlab align``).

    Args:
        photos: photo files (any format Pillow reads).
        outdir: where ``<stem>_<k>.png``, ``<stem>_<k>.json`` and the report ``align.json`` go.
        size: the crops' side (FFHQ: 1024; a 256-px model wants 256).
        largest: keep only the largest face of each photo.
        detector: a :class:`~latentlab.faces.DlibLandmarks` (built with defaults when None and no landmarks).
        landmarks: faces per photo name instead of a detector (:func:`read_landmarks_file`); photos without
            an entry are skipped.
        min_face: faces whose crop square is under this many photo pixels are skipped (they would be
            enlarged into mush).
        transform_size, template: see :func:`~latentlab.faces.align_image`.
        max_pixels: photos with more pixels are skipped unread.
        progress: wraps the photo list (e.g. ``tqdm``); None = no bar.
    Returns:
        The :class:`AlignReport` (also written as ``outdir/align.json``).
    """
    size = count(size, "size", low=8, high=16384)
    min_face = float(number(min_face, "min_face", low=0.0, high=1e6))
    photos = [Path(p) for p in photos]
    if not photos:
        raise InvalidInput("no photos given")
    outdir = Path(outdir)
    if landmarks is None and detector is None:
        from .landmarks import DlibLandmarks

        detector = DlibLandmarks()
    report = AlignReport()
    used: dict[str, int] = {}
    items = progress(photos) if progress is not None else photos
    for photo in items:
        src = str(photo)
        try:
            img = load_photo(photo, max_pixels)
        except AlignError as e:
            report.skipped.append((src, str(e).removeprefix(f"{photo}: ")))
            continue
        if landmarks is not None:
            pts = landmarks.get(photo.name, landmarks.get(src))
            if pts is None:
                report.skipped.append((src, "no entry in the landmarks file"))
                continue
            faces = _faces_from_points(pts)
        else:
            found, rejected = detector.detect(img)
            faces = [(d.keypoints, d.landmarks, d.box, d.score) for d in found]
            for box, score in rejected:
                report.skipped.append((src, f"face at {[round(v) for v in box]} scored {score:.2f}, under the "
                                            f"detector's min_score {detector.min_score:g}"))  # fmt: skip
        if not faces:
            if landmarks is None:
                report.skipped.append((src, f"no face found (dlib {detector.kind} detector: profiles and faces "
                                            f"under about 40 px are missed; try --detector cnn)"))  # fmt: skip
            continue
        if largest:
            faces = faces[:1]
        stem = photo.stem
        n = used.get(stem, 0)
        used[stem] = n + 1
        if n:
            stem = f"{stem}-{n}"
        sha = file_sha256(photo)
        for k, (kp, lm, box, score) in enumerate(faces):
            side = ffhq_quad(kp, template)[1]
            if side < min_face:
                report.skipped.append((src, f"face {k} is too small: its crop square is {side:.0f} px, under "
                                            f"min_face {min_face:g}"))  # fmt: skip
                continue
            crop, tr = align_image(img, kp, size, transform_size=transform_size, template=template, landmarks=lm,
                                   box=box, score=score, source_file=photo.name, source_sha256=sha)  # fmt: skip
            crop_path = save_image(outdir / f"{stem}_{k}.png", crop)
            tr_path = tr.save(outdir / f"{stem}_{k}.json")
            report.crops.append(AlignedFace(src, k, str(crop_path), str(tr_path), score, round(side, 2)))
    outdir.mkdir(parents=True, exist_ok=True)
    with atomic_path(outdir / "align.json") as tmp:
        tmp.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    return report
