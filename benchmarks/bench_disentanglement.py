"""Protocol 1 on the embedded model: DCI / MIG / SAP of projected SynthFaces renders (W and W+) against their
true factors. Prints one JSON line per space.

    python benchmarks/bench_disentanglement.py --num 160 --steps 250
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from latentlab import load_generator
from latentlab.metrics.disentanglement import disentanglement, projected_factors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--num", type=int, default=160)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--spaces", default="w,w+")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(args.network, device="cpu")
    for space in args.spaces.split(","):
        t0 = time.perf_counter()
        codes, factors, names = projected_factors(G, args.num, space=space, steps=args.steps, progress=False)
        t1 = time.perf_counter()
        r = disentanglement(codes, factors)
        print(json.dumps({"space": space, "num": args.num, "steps": args.steps, "dims": codes.shape[1], **r,
                          "project_seconds": round(t1 - t0, 1), "metric_seconds": round(time.perf_counter() - t1, 1)}),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
