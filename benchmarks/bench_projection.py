"""Projection benchmarks: speed (beside NVIDIA's projector) and quality on the embedded model.

Prints one JSON line per measurement.

**Speed** (``--mode speed``): Config A (preset ``bench-a``), MSE distance plus the noise regularization,
``--threads`` intra-op threads. latentlab's :func:`project_batch` at each ``--batch``; with ``--reference DIR``
(a checkout of NVIDIA's stylegan2-ada-pytorch, never committed here) NVIDIA's own ``projector.project`` is
run unmodified on the same weights, its VGG16 swapped for an identity feature map so that its distance is
the same squared pixel error (``dist = sum (target - synth)^2``). The two are timed in alternating rounds in
one process; steps/s is taken between the per-step callbacks (latentlab) or log lines (NVIDIA) after a
warm-up, so the W statistics (10,000 mapped samples) are excluded for both. Also timed: latentlab's step
with LPIPS-VGG on a randomly initialised backbone (the same FLOPs as the real one).

**Quality** (``--mode quality``): the embedded model. ``--count`` images generated from held-out seeds
(1,000,000 + i, random noise) and ``--count`` fresh SynthFaces renders (dataset seed 7, never trained on) are
projected in W and W+ with each loss of ``--losses``; reported per group: PSNR, SSIM, the classifier-factor
error between target and projection (mean absolute error of the continuous factors as a fraction of their
ranges, and the binary attributes' agreement), and for generated targets the RMS distance between recovered
and true w.

Examples:

    python benchmarks/bench_projection.py --mode speed --reference ~/src/stylegan2-ada-pytorch
    python benchmarks/bench_projection.py --mode quality --count 32 --losses ms-ssim,mse,d-features
    python benchmarks/bench_projection.py --mode vgg-format --threads 1 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import types
from pathlib import Path


def _nvidia_projector(ref_dir: str):
    """NVIDIA's ``projector`` module with its VGG16 download replaced by an identity feature map."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.insert(0, ref_dir)
    for unused in ("requests", "imageio"):  # imported by their modules at load time, unused here
        try:
            __import__(unused)
        except ImportError:
            sys.modules[unused] = types.ModuleType(unused)
    import dnnlib  # type: ignore[import-not-found]
    import projector  # type: ignore[import-not-found]

    class PixelFeatures(torch.nn.Module):
        def forward(self, img, resize_images=False, return_lpips=True):
            return img.flatten(1) / 255

    class _Null:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    dnnlib.util.open_url = lambda url, *a, **k: _Null()
    return projector, PixelFeatures


def _nvidia_vgg(lp):
    """NVIDIA's ``vgg16.pt`` interface built from latentlab's LPIPS-VGG weights: ``[N, 3, H, W]`` in [0, 255] ->
    flat features whose summed squared difference is the LPIPS distance (what their projector minimises).

    Its parameters do not require gradients, which is the cheaper of the two possibilities for their projector
    (a ``torch.jit.load``-ed module may keep ``requires_grad=True`` and then pays for weight gradients). It is
    a copy in NCHW, as their TorchScript file holds it (latentlab's own runs channels-last on the CPU)."""
    import copy

    import lpips
    import torch

    class VGG16LPIPS(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = copy.deepcopy(lp.model).to(memory_format=torch.contiguous_format)

        def forward(self, img, resize_images=False, return_lpips=True):
            m = self.model
            feats = m.net(m.scaling_layer(img / 127.5 - 1))
            out = []
            for lin, f in zip(m.lins, feats, strict=True):
                w = lin.model[-1].weight.reshape(1, -1, 1, 1).sqrt()
                out.append((lpips.normalize_tensor(f) * w / (f.shape[2] * f.shape[3]) ** 0.5).flatten(1))
            return torch.cat(out, 1)

    return VGG16LPIPS().eval().requires_grad_(False)


def speed(args) -> None:
    import torch
    from bench_synthesis import _peak_mb, _sync

    from latentlab.nn import Generator, get_preset
    from latentlab.perceptual import LPIPSLoss
    from latentlab.projection import ProjectConfig, build_loss, project_batch, w_statistics

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = Generator(get_preset(args.preset).G).eval().requires_grad_(False).to(device)
    steps = args.steps
    stats = w_statistics(G, 10000, 0)

    def targets(n):
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(5)).to(device)
        with torch.no_grad():
            return G(z, noise_mode="const")

    def stamp(stamps):
        _sync(device)
        stamps.append(time.perf_counter())

    def ours(batch, loss, precision="fp32"):
        stamps = []
        cfg = ProjectConfig(steps=steps, precision=precision)
        project_batch(G, targets(batch), loss, cfg, w_stats=stats, on_step=lambda s, d: stamp(stamps))
        return (len(stamps) - args.warmup - 1) / (stamps[-1] - stamps[args.warmup])

    impls = {}
    mse = build_loss("mse")
    precisions = args.precisions.split(",")
    tag = {p: "" if p == "fp32" else f"-{p}" for p in precisions}
    for b in [int(x) for x in args.batch.split(",")]:
        for p in precisions:
            impls[f"latentlab{tag[p]}-b{b}"] = (b, lambda b=b, p=p: ours(b, mse, p))
    from latentlab.perceptual import WeightsUnavailable

    try:
        lp, lp_name = LPIPSLoss("vgg"), "lpips-vgg"
    except WeightsUnavailable:
        lp, lp_name = LPIPSLoss("vgg", random_backbone=True), "lpips-vgg-random"
    lp = lp.to(device)
    for b in [int(x) for x in args.lpips_batch.split(",") if x]:
        for p in precisions:
            impls[f"latentlab{tag[p]}-{lp_name}-b{b}"] = (b, lambda b=b, p=p: ours(b, lp, p))
    if args.reference:
        nv_proj, pixel_features = _nvidia_projector(args.reference)
        from bench_synthesis import _load_reference

        nv, diff = _load_reference(args.reference, G)
        target = (targets(1)[0] + 1) * 127.5

        nv_vgg = _nvidia_vgg(lp).to(device)
        with torch.no_grad():  # the equivalent module's squared feature distance is LPIPS
            a, b = targets(2)[:1], targets(2)[1:]
            lp_ab = float(lp(a, lp.prepare(b)))
            nv_ab = float((nv_vgg((a + 1) * 127.5) - nv_vgg((b + 1) * 127.5)).square().sum())
            assert abs(lp_ab - nv_ab) <= 1e-4 * max(1.0, lp_ab), (lp_ab, nv_ab)

        def nvidia(features=None):
            stamps = []
            nv_proj.print = lambda *a: stamp(stamps)
            make = pixel_features if features is None else (lambda: features)
            jit_load, torch.jit.load = torch.jit.load, lambda f, **kw: make().to(device)
            try:
                nv_proj.project(nv, target, num_steps=steps, verbose=True, device=device)
            finally:
                torch.jit.load = jit_load
            stamps = stamps[-steps:]  # one log line per step (the first lines report the setup)
            return (len(stamps) - args.warmup - 1) / (stamps[-1] - stamps[args.warmup])

        impls["nvidia-b1"] = (1, nvidia)
        if args.lpips_batch:
            impls[f"nvidia-{lp_name}-b1"] = (1, lambda: nvidia(nv_vgg))
    rates = {k: [] for k in impls}
    peaks: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, (_, fn) in impls.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            rates[name].append(fn())
            peaks[name] = max(peaks.get(name, 0.0), _peak_mb(device))
    base = statistics.median(rates["nvidia-b1"]) if "nvidia-b1" in rates else None
    nv_lp = [v for k, v in rates.items() if k.startswith("nvidia-lpips")]
    base_lp = statistics.median(nv_lp[0]) if nv_lp else None
    for name, r in rates.items():
        batch = impls[name][0]
        sps = statistics.median(r)
        rec = {"bench": "projection-speed", "preset": args.preset, "impl": name, "batch": batch,
               "threads": args.threads, "steps": steps, "steps_per_s": round(sps, 2),
               "image_steps_per_s": round(sps * batch, 2), "rounds": args.rounds, "device": str(device),
               "peak_mem_mb": round(peaks[name], 1),  # CUDA: this run's own peak; CPU: the process's peak RSS
               "all": [round(x, 2) for x in r], "torch": torch.__version__,
               "machine": platform.processor() or platform.machine()}  # fmt: skip
        same = base_lp if "lpips" in name else base  # against NVIDIA with the same distance
        if same:
            rec["image_steps_vs_nvidia_b1"] = round(sps * batch / same, 2)
        print(json.dumps(rec), flush=True)


def quality(args) -> None:
    import numpy as np
    import torch

    from latentlab import generate_images, load_checkpoint
    from latentlab.data.synthfaces import ATTRIBUTES, BINARY, FACTORS, RANGES, render_item
    from latentlab.io.images import from_uint8, to_uint8
    from latentlab.perceptual import LPIPSLoss, psnr, ssim
    from latentlab.pretrained import load_classifier, resolve
    from latentlab.projection import build_loss, project

    torch.set_num_threads(args.threads)
    ck = load_checkpoint(resolve(args.network))
    G = ck.G_ema.requires_grad_(False)
    clf = load_classifier(device="cpu")
    n = args.count
    seeds = [1_000_000 + i for i in range(n)]
    gen = generate_images(G, seeds, noise_mode="random")
    renders = from_uint8(np.stack([render_item(i, G.img_resolution, seed=7)[0] for i in range(n)]))
    groups = {"generated": gen.images, "renders": from_uint8(to_uint8(renders))}
    cont = [f for f in FACTORS if f not in BINARY]
    scorer = LPIPSLoss("vgg")  # every loss is also scored with LPIPS-VGG on the 8-bit images


    def factor_error(a, b):
        va, vb = clf.predict(a), clf.predict(b)
        err = {}
        for f in cont:
            d = (va[f] - vb[f]).abs()
            if f in clf.config.circular:
                d = torch.minimum(d, 1 - d)
            err[f] = float(d.mean() / (RANGES[f][1] - RANGES[f][0]))
        agree = {k: float(((va[f] > thr) == (vb[f] > thr)).float().mean()) for k, (f, thr) in ATTRIBUTES.items()}
        return err, agree

    for spec in args.losses.split(","):
        loss_name, _, extra = spec.partition("+")  # "lpips-vgg+mse": the loss plus a pixel MSE term of weight 1
        mse_weight = 1.0 if extra == "mse" else 0.0
        for space in args.spaces.split(","):
            for group, images in groups.items():
                if group not in args.groups.split(","):
                    continue
                t0 = time.perf_counter()
                loss = build_loss(loss_name, D=ck.D, download=False, log=None, resolution=G.img_resolution)
                p = project(G, images, space=space, steps=args.steps, loss=loss, batch_size=args.batch,
                            progress=args.progress, seed=0, mse_weight=mse_weight)  # fmt: skip
                wall = time.perf_counter() - t0
                t = from_uint8(to_uint8(images))
                x = from_uint8(to_uint8(p.images))
                err, agree = factor_error(t, x)
                rec = {"bench": "projection-quality", "network": args.network, "group": group, "space": space,
                       "loss": p.loss_name + ("+mse" if mse_weight else ""), "count": n, "steps": args.steps,
                       "lpips": round(float(scorer(x, scorer.prepare(t)).mean()), 4),
                       "psnr": round(float(psnr(t, x).mean()), 2), "ssim": round(float(ssim(t, x).mean()), 4),
                       "factor_error": round(float(np.mean(list(err.values()))), 4),
                       "factor_error_each": {k: round(v, 4) for k, v in err.items()},
                       "attribute_agreement": {k: round(v, 3) for k, v in agree.items()},
                       "seconds": round(wall, 1)}  # fmt: skip
                if group == "generated":
                    rec["w_rms_error"] = round(float((p.ws - gen.ws).square().mean().sqrt()), 4)
                    rec["w_rms_error_w_avg"] = round(float((G.w_avg - gen.ws).square().mean().sqrt()), 4)
                print(json.dumps(rec), flush=True)


def vgg_format(args) -> None:
    """VGG16's forward + input-gradient backward (the LPIPS step's backbone) in NCHW and channels-last at 64 and
    256 px, batch 1 and 8: ms per image, best of ``--rounds`` alternating rounds (chooses ``CHANNELS_LAST_FROM``)."""
    import copy

    import torch

    from latentlab.perceptual import LPIPSLoss

    torch.set_num_threads(args.threads)
    net = LPIPSLoss("vgg", random_backbone=True).model.net
    nets = {"nchw": copy.deepcopy(net).to(memory_format=torch.contiguous_format),
            "channels_last": copy.deepcopy(net).to(memory_format=torch.channels_last)}  # fmt: skip

    def step(name, x):
        x = x.detach().requires_grad_(True)
        sum(f.square().mean() for f in nets[name](x)).backward()

    for side in (64, 256):
        for n in (1, 8):
            xs = {"nchw": torch.rand(n, 3, side, side)}
            xs["channels_last"] = xs["nchw"].contiguous(memory_format=torch.channels_last)
            reps = 5 if side == 64 else 1
            best = {}
            for name in nets:
                step(name, xs[name])  # warm-up
            for _ in range(args.rounds):
                for name in nets:
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        step(name, xs[name])
                    best[name] = min(best.get(name, 1e9), (time.perf_counter() - t0) / reps / n * 1000)
            print(json.dumps({"bench": "vgg-format", "side": side, "batch": n, "threads": args.threads,
                              "ms_per_image": {k: round(v, 1) for k, v in best.items()},
                              "channels_last_speedup": round(best["nchw"] / best["channels_last"], 2)}))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["speed", "quality", "vgg-format"], default="speed")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--device", default="cpu", help="speed: cpu or cuda (the step times synchronise the GPU)")
    p.add_argument("--preset", default="bench-a", help="speed: network preset (default: Config A)")
    p.add_argument("--batch", default="1,8", help="speed: batch sizes; quality: the one batch size")
    p.add_argument("--lpips-batch", default="1,8", help="speed: batch sizes for the LPIPS-VGG step ('' = none)")
    p.add_argument("--steps", type=int, default=None, help="steps per run (speed: 60; quality: 1000)")
    p.add_argument("--warmup", type=int, default=10, help="speed: steps before timing starts")
    p.add_argument("--precisions", default="fp32", help="speed: the search's synthesis precisions (fp32,bf16)")
    p.add_argument("--rounds", type=int, default=3, help="speed: alternating rounds; the median is reported")
    p.add_argument("--reference", default=None, help="speed: a checkout of NVIDIA's stylegan2-ada-pytorch")
    p.add_argument("--network", default="synthfaces-64", help="quality: the model")
    p.add_argument("--count", type=int, default=32, help="quality: images per group")
    p.add_argument("--losses", default="auto", help="quality: comma-separated loss names")
    p.add_argument("--spaces", default="w,w+", help="quality: comma-separated spaces")
    p.add_argument("--groups", default="generated,renders", help="quality: which target groups")
    p.add_argument("--progress", action="store_true", help="quality: show progress bars")
    args = p.parse_args()
    if args.mode == "vgg-format":
        vgg_format(args)
    elif args.mode == "speed":
        args.steps = args.steps or 60
        speed(args)
    else:
        args.steps = args.steps or 1000
        args.batch = int(args.batch.split(",")[-1])
        quality(args)


if __name__ == "__main__":
    main()
