"""Faces and their 68 landmarks, from dlib with the models that the ``face-recognition-models`` wheel ships.

FFHQ was aligned with dlib's 68-point shape predictor, so latentlab uses the same one: ``dlib-bin`` (a
prebuilt dlib on the package index) runs it, and ``face-recognition-models`` 0.3.0 carries its file
(``shape_predictor_68_face_landmarks.dat``) and the CNN face detector (``mmod_human_face_detector.dat``).
Nothing is downloaded. The model files are found through the installed distribution's file list
(:mod:`importlib.metadata`), never by importing that package, and checked by size and SHA-256 before dlib
reads them. dlib's files hold numbers in dlib's own serialization format; reading them runs no code from them.

Licences: dlib is under the Boost Software License; the model files are CC0 / public domain by Davis King,
but the 68-point predictor was trained on the iBUG 300-W dataset, whose terms exclude commercial use. See
docs/photos.md.

Detection runs on a copy of the photo reduced to at most ``detect_side`` pixels on its long side (the HOG
detector finds faces of about 80 pixels and more, 40 with one upsampling), and the landmarks are then
predicted on the full-resolution photo inside the detector's box scaled back up.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..io.foreign import file_sha256
from ..validate import InvalidInput, number
from .geometry import keypoints_from_68

MODELS_DIST = "face-recognition-models"
# name -> (size, sha256) of the files in face-recognition-models 0.3.0.
MODEL_FILES: dict[str, tuple[int, str]] = {
    "shape_predictor_68_face_landmarks.dat": (
        99_693_937, "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"),
    "mmod_human_face_detector.dat": (729_940, "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"),
}  # fmt: skip
INSTALL_HINT = "pip install 'latentlab[align]' (dlib-bin and face-recognition-models)"


class LandmarksUnavailable(RuntimeError):
    """dlib or its model files are not installed (or a file failed its check); the message says how to fix it."""


@dataclass(frozen=True)
class Detection:
    """One face found in a photo.

    Attributes:
        box: ``(left, top, right, bottom)`` of the detector's box, in the photo's pixels.
        score: the detector's confidence (HOG: the SVM margin, about 0..3; CNN: about -1..2).
        landmarks: float64 ``[68, 2]`` dlib's landmarks (x, y) in index coordinates.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def keypoints(self) -> np.ndarray:
        """float64 ``[4, 2]``: FFHQ's eye centres and mouth corners (:func:`keypoints_from_68`)."""
        return keypoints_from_68(self.landmarks)

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres, in pixels."""
        kp = self.keypoints
        return float(math.hypot(*(kp[1] - kp[0])))


def model_file(name: str, path: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """The path of one of dlib's model files: ``path`` if given, else the installed ``face-recognition-models``'.

    Args:
        name: a key of :data:`MODEL_FILES`.
        path: a file the user names (checked only for existence: another version of the model is allowed).
        verify: check the installed file's size and SHA-256 against :data:`MODEL_FILES`.
    Raises:
        LandmarksUnavailable: not installed, or the installed file is truncated or altered.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise LandmarksUnavailable(f"no such dlib model file: {str(p)!r}")
        return p
    try:
        dist = metadata.distribution(MODELS_DIST)
    except metadata.PackageNotFoundError:
        raise LandmarksUnavailable(f"dlib's {name} is not installed: {INSTALL_HINT}") from None
    found = [f for f in (dist.files or []) if f.name == name]
    if not found:
        raise LandmarksUnavailable(f"{MODELS_DIST} {dist.version} has no {name}: {INSTALL_HINT}")
    p = Path(found[0].locate())
    size, sha = MODEL_FILES[name]
    if not p.is_file():
        raise LandmarksUnavailable(f"{p}: listed by {MODELS_DIST} but missing; reinstall it ({INSTALL_HINT})")
    if verify:
        if p.stat().st_size != size:
            raise LandmarksUnavailable(f"{p}: {p.stat().st_size} bytes, expected {size} (truncated or replaced); "
                                       f"reinstall {MODELS_DIST}")  # fmt: skip
        digest = file_sha256(p)
        if digest != sha:
            raise LandmarksUnavailable(f"{p}: SHA-256 {digest[:16]}... is not the published file's "
                                       f"{sha[:16]}... (altered); reinstall {MODELS_DIST}")  # fmt: skip
    return p


# iBUG 300-W's 68 points mirrored left-right: point i of a face is point FLIP_68[i] of its mirror image.
FLIP_68 = np.array([*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, *range(35, 30, -1),
                    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, *range(54, 47, -1), *range(59, 54, -1),
                    *range(64, 59, -1), 67, 66, 65])  # fmt: skip


def _dlib():
    try:
        import dlib
    except ImportError:
        raise LandmarksUnavailable(f"dlib is not installed: {INSTALL_HINT}") from None
    return dlib


class DlibLandmarks:
    """dlib's face detector and 68-point shape predictor, FFHQ's landmark source.

    Args:
        detector: ``"hog"`` (dlib's frontal HOG + SVM detector, fast) or ``"cnn"`` (dlib's MMOD CNN, slower,
            finds more turned and small faces).
        predictor: a ``shape_predictor_68_face_landmarks.dat`` to use instead of the installed one.
        min_score: faces the detector scores below this are reported as skipped (HOG default 0.3: dlib's own
            threshold is 0, which lets through patterns such as the mission patch on scikit-image's astronaut's suit).
        upsample: times the detector doubles the reduced photo (None: once when its long side is under 1000 px).
        detect_side: the long side, in pixels, the photo is reduced to for detection.
        flip_average: also predict the landmarks on the mirrored photo and average the two (mirrored back,
            points paired by :data:`FLIP_68`). dlib's points are whole pixels and jitter with the face's position
            and angle; the average halves the rounding and evens out the left-right bias (measured in
            docs/photos.md), for twice the landmark time (the detector runs once).

    Raises:
        LandmarksUnavailable: dlib or a model file is missing.
    """

    def __init__(self, detector: str = "hog", predictor: str | os.PathLike | None = None, *,
                 min_score: float | None = None, upsample: int | None = None,
                 detect_side: int = 1600, flip_average: bool = False) -> None:  # fmt: skip
        if detector not in ("hog", "cnn"):
            raise InvalidInput(f"unknown face detector {detector!r}: expected 'hog' or 'cnn'")
        dlib = _dlib()
        self.kind = detector
        if min_score is None:
            min_score = 0.3 if detector == "hog" else 0.0
        self.min_score = float(number(min_score, "min_score", low=-10, high=10))
        self.upsample = upsample
        self.detect_side = int(number(detect_side, "detect_side", low=64, high=1 << 16, integer=True))
        self.flip_average = bool(flip_average)
        self.predictor_path = model_file("shape_predictor_68_face_landmarks.dat", predictor)
        self._predictor = dlib.shape_predictor(str(self.predictor_path))
        if detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(str(model_file("mmod_human_face_detector.dat")))

    def detect(self, image: Any) -> tuple[list[Detection], list[tuple[tuple[float, ...], float]]]:
        """Faces in one photo, largest first.

        Args:
            image: uint8 RGB ``[H, W, 3]``.
        Returns:
            ``(faces, rejected)``: the detections scoring at least ``min_score``, and the ``(box, score)`` of
            those below it.
        """
        import cv2

        img = np.ascontiguousarray(image)
        h, w = img.shape[:2]
        f = min(1.0, self.detect_side / max(h, w))
        small = img if f == 1.0 else cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))),
                                                interpolation=cv2.INTER_AREA)  # fmt: skip
        up = self.upsample if self.upsample is not None else (1 if max(small.shape[:2]) < 1000 else 0)
        if self.kind == "hog":
            rects, scores, _ = self._detector.run(small, up, min(self.min_score, 0.0))
            found = list(zip(rects, scores, strict=True))
        else:
            found = [(d.rect, d.confidence) for d in self._detector(small, up)]
        faces, rejected = [], []
        mirror = np.ascontiguousarray(img[:, ::-1]) if self.flip_average else None
        for r, score in found:
            box = (r.left() / f, r.top() / f, r.right() / f, r.bottom() / f)
            if score < self.min_score:
                rejected.append((box, float(score)))
                continue
            lm = self._shape(img, box)
            if mirror is not None:  # the same box, mirrored; its points mirrored back and re-paired
                m = self._shape(mirror, (w - 1 - box[2], box[1], w - 1 - box[0], box[3]))
                m[:, 0] = w - 1 - m[:, 0]
                lm = (lm + m[FLIP_68]) / 2
            faces.append(Detection(box, float(score), lm))
        faces.sort(key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        return faces, rejected

    def _shape(self, img: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        """dlib's 68 points ``[68, 2]`` (whole pixels) for the face in ``box`` of ``img``."""
        dlib = _dlib()
        rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
        shape = self._predictor(img, rect)
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64)
