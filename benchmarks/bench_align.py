"""Alignment error of ``latentlab align`` against known transforms, and its time per photo.

Two measurements, both in pixels of a 256x256 crop (the error of a crop is the largest displacement of its
four corners, and the RMS displacement over all its pixels, between the crop taken and the true one):

* ``renders``: held-out SynthFaces renders (dataset seed 1000) at 256 px, each pasted into a larger photo by
  a random similarity (rotation +-30 degrees, scale 0.8-3, random position, a random blocky background).
  The keypoints given are the renderer's own (``synthfaces.keypoints``) moved by the same transform, so this
  measures the FFHQ procedure itself: shrink, crop, padding and quad transform. The PSNR between the crop of
  the photo and the crop of the render itself (the canonical crop; 40 px inside its border, where padding
  differs) is reported too.
* ``astronaut``: scikit-image's astronaut portrait, turned, scaled and moved at random (rotation +-30,
  scale 0.7-2.5); each copy goes through dlib's detector and 68-point predictor. The true crop is the
  original photo's crop carried through the known transform, so this measures how consistently dlib finds
  the same face: the detector's share of the error. Run twice on the same copies: dlib's landmarks as they
  come, and averaged with those of the mirrored photo (``DlibLandmarks(flip_average=True)``).

    python benchmarks/bench_align.py --renders 50 --warps 20 --figure docs/images/align-astronaut.png
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np


def similarity(rng: np.random.Generator, angle: float, scales: tuple[float, float], src: int):
    a = math.radians(rng.uniform(-angle, angle))
    s = rng.uniform(*scales)
    m = np.array([[s * math.cos(a), -s * math.sin(a), 0.0], [s * math.sin(a), s * math.cos(a), 0.0]])
    corners = np.array([[0, 0], [src, 0], [0, src], [src, src]], np.float64) @ m[:, :2].T
    m[:, 2] = -corners.min(0) + rng.uniform(40, 200, 2)
    size = (corners.max(0) - corners.min(0) + m[:, 2] + rng.uniform(40, 200, 2)).astype(int)
    return m, (int(size[0]), int(size[1]))


def paste_into_photo(rng: np.random.Generator, render: np.ndarray, scales: tuple[float, float] = (0.8, 3.0)):
    """``(photo, m)``: the square uint8 ``render`` moved by a random similarity (rotation +-30 degrees, ``scales``)
    onto a larger photo of random 16 px blocks; ``m`` is the 2x3 matrix from render to photo coordinates."""
    m, size = similarity(rng, 30, scales, render.shape[0])
    bg = rng.integers(0, 256, (size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8)
    photo = cv2.resize(bg, size, interpolation=cv2.INTER_NEAREST)
    photo = cv2.warpAffine(render, m, size, dst=photo, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_TRANSPARENT)
    return photo, m


def crop_error(tr_found, tr_true, m: np.ndarray, size: int = 256) -> tuple[float, float]:
    """(max corner displacement, RMS displacement over the crop grid) in crop pixels, between the crop found in
    the moved photo and the true one (``tr_true``'s crop carried by the similarity ``m``)."""
    g = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).reshape(-1, 2).astype(np.float64)
    d = tr_found.crop_points(tr_true.source_points(g) @ m[:, :2].T + m[:, 2]) - g
    corners = [0, size - 1, size * (size - 1), size * size - 1]
    return float(np.hypot(*d[corners].T).max()), float(np.sqrt((d**2).sum(1).mean()))


def bench_renders(n: int, seed: int) -> dict:
    from latentlab.data import synthfaces as sf
    from latentlab.faces import align_image

    rng = np.random.default_rng(seed)
    worst, rms, psnr, secs = [], [], [], []
    for i in range(n):
        face, detail = sf.item(i, seed=1000)
        render = sf.render(face, 256, detail)
        kp = sf.keypoints(face, 256)
        crop0, tr0 = align_image(render, kp, 256)
        photo, m = paste_into_photo(rng, render)
        t = time.perf_counter()
        crop1, tr1 = align_image(photo, kp @ m[:, :2].T + m[:, 2], 256)
        secs.append(time.perf_counter() - t)
        e_max, e_rms = crop_error(tr1, tr0, m)
        worst.append(e_max)
        rms.append(e_rms)
        inner = (slice(40, 216), slice(40, 216))
        mse = ((crop1[inner].astype(float) - crop0[inner].astype(float)) ** 2).mean()
        psnr.append(10 * math.log10(255**2 / max(mse, 1e-10)))
    return {"renders": n, "max_corner_px": max(worst), "mean_rms_px": float(np.mean(rms)),
            "psnr_vs_canonical_db": [float(np.min(psnr)), float(np.median(psnr))],
            "seconds_per_image": float(np.median(secs))}  # fmt: skip


def bench_astronaut(n: int, seed: int, figure: str | None, flip_average: bool = False) -> dict:
    import skimage.data

    from latentlab.faces import DlibLandmarks, align_image, load_photo

    img = load_photo(Path(skimage.data.__file__).parent / "astronaut.png")
    t = time.perf_counter()
    det = DlibLandmarks(flip_average=flip_average)
    load_s = time.perf_counter() - t
    faces, _ = det.detect(img)
    crop0, tr0 = align_image(img, faces[0].keypoints, 256, landmarks=faces[0].landmarks)
    rng = np.random.default_rng(seed)
    worst, rms, missed, det_s, align_s = [], [], 0, [], []
    for _ in range(n):
        m, size = similarity(rng, 30, (0.7, 2.5), 512)
        photo = cv2.warpAffine(img, m, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=(128, 128, 128))  # a mirrored border would hold mirrored faces
        t = time.perf_counter()
        found, _ = det.detect(photo)
        det_s.append(time.perf_counter() - t)
        if not found:
            missed += 1
            continue
        t = time.perf_counter()
        _, tr1 = align_image(photo, found[0].keypoints, 1024)
        align_s.append(time.perf_counter() - t)
        tr1 = type(tr1)(**{**tr1.__dict__, "size": 256})
        e_max, e_rms = crop_error(tr1, tr0, m)
        worst.append(e_max)
        rms.append(e_rms)
    if figure:
        _figure(img, faces[0], tr0, crop0, figure)
    return {"warps": n, "missed": missed, "max_corner_px": [float(np.median(worst)), float(np.max(worst))],
            "rms_px": [float(np.median(rms)), float(np.max(rms))], "model_load_s": load_s,
            "detect_landmarks_s": float(np.median(det_s)), "align_1024_s": float(np.median(align_s))}  # fmt: skip


def _figure(img, face, tr, crop, path):
    """The photo with dlib's 68 landmarks, the four keypoints and the crop square drawn | the 256 crop."""
    from latentlab.io.images import save_image

    vis = img.copy()
    for x, y in face.landmarks:
        cv2.circle(vis, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1, cv2.LINE_AA)
    for x, y in face.keypoints:
        cv2.circle(vis, (int(round(x)), int(round(y))), 4, (255, 0, 0), -1, cv2.LINE_AA)
    q = np.round(tr.quad[[0, 1, 2, 3, 0]]).astype(np.int32)
    cv2.polylines(vis, [q], False, (255, 220, 0), 2, cv2.LINE_AA)
    h = vis.shape[0]
    right = cv2.resize(crop, (h, h), interpolation=cv2.INTER_LANCZOS4)
    save_image(path, np.concatenate([vis, np.full((h, 8, 3), 255, np.uint8), right], 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renders", type=int, default=50)
    ap.add_argument("--warps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figure", default=None, help="write the astronaut figure here")
    args = ap.parse_args()
    out = {"renders": bench_renders(args.renders, args.seed) if args.renders else None,
           "astronaut": bench_astronaut(args.warps, args.seed, args.figure),
           "astronaut_flip_average": bench_astronaut(args.warps, args.seed, None, flip_average=True)}  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
