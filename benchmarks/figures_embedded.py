"""The documentation's figures of the embedded model, from the shipped files; rerun after retraining.

Writes into ``--outdir`` (default ``docs/images``):

* ``synthfaces-64-samples.png``: G_ema, seeds 0-31, psi 1, constant noise (the model card's grid);
* ``synthfaces-64-edits.png``: seeds 3 and 8 at psi 0.7 moved from -3 to +3 std along smile, glasses,
  eyes_open, hair_length, yaw and skin_tone, two rows per direction (docs/editing.md);
* ``synthfaces-64-mixing.png``: sources A = seeds 10-14, B = seeds 1-3, psi 0.7, coarse / middle / fine
  (docs/editing.md, RESULTS.md).

    python benchmarks/figures_embedded.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from latentlab import load_generator
from latentlab.edit.codes import seed_codes
from latentlab.edit.figures import edited_codes, grid, mixing_figure, render_strip
from latentlab.io.images import save_image, to_uint8
from latentlab.pretrained import load_direction
from latentlab.render import render_codes

EDITS = ("smile", "glasses", "eyes_open", "hair_length", "yaw", "skin_tone")
BLOCK_GAP = 6  # white rows between two directions' strips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--outdir", default="docs/images")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.outdir)
    G = load_generator(args.network, device="cpu")

    samples = to_uint8(render_codes(G, seed_codes(G, list(range(32))).ws))
    print("wrote", save_image(out / "synthfaces-64-samples.png", grid(samples, cols=8)))

    ws = seed_codes(G, [3, 8], truncation_psi=0.7).ws
    blocks = []
    for name in EDITS:
        d = load_direction(f"synthfaces-64/{name}")
        d.check_model(G)
        strip = render_strip(G, edited_codes(G, d, [a * d.std for a in range(-3, 4)], ws))[0]
        blocks += [strip, np.full((BLOCK_GAP, strip.shape[1], 3), 255, np.uint8)]
    print("wrote", save_image(out / "synthfaces-64-edits.png", np.concatenate(blocks[:-1])))

    cols, rows_b = seed_codes(G, list(range(10, 15)), 0.7).ws, seed_codes(G, [1, 2, 3], 0.7).ws
    print("wrote", save_image(out / "synthfaces-64-mixing.png", mixing_figure(G, cols, rows_b)))


if __name__ == "__main__":
    main()
