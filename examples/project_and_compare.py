"""Project images into W and W+ with the Python API, and compare the two fits side by side.

Without image files the script renders fresh SynthFaces portraits (dataset seed 7, which the embedded model
never saw) as stand-in photos. It writes one comparison image, one row per target: target | W | W+, and
prints PSNR per space. Both codes are saved, so ``latentlab generate --latents`` can render them again.

Example:

    python examples/project_and_compare.py --network synthfaces-64 --count 4 --steps 1000 --out compare.png
    python examples/project_and_compare.py --network synthfaces-64 my_photo.jpg --out compare.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import latentlab as ll
from latentlab.perceptual import psnr
from latentlab.projection import load_targets


def fresh_renders(count: int, resolution: int):
    """``[count, 3, R, R]`` SynthFaces renders in [-1, 1] from dataset seed 7."""
    from latentlab.data.synthfaces import render_item

    return ll.from_uint8(np.stack([render_item(i, resolution, seed=7)[0] for i in range(count)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*", help="image files; none = fresh SynthFaces renders")
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--count", type=int, default=4, help="renders to project when no images are given")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--loss", default="auto", help="auto, lpips-vgg, ms-ssim, mse, ...")
    ap.add_argument("--out", default="compare.png")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    G = ll.load_generator(args.network, device=args.device)
    if args.images:
        targets = load_targets(args.images, G.img_resolution, G.img_channels)
        for path, why in targets.skipped:
            print(f"skipped {path}: {why}")
        images = targets.images
    else:
        images = fresh_renders(args.count, G.img_resolution)
    columns = [images]
    out = Path(args.out)
    for space in ("w", "w+"):
        p = ll.project(G, images, space=space, steps=args.steps, loss=args.loss, download=False)
        columns.append(p.images)
        ll.save_latents(out.with_name(f"{out.stem}-{space.replace('+', 'plus')}.npz"), p.ws,
                        meta={"space": space, "loss": p.loss_name})  # fmt: skip
        db = psnr(ll.from_uint8(ll.to_uint8(images)), ll.from_uint8(ll.to_uint8(p.images)))
        print(f"{space.upper():2s}: PSNR {db.mean().item():.2f} dB (per image: "
              + ", ".join(f"{v:.1f}" for v in db.tolist()) + ")")  # fmt: skip
    cells = np.stack([ll.to_uint8(c[i]) for i in range(images.shape[0]) for c in columns])
    ll.save_image(out, ll.make_grid(cells, cols=3, pad=2))
    print(f"wrote {out} (rows: target | W | W+)")


if __name__ == "__main__":
    main()
