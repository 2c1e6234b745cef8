"""StyleGAN v1 against StyleGAN2 trained here on the same SynthFaces data, resolution and kimg budget (issue 22).

Two steps, each resumable (``latentlab train`` rules: kill it and run it again):

    python benchmarks/bench_v1v2.py train --arch stylegan2 --data sf32.zip --outdir runs/v2 --kimg 100
    python benchmarks/bench_v1v2.py train --arch stylegan1 --data sf32.zip --outdir runs/v1 --kimg 100
    python benchmarks/bench_v1v2.py measure --v1 runs/v1 --v2 runs/v2 --out v1v2.json

Both networks: 32x32, z = w = 128, 8 mapping layers, 64 channels at every resolution, mixing 0.9, G_ema
half-life 10 kimg, batch 32 at 32x32. Each family keeps its own paper's recipe otherwise: StyleGAN2 lazy R1
(NVIDIA's gamma heuristic) + path length, lr 0.0025; StyleGAN v1 R1 gamma 10 every minibatch, lr 0.001,
progressive growing from 8x8 (``--grow-kimg`` stable + ``--fade-kimg`` fade per resolution, batch 64 below
32x32). ``measure`` prints and writes the figures (see ``measure``'s docstring).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from latentlab.nn.config import DiscriminatorConfig, GeneratorConfig
from latentlab.train import TrainConfig, train

RES, W, CH = 32, 128, 64


def configs(arch: str) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """The G and D of either family at this benchmark's size."""
    g = GeneratorConfig(resolution=RES, z_dim=W, w_dim=W, mapping_layers=8, channel_base=CH * RES, channel_max=CH,
                        arch=arch)  # fmt: skip
    d = DiscriminatorConfig(resolution=RES, img_channels=3, channel_base=CH * RES, channel_max=CH, arch=arch)
    return g, d


def run_config(args) -> TrainConfig:
    g, d = configs(args.arch)
    common = dict(data=args.data, outdir=args.outdir, G=g, D=d, kimg=args.kimg, seed=args.seed, snap=args.snap,
                  keep=3, tick=1.0, grid=32, resume="auto", threads=args.threads, progress=args.progress)  # fmt: skip
    if args.arch == "stylegan1":
        return TrainConfig.stylegan1(**common, lod_initial_resolution=8, lod_training_kimg=args.grow_kimg,
                                     lod_transition_kimg=args.fade_kimg, batch=32,
                                     batch_dict=((8, 64), (16, 64), (32, 32)))  # fmt: skip
    return TrainConfig(**common, batch=32)


def cmd_train(args) -> None:
    t0 = time.perf_counter()
    res = train(run_config(args))
    print(json.dumps({"arch": args.arch, "snapshot": str(res.snapshot), "kimg": res.cur_nimg / 1000,
                      "seconds_this_call": round(time.perf_counter() - t0, 1)}))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train (or continue) one family's run")
    t.add_argument("--arch", choices=["stylegan1", "stylegan2"], required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--outdir", required=True)
    t.add_argument("--kimg", type=float, default=100.0)
    t.add_argument("--grow-kimg", type=float, default=15.0)
    t.add_argument("--fade-kimg", type=float, default=15.0)
    t.add_argument("--snap", type=float, default=10.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--progress", action="store_true")
    t.set_defaults(fn=cmd_train)
    m = sub.add_parser("measure", help="measure both runs' last snapshots")
    m.add_argument("--v1", required=True, type=Path)
    m.add_argument("--v2", required=True, type=Path)
    m.add_argument("--out", type=Path, default=None)
    m.add_argument("--n", type=int, default=2000, help="samples per figure")
    m.add_argument("--threads", type=int, default=None)
    m.set_defaults(fn=lambda a: cmd_measure(a))
    args = ap.parse_args()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    args.fn(args)


def cmd_measure(args) -> None:  # filled in below
    raise SystemExit("measure: not written yet")


if __name__ == "__main__":
    main()
