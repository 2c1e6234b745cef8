"""Train a small StyleGAN2 from scratch on procedurally drawn shapes, stop half-way, resume, and render.

The script draws a folder of images (a coloured disc or square on a coloured background, some with
transparency and some 16-bit grey, to exercise the conversion rule), prepares a training zip, trains for
half of ``--kimg``, resumes to the full ``--kimg`` exactly as a crashed job would, and renders a grid of
G_ema samples. Everything is seeded.

Example (a few minutes on 2 CPU cores; a GPU makes ``--kimg 200 --preset small-64`` practical):

    python examples/train_shapes.py --workdir shapes-run --kimg 4 --preset tiny-32 --batch 16
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import latentlab as ll
from latentlab.train import TrainConfig, prepare_dataset, train


def draw_shapes(folder: Path, n: int, size: int = 48, seed: int = 0) -> Path:
    """Write ``n`` images of one shape each to ``folder`` (PNG, a few RGBA and 16-bit grey ones)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        bg = tuple(int(v) for v in rng.integers(0, 256, 3))
        fg = tuple(int(v) for v in rng.integers(0, 256, 3))
        im = Image.new("RGBA", (size, size), bg + (255,) if i % 5 else bg + (0,))  # every 5th: transparent
        r = int(rng.integers(size // 6, size // 3))
        cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
        box = (cx - r, cy - r, cx + r, cy + r)
        draw = ImageDraw.Draw(im)
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fg + (255,))
        if i % 7 == 3:  # a 16-bit grey image
            grey = np.asarray(im.convert("L"), dtype=np.uint16) * 257
            Image.fromarray(grey).save(folder / f"{i:04d}.png")
        else:
            im.save(folder / f"{i:04d}.png")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, required=True, help="folder for the images, the zip and the run")
    ap.add_argument("--images", type=int, default=200, help="how many shapes to draw")
    ap.add_argument("--preset", default="tiny-32", help="network preset (its resolution sets the data's)")
    ap.add_argument("--kimg", type=float, default=4.0, help="total training length in kimg")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    res = ll.get_preset(args.preset).G.resolution
    src = draw_shapes(args.workdir / "shapes", args.images)
    report = prepare_dataset(src, args.workdir / "shapes.zip", resolution=res, progress=False)
    print(f"prepared {report.written} images at {res}px ({len(report.skipped)} skipped)")

    cfg = TrainConfig(data=str(report.out), outdir=str(args.workdir / "run"), preset=args.preset,
                      kimg=args.kimg / 2, batch=args.batch, snap=args.kimg / 4, tick=args.kimg / 8, grid=16,
                      xflip=True, device=args.device, resume="auto")  # fmt: skip
    train(cfg)  # the first half; a crash anywhere after the first snapshot would be resumed the same way
    result = train(dataclasses.replace(cfg, kimg=args.kimg))  # continues where the first call stopped

    G = ll.load_generator(result.snapshot, device="cpu")
    with torch.no_grad():
        img = G(ll.sample_z(G.z_dim, 16, seed=123), noise_mode="const")
    out = args.workdir / "samples.png"
    ll.save_image(out, ll.make_grid(ll.to_uint8(img), cols=4))
    print(f"trained to {result.cur_nimg / 1000:.3f} kimg; samples: {out}")


if __name__ == "__main__":
    main()
