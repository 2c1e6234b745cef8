"""The StyleGAN paper's style-mixing figure, with latentlab's Python API.

Rows take their coarse, middle or fine codes from a second set of seeds (``latentlab.edit.mix``). The
script works on any checkpoint; ``latentlab mix`` is the command-line version.

Example:

    python examples/style_mixing.py --network net.safetensors --rows 1,2,3 --cols 10,11,12,13 \
        --styles coarse --out mixing.png
"""

from __future__ import annotations

import argparse

import torch

import latentlab as ll
from latentlab.edit import mix


def style_mixing_grid(G: ll.Generator, row_seeds: list[int], col_seeds: list[int], styles: str, psi: float):
    """Images ``[(1 + rows) * (1 + cols), 3, R, R]``, row-major with a header row and column; cell (r, c) takes the
    ``styles`` codes from row seed r and all others from column seed c. The top-left cell is black."""
    gen = ll.generate_images(G, row_seeds + col_seeds, truncation_psi=psi)
    ws = gen.ws.to(G.w_avg.device)
    rows, cols = ws[: len(row_seeds)], ws[len(row_seeds) :]
    cells = [torch.full_like(gen.images[:1], -1.0)] + [gen.images[len(row_seeds) + j : len(row_seeds) + j + 1]
                                                        for j in range(len(col_seeds))]  # fmt: skip
    with torch.no_grad():
        for r in range(len(row_seeds)):
            cells.append(gen.images[r : r + 1])
            cells.append(G.synthesis(mix(cols, rows[r : r + 1], styles), noise_mode="const").cpu())
    return torch.cat(cells)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", required=True, help="checkpoint path or registry name")
    p.add_argument("--rows", default="1,2,3", help="seeds whose styles are copied")
    p.add_argument("--cols", default="10,11,12,13", help="seeds that receive them")
    p.add_argument("--styles", choices=["coarse", "middle", "fine"], default="coarse")
    p.add_argument("--trunc", type=float, default=0.7)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="mixing.png")
    args = p.parse_args()

    G = ll.load_generator(args.network, device=args.device)
    rows = ll.utils.parse_int_list(args.rows)
    cols = ll.utils.parse_int_list(args.cols)
    images = style_mixing_grid(G, rows, cols, args.styles, args.trunc)
    ll.save_image(args.out, ll.make_grid(ll.to_uint8(images), cols=len(cols) + 1))
    print(f"wrote {args.out}: {len(rows)} rows x {len(cols)} columns, {args.styles} styles from the rows")


if __name__ == "__main__":
    main()
