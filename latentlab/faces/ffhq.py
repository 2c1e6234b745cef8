"""FFHQ's crop, step for step: shrink, crop, reflect-pad with a blurred and feathered border, quad transform, resize.

This is the procedure of NVlabs/ffhq-dataset's ``recreate_aligned_images`` (which NVIDIA ran on the FFHQ photos
with dlib's landmarks), written again for arrays, with the same constants and the same Pillow filters
(``ANTIALIAS`` is Pillow's ``LANCZOS``). It differs in three ways, none of which changes a pixel of the crop:

* the transform actually applied is tracked through every step, so the :class:`AlignTransform` it returns maps
  crop pixels to the photo exactly (FFHQ's shrink divides the quad by the integer factor although the image
  was resized by ``size / rint(size / shrink)``; the tracked quad includes that sub-pixel difference);
* ``transform_size`` is ``max(transform_size, size)``, so a crop larger than 4096 is not enlarged afterwards;
* the random crop shift FFHQ's script offers (off by default) is not offered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..validate import InvalidInput, count
from .geometry import FFHQ, AlignTransform, Template, check_keypoints, ffhq_quad

TRANSFORM_SIZE = 4096


def _rgb(image: Any) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise InvalidInput(f"the photo must be uint8 RGB [H, W, 3], got dtype {a.dtype} shape {list(a.shape)}")
    return a


def align_image(
    image: Any,
    keypoints: Any,
    size: int = 1024,
    *,
    transform_size: int = TRANSFORM_SIZE,
    padding: bool = True,
    rotate: bool = True,
    template: Template = FFHQ,
    landmarks: Any = None,
    box: tuple[float, float, float, float] | None = None,
    score: float | None = None,
    source_file: str = "",
    source_sha256: str = "",
) -> tuple[np.ndarray, AlignTransform]:
    """Cut FFHQ's aligned square for one face out of a photo.

    Args:
        image: uint8 RGB ``[H, W, 3]``.
        keypoints: ``[4, 2]`` eye_left, eye_right, mouth_left, mouth_right in index coordinates
            (:func:`~latentlab.faces.keypoints_from_68` makes them from dlib's landmarks).
        size: the crop's side (FFHQ: 1024).
        transform_size: the side of the intermediate quad transform before the final Lanczos resize (FFHQ:
            4096; smaller is faster and softer).
        padding: reflect-pad a quad that leaves the photo, blurring and fading the padding toward the median
            colour (FFHQ's ``enable_padding``); False fills it with black.
        rotate: level the eyes (FFHQ's ``rotate_level``).
        template: the framing (:data:`~latentlab.faces.FFHQ` for every FFHQ model).
        landmarks, box, score, source_file, source_sha256: stored in the transform as given.
    Returns:
        ``(crop, transform)``: uint8 ``[size, size, 3]`` and its :class:`AlignTransform`.
    Raises:
        InvalidInput: not a uint8 RGB image, bad keypoints, or a size out of range.
    """
    img_a = _rgb(image)
    size = count(size, "size", low=8, high=16384)
    t_size = max(count(transform_size, "transform_size", low=8, high=16384), size)
    kp = check_keypoints(keypoints)
    quad, qsize = ffhq_quad(kp, template, rotate)
    full_h, full_w = img_a.shape[:2]
    img = Image.fromarray(img_a, "RGB")
    # The current image's index coordinates map to the photo's by orig = cur * s + t (per axis).
    s = np.array([1.0, 1.0])
    t = np.array([0.0, 0.0])

    # Shrink.
    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        rsize = (int(np.rint(float(img.size[0]) / shrink)), int(np.rint(float(img.size[1]) / shrink)))
        ratio = np.array([img.size[0] / rsize[0], img.size[1] / rsize[1]])
        img = img.resize(rsize, Image.LANCZOS)
        quad = quad / shrink
        qsize /= shrink
        s, t = ratio, 0.5 * ratio - 0.5  # pixel centres: orig = (cur + 0.5) * ratio - 0.5

    # Crop.
    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))), int(np.ceil(max(quad[:, 0]))),
            int(np.ceil(max(quad[:, 1]))))  # fmt: skip
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0), min(crop[2] + border, img.size[0]),
            min(crop[3] + border, img.size[1]))  # fmt: skip
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        if crop[2] <= crop[0] or crop[3] <= crop[1]:
            raise InvalidInput(f"the face's square {quad.round(1).tolist()} lies outside the photo "
                               f"({full_w}x{full_h})")  # fmt: skip
        img = img.crop(crop)
        quad = quad - crop[0:2]
        t = t + np.array(crop[0:2], np.float64) * s

    # Pad.
    pad = (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))), int(np.ceil(max(quad[:, 0]))),
           int(np.ceil(max(quad[:, 1]))))  # fmt: skip
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0), max(pad[2] - img.size[0] + border, 0),
           max(pad[3] - img.size[1] + border, 0))  # fmt: skip
    if padding and max(pad) > border - 4:
        img = _pad_feathered(img, pad, qsize)
        pad = tuple(int(v) for v in np.maximum(pad, int(np.rint(qsize * 0.3))))
        quad = quad + pad[:2]
        t = t - np.array(pad[:2], np.float64) * s

    # Transform.
    img = img.transform((t_size, t_size), Image.QUAD, tuple((quad + 0.5).flatten()), Image.BILINEAR)
    if size < t_size:
        img = img.resize((size, size), Image.LANCZOS)
    lm = None if landmarks is None else np.asarray(landmarks, np.float64)
    transform = AlignTransform(quad * s + t, size, (full_w, full_h), source_file, source_sha256, kp, lm,
                               None if box is None else tuple(float(v) for v in box),
                               None if score is None else float(score), template)  # fmt: skip
    return np.asarray(img), transform


def _pad_feathered(img: Image.Image, pad: tuple[int, int, int, int], qsize: float) -> Image.Image:
    """FFHQ's padding: reflect, blur toward the border, fade toward the median colour."""
    import scipy.ndimage

    pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
    a = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), "reflect")
    h, w, _ = a.shape
    y, x, _ = np.ogrid[:h, :w, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mask = np.maximum(1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
                          1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]))  # fmt: skip
    blur = qsize * 0.02
    a += (scipy.ndimage.gaussian_filter(a, [blur, blur, 0]) - a) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    a += (np.median(a, axis=(0, 1)) - a) * np.clip(mask, 0.0, 1.0)
    return Image.fromarray(np.uint8(np.clip(np.rint(a), 0, 255)), "RGB")


def crop_side(keypoints: Any, template: Template = FFHQ) -> float:
    """The side, in source pixels, of the square :func:`align_image` would cut for these keypoints."""
    return ffhq_quad(keypoints, template)[1]
