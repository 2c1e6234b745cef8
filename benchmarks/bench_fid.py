"""FID and KID of the embedded model against its SynthFaces training data, with the real-vs-real floor.

Three sets of Inception features, each ``--num`` images: generated (psi 1, random noise, seed 0: NVIDIA's
``fid50k_full`` protocol), real A (SynthFaces dataset seed 0 images ``0..num-1``: the data the model was trained
on) and real B (images ``num..2*num-1`` of the same dataset, disjoint from A). Reported: FID and KID of generated
vs A, and of B vs A (the floor: what two samples of the data itself score at this size).

Features are cached in ``--cache`` (one ``.npy`` per set and size) so that a longer run extends a shorter one
across sessions: a 50k run after a 10k run computes only the missing 40k of each set.

    python benchmarks/bench_fid.py --num 10000
    python benchmarks/bench_fid.py --num 50000 --cache /tmp/fid-cache
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def _cached(cache: Path, name: str, num: int, compute) -> np.ndarray:
    """Features ``[num, 2048]`` of set ``name``: the cached prefix, extended by ``compute(start, stop)``."""
    path = cache / f"{name}.npy"
    have = np.load(path) if path.is_file() else np.zeros((0, 2048))
    if have.shape[0] < num:
        have = np.concatenate([have, compute(have.shape[0], num)])
        np.save(path, have)
    return have[:num]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--num", type=int, default=10000, help="images per set")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--cache", default="benchmarks/.fid-cache", help="feature cache folder (not committed)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from latentlab import load_generator
    from latentlab.data.synthfaces import render_item
    from latentlab.io.images import from_uint8
    from latentlab.metrics.fid import features, fid_from_features, kid_from_features
    from latentlab.perceptual.inception import FIDInception
    from latentlab.render import class_labels

    G = load_generator(args.network, device="cpu")
    model = FIDInception()
    cache = Path(args.cache) / f"{args.network}-{model.source.source}-{model.source.path.name}"
    cache.mkdir(parents=True, exist_ok=True)
    seconds = {}

    def reals(offset: int):
        def compute(start: int, stop: int) -> np.ndarray:
            def batches():
                for s in range(start, stop, args.batch):
                    idx = range(offset + s, offset + min(s + args.batch, stop))
                    yield from_uint8(np.stack([render_item(i, G.img_resolution, seed=0)[0] for i in idx]))

            return features(model, batches())

        return compute

    def fakes(start: int, stop: int) -> np.ndarray:
        def batches():
            for s in range(start, stop, args.batch):
                n = min(args.batch, stop - s)
                # one generator per batch, seeded by its position: a longer run reproduces a shorter one
                z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(s))
                with torch.no_grad():
                    ws = G.mapping(z, class_labels(G, n, None))
                    noise = torch.Generator().manual_seed(10**6 + s)
                    yield G.synthesis(ws, noise_mode="random", generator=noise).clamp(-1, 1)

        return features(model, batches())

    for name, fn in (("generated", fakes), ("real-a", reals(0)), ("real-b", reals(args.num))):
        t0 = time.perf_counter()
        feats = _cached(cache, f"{name}-{args.batch}" if name == "generated" else name, args.num, fn)
        seconds[name] = round(time.perf_counter() - t0, 1)
        if name == "generated":
            gen = feats
        elif name == "real-a":
            real_a = feats
        else:
            real_b = feats
    rec = {"bench": "fid", "network": args.network, "num": args.num, "inception": model.source.provenance,
           "fid": round(fid_from_features(real_a, gen), 3), "kid": round(kid_from_features(real_a, gen), 5),
           "floor_fid": round(fid_from_features(real_a, real_b), 3),
           "floor_kid": round(kid_from_features(real_a, real_b), 5), "seconds": seconds}  # fmt: skip
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
