"""The geometry of an aligned crop: FFHQ's oriented square from four keypoints, and the transform file.

FFHQ (NVlabs/ffhq-dataset, ``recreate_aligned_images``) places a face with four points taken from dlib's 68
landmarks: the centre of each eye (the mean of its six points, 36-41 and 42-47) and the two mouth corners
(48 and 54). With ``eye_to_eye = eye_right - eye_left`` and ``eye_to_mouth = mouth_avg - eye_avg``::

    x = eye_to_eye - flipud(eye_to_mouth) * [-1, 1]        # the crop's x axis, from both vectors
    x = x / |x| * max(2.0 |eye_to_eye|, 1.8 |eye_to_mouth|)
    y = flipud(x) * [-1, 1]                                 # x turned by 90 degrees
    c = eye_avg + 0.1 * eye_to_mouth                        # the centre
    quad = [c - x - y, c - x + y, c + x + y, c + x - y]     # top-left, bottom-left, bottom-right, top-right

:class:`Template` names the two constants a model's framing depends on (the scale of the square and the
centre's shift along ``eye_to_mouth``); FFHQ's are 1.0 and 0.1.

Coordinates are *index* coordinates: pixel ``(i, j)`` has its centre at ``(i, j)``, as dlib reports landmarks
(x to the right, y down). An :class:`AlignTransform` maps crop pixel ``(u, v)`` of a ``size``-pixel crop to the
source point ``q0 + (q3 - q0) (u + 0.5) / size + (q1 - q0) (v + 0.5) / size``: the crop's pixel *edges* run
along the quad. It is stored as JSON beside each crop so that an edited crop can be put back.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_path
from ..validate import InvalidInput, float_array, json_object, number, string

FORMAT = "latentlab-align"
FORMAT_VERSION = 1


class AlignError(ValueError):
    """A photo or a transform file that cannot be aligned or put back; the message says which and why."""


@dataclass(frozen=True)
class Template:
    """Where a model wants the face: FFHQ's square scaled by ``scale``, its centre ``shift`` eye-to-mouths down.

    ``Template("ffhq")`` is NVIDIA's FFHQ framing (scale 1.0, shift 0.1), the one every FFHQ StyleGAN expects.
    """

    name: str = "ffhq"
    scale: float = 1.0
    shift: float = 0.1

    def to_json(self) -> dict[str, Any]:
        """``{"name", "scale", "shift"}``."""
        return {"name": self.name, "scale": self.scale, "shift": self.shift}

    @classmethod
    def from_json(cls, d: Any, where: str) -> Template:
        """The inverse of :meth:`to_json`, every field checked (InvalidInput naming ``where``)."""
        d = json_object(d, "template", where=where)
        return cls(string(d.get("name"), "template.name", where=where),
                   float(number(d.get("scale"), "template.scale", low=0.05, high=20.0, where=where)),
                   float(number(d.get("shift"), "template.shift", low=-10.0, high=10.0, where=where)))  # fmt: skip


FFHQ = Template("ffhq", 1.0, 0.1)
# SynthFaces renders (the embedded models' data) frame the head more loosely than FFHQ: with the renderer's own
# keypoints of the average face (face_width 0.5, upright, frontal), this template's square is the whole
# render, to the renderer's 1/8-pixel drawing offset (scale 1.3528 = (1/2) / (2 |eye_to_eye|) = 0.5 / 0.3696,
# shift 0.28125 = the eyes' height above the centre over |eye_to_mouth| = 0.045 / 0.16, in the renderer's unit
# coordinates). As with FFHQ, the eye distance is normalised: a wide face (face_width 1) comes out 12% smaller
# than drawn, a narrow one (0) 16% larger.
SYNTHFACES = Template("synthfaces", 1.3528, 0.28125)
TEMPLATES: dict[str, Template] = {"ffhq": FFHQ, "synthfaces": SYNTHFACES}


def coords(points: Any, name: str, where: str | None = None) -> np.ndarray:
    """``points`` (integer or float) as a finite float64 ``[N, 2]``-like array; InvalidInput otherwise."""
    a = np.asarray(points)
    if a.dtype.kind in "iu":
        a = a.astype(np.float64)
    float_array(a, name, ndim=2, max_abs=1e7, where=where)  # dtype, rank, finiteness, bounds (values kept)
    return a.astype(np.float64)


def keypoints_from_68(landmarks: Any) -> np.ndarray:
    """FFHQ's four keypoints from dlib's 68 landmarks.

    Args:
        landmarks: ``[68, 2]`` (x, y) in index coordinates, in dlib's (iBUG 300-W) order.
    Returns:
        float64 ``[4, 2]``: eye_left (mean of 36-41, the eye on the image's left), eye_right (mean of 42-47),
        mouth_left (48), mouth_right (54).
    Raises:
        InvalidInput: not a finite ``[68, 2]`` array.
    """
    lm = coords(landmarks, "landmarks")
    if lm.shape != (68, 2):
        raise InvalidInput(f"'landmarks' must have shape [68, 2] (dlib's 68 points), got {list(lm.shape)}")
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[48], lm[54]])


def check_keypoints(keypoints: Any, where: str | None = None) -> np.ndarray:
    """``keypoints`` as float64 ``[4, 2]`` (eye_left, eye_right, mouth_left, mouth_right); refuses a degenerate face.

    Raises:
        InvalidInput: wrong shape, non-finite values, or eyes (or eyes and mouth) at one point.
    """
    kp = coords(keypoints, "keypoints", where)
    if kp.shape != (4, 2):
        raise InvalidInput(f"{where + ': ' if where else ''}'keypoints' must have shape [4, 2] (eye_left, "
                           f"eye_right, mouth_left, mouth_right), got {list(kp.shape)}")  # fmt: skip
    e2e = kp[1] - kp[0]
    e2m = (kp[2] + kp[3]) / 2 - (kp[0] + kp[1]) / 2
    if math.hypot(*e2e) < 1e-3 or math.hypot(*e2m) < 1e-3:
        raise InvalidInput(f"{where + ': ' if where else ''}degenerate keypoints: the eyes, or the eyes and the "
                           f"mouth, are at one point ({kp.round(2).tolist()})")  # fmt: skip
    return kp


def ffhq_quad(keypoints: Any, template: Template = FFHQ, rotate: bool = True) -> tuple[np.ndarray, float]:
    """FFHQ's oriented crop square for one face.

    Args:
        keypoints: ``[4, 2]`` eye_left, eye_right, mouth_left, mouth_right (index coordinates).
        template: the framing; :data:`FFHQ` reproduces NVIDIA's.
        rotate: level the eyes (FFHQ's ``rotate_level=True``); False keeps the photo's axes.
    Returns:
        ``(quad, qsize)``: float64 ``[4, 2]`` corners top-left, bottom-left, bottom-right, top-right, and the
        square's side in source pixels.
    """
    kp = check_keypoints(keypoints)
    eye_avg = (kp[0] + kp[1]) * 0.5
    eye_to_eye = kp[1] - kp[0]
    eye_to_mouth = (kp[2] + kp[3]) * 0.5 - eye_avg
    half = max(math.hypot(*eye_to_eye) * 2.0, math.hypot(*eye_to_mouth) * 1.8) * template.scale
    if rotate:
        x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
        x = x / math.hypot(*x) * half
    else:
        x = np.array([half, 0.0])
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * template.shift
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, float(math.hypot(*x) * 2)


def _matrix_list(m: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in m]


@dataclass(frozen=True)
class AlignTransform:
    """How one crop was cut from its photo: enough to map points both ways and to paste an edit back.

    Attributes:
        quad: float64 ``[4, 2]``, the crop's corners (top-left, bottom-left, bottom-right, top-right) in the
            source's index coordinates, as the resampling actually used them.
        size: the crop's side in pixels.
        source_size: ``(width, height)`` of the source photo (after its EXIF orientation).
        source_file: the photo's file name ("" when aligned from an array).
        source_sha256: the hex digest of the photo's file ("" when aligned from an array).
        keypoints: ``[4, 2]`` the four keypoints in source coordinates.
        landmarks: ``[68, 2]`` dlib's landmarks in source coordinates, or None.
        box: the detector's ``(left, top, right, bottom)``, or None.
        score: the detector's score, or None.
        template: the framing used.
    """

    quad: np.ndarray
    size: int
    source_size: tuple[int, int]
    source_file: str = ""
    source_sha256: str = ""
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((4, 2)))
    landmarks: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    template: Template = FFHQ

    def to_source(self) -> np.ndarray:
        """float64 ``[2, 3]``: crop index coordinates ``(u, v, 1)`` -> source index coordinates."""
        q = np.asarray(self.quad, np.float64)
        a = (q[3] - q[0]) / self.size
        b = (q[1] - q[0]) / self.size
        return np.stack([a, b, q[0] + 0.5 * (a + b)], axis=1)

    def to_crop(self) -> np.ndarray:
        """float64 ``[2, 3]``: source index coordinates -> crop index coordinates (the inverse of :meth:`to_source`)."""
        m = self.to_source()
        inv = np.linalg.inv(m[:, :2])
        return np.concatenate([inv, -(inv @ m[:, 2:])], axis=1)

    def source_points(self, points: Any) -> np.ndarray:
        """``[N, 2]`` crop points -> source points."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        return p @ self.to_source()[:, :2].T + self.to_source()[:, 2]

    def crop_points(self, points: Any) -> np.ndarray:
        """``[N, 2]`` source points -> crop points."""
        p = np.asarray(points, np.float64).reshape(-1, 2)
        return p @ self.to_crop()[:, :2].T + self.to_crop()[:, 2]

    @property
    def scale(self) -> float:
        """Crop pixels per source pixel (the square's side in the crop over its side in the source)."""
        return float(self.size / math.hypot(*(np.asarray(self.quad)[3] - np.asarray(self.quad)[0])))

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored beside a crop (``format``, ``version``, source, quad, size, points, template)."""
        d: dict[str, Any] = {
            "format": FORMAT, "version": FORMAT_VERSION,
            "source": {"file": self.source_file, "sha256": self.source_sha256, "width": int(self.source_size[0]),
                       "height": int(self.source_size[1])},
            "size": int(self.size), "quad": _matrix_list(self.quad), "to_crop": _matrix_list(self.to_crop()),
            "keypoints": _matrix_list(self.keypoints), "template": self.template.to_json(),
        }  # fmt: skip
        if self.landmarks is not None:
            d["landmarks"] = _matrix_list(self.landmarks)
        if self.box is not None:
            d["box"] = [float(v) for v in self.box]
        if self.score is not None:
            d["score"] = float(self.score)
        return d

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_json` atomically to ``path`` (a ``.json`` file)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def from_json(cls, d: Any, where: str = "transform") -> AlignTransform:
        """Rebuild from :meth:`to_json`'s object; every field is checked.

        Raises:
            AlignError: not a latentlab alignment, another version, or a field missing or out of range.
        """
        try:
            d = json_object(d, "transform", where=where)
            if d.get("format") != FORMAT:
                raise AlignError(f"{where}: not a latentlab alignment file (format {d.get('format')!r}, expected "
                                 f"{FORMAT!r})")  # fmt: skip
            if d.get("version") != FORMAT_VERSION:
                raise AlignError(f"{where}: alignment file version {d.get('version')!r}; this latentlab reads "
                                 f"version {FORMAT_VERSION}")  # fmt: skip
            src = json_object(d.get("source"), "source", where=where)
            w = int(number(src.get("width"), "source.width", low=1, high=1 << 20, integer=True, where=where))
            h = int(number(src.get("height"), "source.height", low=1, high=1 << 20, integer=True, where=where))
            size = int(number(d.get("size"), "size", low=1, high=1 << 16, integer=True, where=where))
            quad = _points(d.get("quad"), "quad", 4, where)
            kp = _points(d.get("keypoints"), "keypoints", 4, where)
            lm = _points(d["landmarks"], "landmarks", 68, where) if d.get("landmarks") is not None else None
            box = None
            if d.get("box") is not None:
                box = tuple(float(v) for v in _points([d["box"]], "box", 1, where, width=4)[0])
            score = d.get("score")
            score = None if score is None else float(number(score, "score", where=where))
            tmpl = Template.from_json(d.get("template"), where)
            sha = src.get("sha256", "")
            file = src.get("file", "")
            if not isinstance(sha, str) or not isinstance(file, str):
                raise AlignError(f"{where}: source.file and source.sha256 must be strings")
        except InvalidInput as e:
            raise AlignError(str(e)) from None
        t = cls(quad, size, (w, h), file, sha, kp, lm, box, score, tmpl)
        side = math.hypot(*(quad[3] - quad[0]))
        if side < 1e-3 or abs(np.linalg.det(t.to_source()[:, :2])) < 1e-12:
            raise AlignError(f"{where}: the quad is degenerate ({quad.round(3).tolist()})")
        return t

    @classmethod
    def load(cls, path: str | os.PathLike) -> AlignTransform:
        """Read a transform file written by :meth:`save`.

        Raises:
            AlignError: missing, unreadable, not JSON, or not a valid alignment (one line saying which).
        """
        path = Path(path)
        if not path.is_file():
            raise AlignError(f"no alignment file {str(path)!r}: the crop's transform is needed to put it back "
                             f"(latentlab align writes it beside each crop as <crop>.json)")  # fmt: skip
        try:
            d = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise AlignError(f"{path}: unreadable alignment file ({e})") from None
        return cls.from_json(d, where=str(path))


def _points(value: Any, name: str, n: int, where: str, width: int = 2) -> np.ndarray:
    if not isinstance(value, list) or len(value) != n or not all(isinstance(r, list) and len(r) == width
                                                                 for r in value):  # fmt: skip
        raise AlignError(f"{where}: {name!r} must be a list of {n} rows of {width} numbers")
    try:
        a = np.array(value, dtype=np.float64)
        float_array(a, name, where=where, max_abs=1e7)  # finite, bounded (the check; the values stay float64)
        return a
    except (TypeError, ValueError) as e:
        raise AlignError(f"{where}: {name!r}: {e}") from None

