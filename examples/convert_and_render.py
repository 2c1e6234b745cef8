"""Bring an NVIDIA .pkl or rosinality .pt into latentlab, check the conversion, and render seeds.

The script reads the foreign file (nothing in it is executed), writes a native .safetensors copy, reloads
that copy, and checks that both render the same pixels for the same seeds. It then writes a grid. Seeds
give the same z as NVIDIA's generate.py, so for an NVIDIA pickle the grid matches
``python generate.py --seeds ... --trunc ... --noise-mode const`` up to fp16 rounding on CUDA.

Example:

    python examples/convert_and_render.py --network ffhq.pkl --native ffhq.safetensors \
        --seeds 0-7 --trunc 0.7 --out grid.png
"""

from __future__ import annotations

import argparse

import torch

import latentlab as ll
from latentlab.utils import parse_int_list


def convert_and_check(
    src: str, native: str, seeds: list[int], psi: float, class_idx: int | None = None, device: str = "cpu"
) -> torch.Tensor:
    """Convert ``src`` to ``native``. Returns the images ``[N, 3, R, R]`` in [-1, 1] rendered from the native copy.

    Raises:
        AssertionError: the native copy renders differently from the file it came from.
    """
    ll.convert(src, native, what=None)
    direct = ll.load_generator(src, device=device)
    copy = ll.load_generator(native, device=device)
    a = ll.generate_images(direct, seeds, truncation_psi=psi, class_idx=class_idx).images
    b = ll.generate_images(copy, seeds, truncation_psi=psi, class_idx=class_idx).images
    assert torch.equal(a, b), f"native copy differs from {src} by {(a - b).abs().max().item():.3g}"
    return b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", required=True, help="NVIDIA .pkl, rosinality .pt, or a registry name / URL")
    p.add_argument("--native", required=True, help="where to write the converted .safetensors")
    p.add_argument("--seeds", default="0-7", help="seeds, e.g. 0-7,12")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index (conditional models)")
    p.add_argument("--out", default="grid.png", help="output grid image")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    src = ll.pretrained.resolve(args.network)
    images = convert_and_check(str(src), args.native, parse_int_list(args.seeds, "seeds"), args.trunc,
                               args.class_idx, args.device)
    ll.save_image(args.out, ll.make_grid(ll.to_uint8(images)))
    print(f"wrote {args.native} and {args.out} ({len(images)} images; the native copy renders identically)")


if __name__ == "__main__":
    main()
