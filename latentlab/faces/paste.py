"""Putting an edited crop back into its photo: the inverse transform and a feathered face mask.

The crop is warped into the photo with the inverse of the transform :func:`~latentlab.faces.align_image`
recorded, over the quad's footprint only (memory grows with the face, not the photo), and blended through
a mask that is 1 on the face and falls smoothly to exactly 0 at its edge. Pixels where the mask is 0 are
copied from the photo, so everything outside the face is the input bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..validate import InvalidInput, number
from .geometry import AlignError, AlignTransform

FEATHER = 0.06  # the mask's soft edge, as a fraction of the crop's side


def face_mask(transform: AlignTransform, size: int | None = None, feather: float = FEATHER) -> np.ndarray:
    """The face region in crop coordinates, feathered.

    With dlib's 68 landmarks the region is their convex hull, with the eyebrows raised by half an
    eye-to-mouth distance to take in the forehead; with only the four keypoints it is an ellipse around them
    (from the forehead to the chin, a little wider than the eyes).

    Args:
        transform: the crop's transform (its landmarks or keypoints give the face).
        size: the mask's side (default: the transform's crop size).
        feather: the width of the soft edge as a fraction of ``size``; the mask rises from 0 at the region's
            boundary to 1 at this depth inside it (a smoothstep).
    Returns:
        float32 ``[size, size]`` in [0, 1], exactly 0 outside the region.
    """
    import cv2

    size = int(size or transform.size)
    feather = float(number(feather, "feather", low=0.0, high=0.5))
    t = dataclasses.replace(transform, size=size)
    kp = t.crop_points(transform.keypoints)
    eye_avg = (kp[0] + kp[1]) / 2
    e2e = kp[1] - kp[0]
    e2m = (kp[2] + kp[3]) / 2 - eye_avg
    region = np.zeros((size, size), np.uint8)
    sub = 16  # OpenCV's fixed-point shift (4 bits)
    if transform.landmarks is not None:
        lm = t.crop_points(transform.landmarks)
        pts = np.concatenate([lm[0:17], lm[17:27] - 0.5 * e2m])
        hull = cv2.convexHull(np.round(pts * sub).astype(np.int32))
        cv2.fillConvexPoly(region, hull, 1, cv2.LINE_8, 4)
    else:
        centre = eye_avg + 0.35 * e2m
        axes = (1.15 * math.hypot(*e2e), 1.6 * math.hypot(*e2m))
        angle = math.degrees(math.atan2(e2e[1], e2e[0]))
        c = (int(round(centre[0] * sub)), int(round(centre[1] * sub)))
        cv2.ellipse(region, c, (int(round(axes[0] * sub)), int(round(axes[1] * sub))), angle, 0, 360, 1, -1,
                    cv2.LINE_8, 4)  # fmt: skip
    if feather <= 0:
        return region.astype(np.float32)
    depth = cv2.distanceTransform(region, cv2.DIST_L2, 5)
    x = np.clip(depth / (feather * size), 0.0, 1.0)
    return (x * x * (3 - 2 * x)).astype(np.float32)


def paste_back(photo: Any, crop: Any, transform: AlignTransform, *, mask: Any = None,
               feather: float = FEATHER) -> np.ndarray:  # fmt: skip
    """Warp ``crop`` back into ``photo`` through ``transform`` and blend it through a feathered face mask.

    Args:
        photo: uint8 RGB ``[H, W, 3]``, the photo the transform was made from (its size must match).
        crop: uint8 RGB ``[s, s, 3]``, the edited crop at any side ``s`` (the model's resolution, say).
        transform: the crop's :class:`AlignTransform` (from :func:`align_image` or ``AlignTransform.load``).
        mask: float ``[s, s]`` in [0, 1] to use instead of :func:`face_mask`.
        feather: the mask's soft edge (see :func:`face_mask`).
    Returns:
        uint8 ``[H, W, 3]``: the photo with the face replaced; where the mask is 0, the photo's own pixels.
    Raises:
        AlignError: the photo's size is not the transform's source size.
        InvalidInput: a crop or mask of the wrong type or shape.
    """
    import cv2

    photo = np.asarray(photo)
    crop = np.asarray(crop)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise InvalidInput(f"the photo must be uint8 RGB [H, W, 3], got dtype {photo.dtype} shape {list(photo.shape)}")
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
        raise InvalidInput(f"the crop must be a square uint8 RGB [s, s, 3], got dtype {crop.dtype} "
                           f"shape {list(crop.shape)}")  # fmt: skip
    h, w = photo.shape[:2]
    if (w, h) != tuple(transform.source_size):
        sw, sh = transform.source_size
        raise AlignError(f"the photo is {w}x{h} but the transform was made from a {sw}x{sh} photo "
                         f"({transform.source_file or 'an array'}): not its photo")  # fmt: skip
    s = crop.shape[0]
    if mask is None:
        m = face_mask(transform, s, feather)
    else:
        m = np.asarray(mask, np.float32)
        if m.shape != (s, s) or not np.isfinite(m).all():
            raise InvalidInput(f"the mask must be finite [{s}, {s}] like the crop, got shape {list(m.shape)}")
        m = np.clip(m, 0.0, 1.0)
    t = dataclasses.replace(transform, size=s)
    # A crop much finer than its footprint in the photo is reduced first (area averaging), so the warp does
    # not alias; the footprint's scale decides.
    if t.scale > 1.5:
        s2 = max(8, int(math.ceil(s / t.scale * 1.25)))
        crop = cv2.resize(crop, (s2, s2), interpolation=cv2.INTER_AREA)
        m = cv2.resize(m, (s2, s2), interpolation=cv2.INTER_AREA)
        t = dataclasses.replace(transform, size=s2)
    corners = t.source_points([[-0.5, -0.5], [t.size - 0.5, -0.5], [-0.5, t.size - 0.5], [t.size - 0.5, t.size - 0.5]])
    x0, y0 = (max(0, int(math.floor(v)) - 2) for v in corners.min(0))
    x1, y1 = min(w, int(math.ceil(corners[:, 0].max())) + 3), min(h, int(math.ceil(corners[:, 1].max())) + 3)
    out = photo.copy()
    if x1 <= x0 or y1 <= y0:
        return out  # the face lies outside the photo
    to_crop = t.to_crop()
    to_crop[:, 2] += to_crop[:, :2] @ np.array([x0, y0], np.float64)
    size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(crop, to_crop, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    wm = cv2.warpAffine(m, to_crop, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    wm = np.clip(wm, 0.0, 1.0)[..., None]
    region = photo[y0:y1, x0:x1].astype(np.float32)
    blended = np.clip(np.rint(wm * warped.astype(np.float32) + (1.0 - wm) * region), 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(wm > 0, blended, photo[y0:y1, x0:x1])
    return out
