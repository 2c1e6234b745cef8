"""Metrics and an InterFaceGAN direction over every process of a ``torchrun`` job, with the API.

Each process joins the job (:func:`latentlab.parallel.init_world`), and the sampling functions share their
samples out over the processes: PPL (end and full), linear separability, DCI and, with ``--data``, FID and
KID, then a smile direction fitted from sampled and labelled codes. Every process ends with the same
results, equal to one process's with the same ``--batch`` and threads; rank 0 writes them as JSON, with how
many PPL batches each process measured. Alone (no ``torchrun``) it is a one-process job.

Examples:

    torchrun --standalone --nproc_per_node 2 examples/sharded_measure.py --samples 4000 --out m.json
    python examples/sharded_measure.py --samples 4000 --out m-one.json      # the same numbers, one process
    torchrun --standalone --nproc_per_node 2 examples/sharded_measure.py --data faces-64.zip --out m.json

``--random-lpips`` measures PPL with a randomly initialised (seeded) LPIPS backbone: for tests and timing where
VGG16's weights are not at hand; PPL then means nothing. FID and KID use the standard Inception's weights
(`latentlab weights` shows where they are found).
"""

from __future__ import annotations

import argparse
import json

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default="synthfaces-64", help="registry name or checkpoint")
    p.add_argument("--classifier", default="synthfaces-64", help="an embedded classifier's name or its file")
    p.add_argument("--data", default=None, help="real images (folder or zip): adds fid and kid")
    p.add_argument("--samples", type=int, default=4000, help="samples per metric and for the direction")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    p.add_argument("--random-lpips", action="store_true", help="a random LPIPS backbone (tests, timing)")
    p.add_argument("--out", required=True, help="the JSON file rank 0 writes")
    args = p.parse_args()

    from latentlab.edit.directions import classifier_scorer, fit_directions
    from latentlab.metrics.ppl import lpips_vgg_distance
    from latentlab.metrics.registry import Context, compute
    from latentlab.parallel import init_world
    from latentlab.perceptual import FIDInception
    from latentlab.pretrained import load_classifier
    from latentlab.registry import load_generator
    from latentlab.utils import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    world = init_world(device)
    device = world.device(device)
    G = load_generator(args.network, device=device)
    clf = load_classifier(args.classifier, device=device)
    lpips = lpips_vgg_distance(random_backbone=args.random_lpips)
    batches = [0]

    def distance(a, b):  # LPIPS-VGG, counting the batches this process measures
        batches[0] += 1
        return lpips(a, b)

    metrics = ["ppl_wend", "ppl_zfull", "ls_w", "dci"]
    ctx = Context(num=args.samples, seed=args.seed, batch_size=args.batch, distance=distance,
                  distance_name="lpips-vgg-random" if args.random_lpips else "lpips-vgg", classifier=clf,
                  progress=world.is_main, world=world)  # fmt: skip
    if args.data is not None:
        metrics += ["fid", "kid"]
        ctx.data, ctx.fid_model = args.data, FIDInception()
    results = compute(metrics, G, ctx)["results"]
    smile = fit_directions(G, ["smile"], classifier_scorer(clf, ["smile"]), num_samples=args.samples, seed=args.seed,
                           ratio=0.25, batch_size=args.batch, progress=world.is_main, world=world)["smile"]  # fmt: skip
    counts = world.gather(batches[0])
    if world.is_main:
        with open(args.out, "w") as f:
            json.dump({"results": results, "smile": smile.vector.tolist(), "processes": world.size,
                       "ppl_batches": counts}, f, indent=1)  # fmt: skip
        main = ", ".join(f"{k} {v:.4g}" for k, v in results.items() if "/" not in k and not k.startswith("entropy"))
        print(f"{world.size} process(es): {main}; PPL batches per process {counts}; wrote {args.out}")


if __name__ == "__main__":
    main()
