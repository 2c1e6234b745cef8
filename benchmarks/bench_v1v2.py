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
    m.add_argument("--n", type=int, default=2000, help="samples for LS, the classifier Fréchet and droplets")
    m.add_argument("--n-ppl", type=int, default=1000, help="pairs per PPL variant")
    m.add_argument("--n-fid", type=int, default=2000, help="generated images for FID/KID; 0 = skip")
    m.add_argument("--real", type=Path, default=None, help="real images for FID (fresh SynthFaces renders)")
    m.add_argument("--figures", type=Path, default=None, help="write the two pictures into this folder")
    m.add_argument("--threads", type=int, default=None)
    m.set_defaults(fn=lambda a: cmd_measure(a))
    args = ap.parse_args()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    args.fn(args)


def _last_snapshot(run: Path) -> Path:
    nets = sorted(run.glob("network-snapshot-*.safetensors"))
    if not nets:
        raise SystemExit(f"{run}: no snapshot yet")
    return nets[-1]


def cmd_measure(args) -> None:
    """PPL (LPIPS-VGG: W/Z, full/end), linear separability (W/Z), the classifier Fréchet distance with its floor,
    FID against fresh renders (``--n-fid`` each), the droplet figures (metrics/droplets.py), and two pictures:
    samples side by side and spike-ratio maps of the 16 and 32 px layers (docs/images/v1v2-*.png)."""
    from latentlab import load_generator
    from latentlab.metrics.registry import Context, compute
    from latentlab.pretrained import load_classifier

    clf = load_classifier("synthfaces-64")
    report: dict = {"n": args.n, "n_ppl": args.n_ppl, "n_fid": args.n_fid, "real_fid_data": str(args.real)}
    models = {}
    for name, run in (("stylegan1", args.v1), ("stylegan2", args.v2)):
        snap = _last_snapshot(run)
        G = load_generator(str(snap))
        models[name] = G
        t0 = time.perf_counter()
        ppl_ctx = Context(num=args.n_ppl, seed=0, progress=False)
        res = compute(["ppl_wend", "ppl_zend", "ppl_wfull", "ppl_zfull"], G, ppl_ctx)["results"]
        ctx = Context(num=args.n, seed=0, classifier=clf, progress=False)
        res |= compute(["ls_w", "ls_z", "fd_classifier", "droplets"], G, ctx)["results"]
        if args.n_fid:
            fid_ctx = Context(num=args.n_fid, seed=0, data=str(args.real), progress=False)
            res |= compute(["fid", "kid"], G, fid_ctx)["results"]
        report[name] = {"snapshot": str(snap), "seconds": round(time.perf_counter() - t0, 1), **res}
        print(json.dumps({name: report[name]}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.figures:
        figures(models, args.figures)


def figures(models: dict, outdir: Path, seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)) -> None:
    """``v1v2-samples.png`` (row per family) and ``v1v2-feature-maps.png``: for each family a row of images, then
    a row per layer resolution of its spike-ratio map (the channel-mean |activation| over its median, 0-5
    mapped to black-white, the largest ratio over that resolution's two layers), nearest-upscaled."""
    import numpy as np
    import torch.nn.functional as F

    from latentlab.io.images import make_grid, save_image, to_uint8
    from latentlab.metrics.droplets import magnitude_maps
    from latentlab.nn.generator import seed_to_z

    rows_s, rows_f = [], []
    for G in models.values():
        z = torch.cat([seed_to_z(G.z_dim, s) for s in seeds])
        with torch.no_grad():
            ws = G.mapping(z, None)
            img = G.synthesis(ws, noise_mode="const")
        rows_s.append(to_uint8(img))
        rows_f.append(to_uint8(F.interpolate(img, size=(64, 64), mode="nearest")))
        by_res: dict[int, torch.Tensor] = {}
        for layer, m in magnitude_maps(G, ws).items():
            res = int(layer.split(".")[0][1:])
            ratio = m / m.flatten(1).median(dim=1).values[:, None, None].clamp_min(1e-12)
            by_res[res] = torch.maximum(by_res[res], ratio) if res in by_res else ratio
        for res in sorted(by_res):
            v = (by_res[res].clamp(0, 5) / 5 * 2 - 1)[:, None].repeat(1, 3, 1, 1)
            rows_f.append(to_uint8(F.interpolate(v, size=(64, 64), mode="nearest")))
    outdir.mkdir(parents=True, exist_ok=True)
    save_image(outdir / "v1v2-samples.png", make_grid(np.concatenate(rows_s), cols=len(seeds), pad=2))
    save_image(outdir / "v1v2-feature-maps.png", make_grid(np.concatenate(rows_f), cols=len(seeds), pad=2))


if __name__ == "__main__":
    main()
