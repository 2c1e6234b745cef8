"""Aligned photo-like SynthFaces crops, as training images for an encoder that must read aligned photos.

A SynthFaces model's generator draws faces in the renderer's own framing; a photo aligned with the SynthFaces
template (`latentlab align --template synthfaces`) is framed a little differently (eyes levelled, scale and
position normalized) and its borders show whatever surrounded the face. This script makes such crops where the
truth is known, by ``bench_photos.py``'s procedure: a SynthFaces face is rendered, pasted into a larger "photo"
by a random similarity (rotation +-30 degrees, scale 0.8-3 of a 256 px render, a random blocky background),
and cut out at ``--resolution`` with the SynthFaces template from the renderer's keypoints carried by the same
similarity. A fraction ``--plain`` of the images are the plain renders instead, so a dataset made of both keeps
the renderer's own framing in the mix.

Image ``i`` depends only on ``(--seed, i)``. The faces come from ``latentlab dataset synth``'s dataset with
``--seed``: pick one no benchmark holds out (1000 is ``bench_photos.py``'s photos, 4242 the fresh renders).
To keep this fast the faces are rendered at 128 px with the similarity's scale doubled (the same geometry as a
256 px render; the 64 px crops differ from 256 px renders' by about 37 dB PSNR) and the alignment's
intermediate transform is 512 px (against FFHQ's 4096 a 64 px crop moves by 0.06 grey levels on average).

    python benchmarks/photo_crops.py --count 8000 --seed 2000 --out crops/
    latentlab dataset prepare crops/ photo-crops-64.zip --resolution 64
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from bench_align import paste_into_photo  # noqa: E402

from latentlab.data import synthfaces as sf  # noqa: E402
from latentlab.faces import SYNTHFACES, align_image  # noqa: E402

RENDER = 128  # the render's side; the similarity's scale is multiplied by 256 / RENDER


def photo_crop(index: int, seed: int, resolution: int, plain: float) -> np.ndarray:
    """Image ``index``: uint8 ``[resolution, resolution, 3]``, an aligned photo-like crop or (with probability
    ``plain``) the plain render."""
    rng = np.random.default_rng([seed, index, 7])
    face, detail = sf.item(index, seed=seed)
    if rng.uniform() < plain:
        return sf.render(face, resolution, detail)
    render = sf.render(face, RENDER, detail)
    kp = sf.keypoints(face, RENDER)
    k = 256 / RENDER
    photo, m = paste_into_photo(rng, render, (0.8 * k, 3.0 * k))
    crop, _ = align_image(photo, kp @ m[:, :2].T + m[:, 2], resolution, template=SYNTHFACES, transform_size=512)
    return crop


def _write(job: tuple[int, int, int, float, str]) -> None:
    index, seed, resolution, plain, out = job
    img = photo_crop(index, seed, resolution, plain)
    if not cv2.imwrite(str(Path(out) / f"{index:06d}.png"), img[:, :, ::-1]):
        raise OSError(f"could not write {out}/{index:06d}.png")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, required=True, help="the SynthFaces dataset seed the faces come from")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--plain", type=float, default=0.25, help="fraction of plain renders")
    p.add_argument("--out", type=Path, required=True, help="a folder for the PNGs")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    if args.seed in (1000, 4242):
        p.error(f"--seed {args.seed} is a benchmark's held-out set")
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, args.seed, args.resolution, args.plain, str(args.out)) for i in range(args.count)]
    with multiprocessing.Pool(args.workers) as pool:
        for _ in tqdm(pool.imap_unordered(_write, jobs, chunksize=16), total=len(jobs), desc="crops"):
            pass


if __name__ == "__main__":
    main()
