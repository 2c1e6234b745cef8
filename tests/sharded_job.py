"""Run by tests/test_parallel.py, alone or under ``torchrun``: metrics and a direction fit of a tiny generator,
sharded over the job's processes; rank 0 writes the results to a JSON file.

Usage: ``python tests/sharded_job.py NETWORK CLASSIFIER REAL_FOLDER OUT.json``
"""

from __future__ import annotations

import json
import sys

import torch


def main(network: str, classifier: str, real: str, out: str) -> None:
    from latentlab.data.classifier import load_classifier_file
    from latentlab.edit.directions import classifier_scorer, fit_directions
    from latentlab.metrics.ppl import lpips_vgg_distance
    from latentlab.metrics.registry import Context, compute
    from latentlab.parallel import init_world
    from latentlab.perceptual import FIDInception
    from latentlab.registry import load_generator

    torch.set_num_threads(1)
    world = init_world(torch.device("cpu"))
    G = load_generator(network)
    clf = load_classifier_file(classifier)
    torch.manual_seed(0)
    fid_model = FIDInception(random=True)
    lpips = lpips_vgg_distance(random_backbone=True)
    calls = [0]

    def distance(a, b):  # counts the batches this process measured
        calls[0] += 1
        return lpips(a, b)

    ctx = Context(num=24, seed=3, batch_size=4, distance=distance,
                  distance_name="lpips-vgg-random", classifier=clf, progress=False, data=real, fid_model=fid_model,
                  world=world)  # fmt: skip
    results = compute(["ppl_wend", "ppl_zfull", "ls_w", "dci", "fid", "kid"], G, ctx)["results"]
    dirs = fit_directions(G, ["smile"], classifier_scorer(clf, ["smile"]), num_samples=40, seed=1, ratio=0.25,
                          batch_size=4, progress=False, world=world)  # fmt: skip
    counts = world.gather(calls[0])
    if world.is_main:
        with open(out, "w") as f:
            json.dump({"results": results, "smile": dirs["smile"].vector.tolist(), "processes": world.size,
                       "ppl_batches": counts}, f)  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:5])
