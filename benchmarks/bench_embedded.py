"""Quality figures of a SynthFaces generator, read through the factor classifier (issue 5's targets).

Prints one JSON line: Wasserstein distance per factor (fraction of its range) between the classifier's
predictions on ``--n`` generated images and on ``--n`` fresh real renders, binary attribute rates side by
side, the Fréchet distance in the classifier's feature space and its real-vs-real floor, and whether each
target is met (rates within 5 points, every Wasserstein <= 0.05, Fréchet <= 3x the floor).

    python benchmarks/bench_embedded.py --network synthfaces-64 --classifier synthfaces-64 --n 10000

``--network`` may be repeated (snapshots of a run, say): the real sets are rendered and read once, and each
network gets its own line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import latentlab
from latentlab.metrics.quality import quality_report, real_readouts
from latentlab.pretrained import load_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", required=True, action="append",
                    help="generator: registry name or checkpoint (repeatable)")
    ap.add_argument("--classifier", default="synthfaces-64", help="classifier name or file")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-seed", type=int, default=2)
    ap.add_argument("--which", choices=["auto", "G_ema", "G"], default="auto",
                    help="which generator of the checkpoint (G = the raw weights, to compare with G_ema's average)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clf = load_classifier(args.classifier, device=args.device)
    t0 = time.perf_counter()
    reals = {}  # by resolution: the two real readouts, shared by every network of that resolution
    for name in args.network:
        G = latentlab.load_generator(name, device=args.device, network=args.which)
        res = G.img_resolution
        if res not in reals:
            reals[res] = real_readouts(clf, args.n, res, args.real_seed, progress=True)
        report = quality_report(G, clf, n=args.n, seed=args.seed, real_seed=args.real_seed, progress=True,
                                reals=reals[res])  # fmt: skip
        report["seconds"] = round(time.perf_counter() - t0, 1)
        report["network"] = name
        report["which"] = args.which
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
