"""Latent-space metrics of the embedded model at several sample counts (issue 8's paper claims).

Prints one JSON line per (sample count, seed): the metrics, seconds per metric, and seconds per 1k samples.

    python benchmarks/bench_metrics.py --metrics ls_w,ls_z,dci,mig,sap,dci_z,mig_z,sap_z --nums 1000,10000 --seeds 0,1

PPL needs LPIPS-VGG weights (``--lpips-weights`` or the torch hub cache); ``--random-lpips`` measures speed only;
``--ppl-distance classifier`` is the offline stand-in (keys ``ppl_*:classifier``):

    python benchmarks/bench_metrics.py --metrics ppl_wend,ppl_zend --ppl-distance classifier --nums 1000,10000
"""

from __future__ import annotations

import argparse
import json

import torch

from latentlab import load_generator
from latentlab.metrics.registry import Context, compute, parse_metrics
from latentlab.pretrained import load_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--metrics", default="ls_w,ls_z,dci,mig,sap,dci_z,mig_z,sap_z")
    ap.add_argument("--nums", default="1000,10000")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--lpips-weights", default=None)
    ap.add_argument("--random-lpips", action="store_true")
    ap.add_argument("--ppl-distance", choices=["lpips-vgg", "classifier"], default="lpips-vgg")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = parse_metrics(args.metrics)
    G = load_generator(args.network, device="cpu")
    clf = load_classifier("synthfaces-64", device="cpu")
    distance, distance_name = None, None
    if any(n.startswith("ppl") for n in names) and args.ppl_distance == "classifier":
        from latentlab.metrics.ppl import classifier_distance

        distance, distance_name = classifier_distance(clf), "classifier"
    elif any(n.startswith("ppl") for n in names):
        from latentlab.metrics.ppl import lpips_vgg_distance

        distance = lpips_vgg_distance(weights=args.lpips_weights, random_backbone=args.random_lpips)
        distance_name = "lpips-vgg-random" if args.random_lpips else "lpips-vgg"
    for num in (int(x) for x in args.nums.split(",")):
        for seed in (int(x) for x in args.seeds.split(",")):
            ctx = Context(num=num, seed=seed, classifier=clf, distance=distance, distance_name=distance_name,
                          progress=False)  # fmt: skip
            r = compute(names, G, ctx)
            total = sum(r["seconds"].values())
            print(json.dumps({"num": num, "seed": seed, **r["results"], "seconds": r["seconds"],
                              "seconds_per_1k": round(1000 * total / num, 2)}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
