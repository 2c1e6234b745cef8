"""Synthesis speed: images/s of G(z) (no grad, const noise) for a preset, optionally beside NVIDIA's code.

Prints one JSON line per measurement. Each allocator mode runs in its own subprocess, because glibc's
settings are process-wide: "default" (glibc as configured by the environment) and "tuned"
(:func:`latentlab.utils.tune_allocator`, what the ``latentlab`` command does).

Side by side with NVIDIA's stylegan2-ada-pytorch: pass ``--reference DIR`` pointing at a checkout of theirs
(never committed here). Their generator gets the same weights (the parameter names map one-to-one), and the
two are timed in alternating rounds in the same process, so machine noise hits both alike. Their default
inference path is the fused one ("nvidia"); "nvidia-nonfused" is their other path. "latentlab-bf16" runs the
activations in bfloat16 (``dtype=torch.bfloat16``); every implementation but "latentlab" reports its PSNR
against latentlab's float32 images (``psnr_vs_fp32_db_min``, the worst image; 4 = the [-1, 1] range squared).

Example:

    python benchmarks/bench_synthesis.py --batch 1,8,32 --threads 2 --reference ~/src/stylegan2-ada-pytorch
    python benchmarks/bench_synthesis.py --device cuda --fp16-res 4 --malloc default --reference ~/src/sg2ada
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types


def _flops_per_image(fn, z) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(z)
    return counter.get_total_flops() / z.shape[0]


def _sgemm_gflops(threads: int) -> float:
    """Median GFLOP/s of a 2048^3 float32 matrix product: what this machine sustains right now."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        rates.append(2 * 2048**3 / (time.perf_counter() - t0) / 1e9)
    return statistics.median(rates)


def _load_reference(ref_dir: str, G):
    """NVIDIA's Generator with G's config and weights; None when it cannot be imported."""
    import torch

    sys.path.insert(0, ref_dir)
    if "requests" not in sys.modules:
        try:
            import requests  # noqa: F401  (their dnnlib imports it at module level; unused here)
        except ImportError:
            sys.modules["requests"] = types.ModuleType("requests")
    from training.networks import Generator as NVGenerator  # type: ignore[import-not-found]

    c = G.config
    device = G.w_avg.device
    nv = NVGenerator(
        z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim, img_resolution=c.resolution, img_channels=c.img_channels,
        mapping_kwargs=dict(num_layers=c.mapping_layers),
        synthesis_kwargs=dict(channel_base=c.channel_base, channel_max=c.channel_max, architecture=c.architecture,
                              num_fp16_res=c.num_fp16_res, conv_clamp=c.conv_clamp),
    ).eval()  # fmt: skip
    missing, unexpected = nv.load_state_dict(G.state_dict(), strict=False)
    assert not unexpected and all(k.endswith("resample_filter") for k in missing), (missing, unexpected)
    nv = nv.to(device)
    with torch.no_grad():
        z = torch.randn(2, c.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
        ref = nv(z, None, noise_mode="const", force_fp32=True)
        diff = (ref - G(z, noise_mode="const")).abs().max().item()
    return nv, diff


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device) -> float:
    """The peak memory so far: CUDA's allocator on a GPU, else the process's peak RSS (the whole process)."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(args) -> None:
    import torch

    from latentlab.nn import Generator, get_preset
    from latentlab.utils import tune_allocator

    tuned = tune_allocator() if args.malloc == "tuned" else False
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if args.network:
            from latentlab.registry import load_generator

            G = load_generator(args.network, device="cpu").eval()
        else:
            cfg = get_preset(args.preset).G
            if args.fp16_res:  # NVIDIA's mixed-precision config: fp16 layers need conv_clamp
                cfg = type(cfg)(**{**cfg.to_dict(), "num_fp16_res": args.fp16_res, "conv_clamp": 256})
            G = Generator(cfg).eval()
    G = G.to(device)
    impls = {
        "latentlab": lambda z: G(z, noise_mode="const"),
        "latentlab-fused": lambda z: G(z, noise_mode="const", fused=True),
        "latentlab-nchw": lambda z: G(z, noise_mode="const", channels_last=False),
        "latentlab-bf16": lambda z: G(z, noise_mode="const", dtype=torch.bfloat16),
    }
    if device.type == "cuda" and G.config.num_fp16_res:
        impls["latentlab-fp16"] = lambda z: G(z, noise_mode="const", dtype=torch.float16)
    ref_diff = None
    if args.reference:
        nv, ref_diff = _load_reference(args.reference, G)
        impls["nvidia"] = lambda z: nv(z, None, noise_mode="const")  # their default (fp16 layers on CUDA)
        impls["nvidia-nonfused"] = lambda z: nv(z, None, noise_mode="const", fused_modconv=False)
        if G.config.num_fp16_res:
            impls["nvidia-fp32"] = lambda z: nv(z, None, noise_mode="const", force_fp32=True)
    only = set(args.impls.split(",")) if args.impls else set(impls)
    impls = {k: v for k, v in impls.items() if k in only}

    for batch in [int(b) for b in args.batch.split(",")]:
        sgemm = _sgemm_gflops(args.threads) if device.type == "cpu" else None
        z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)).to(device)
        iters = max(2, args.images // batch)
        rates: dict[str, list[float]] = {k: [] for k in impls}
        peaks: dict[str, float] = {}
        with torch.no_grad():
            fp32 = impls["latentlab"](z) if "latentlab" in impls else None
            flops = _flops_per_image(impls[next(iter(impls))], z)
            for name, fn in impls.items():
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                for _ in range(2):
                    fn(z)
                _sync(device)
                peaks[name] = _peak_mb(device)
            for _ in range(args.rounds):  # alternate implementations round by round
                for name, fn in impls.items():
                    _sync(device)
                    t0 = time.perf_counter()
                    for _ in range(iters):
                        fn(z)
                    _sync(device)
                    rates[name].append(iters * batch / (time.perf_counter() - t0))
        for name, r in rates.items():
            ips = statistics.median(r)
            rec = {
                "bench": "synthesis", "preset": args.network or args.preset, "impl": name, "batch": batch,
                "device": str(device), "threads": args.threads, "malloc": args.malloc, "malloc_applied": tuned,
                "img_per_s": round(ips, 2), "img_per_s_min": round(min(r), 2), "img_per_s_max": round(max(r), 2),
                "gflop_per_img": round(flops / 1e9, 4), "gflop_per_s": round(ips * flops / 1e9, 1),
                "rounds": args.rounds, "num_fp16_res": G.config.num_fp16_res,
                # CUDA: this implementation's own peak; CPU: the process's peak RSS so far
                "peak_mem_mb": round(peaks[name], 1),
                "torch": torch.__version__,
                "machine": torch.cuda.get_device_name(device) if device.type == "cuda"
                else platform.processor() or platform.machine(),
            }  # fmt: skip
            if sgemm is not None:
                rec.update(peak_fraction=round(ips * flops / 1e9 / args.peak_gflops, 3),
                           sgemm_gflop_per_s=round(sgemm, 1), sgemm_fraction=round(ips * flops / 1e9 / sgemm, 3))
            if ref_diff is not None:
                rec["max_abs_diff_vs_nvidia"] = ref_diff
            if fp32 is not None and name != "latentlab":
                with torch.no_grad():
                    mse = (impls[name](z).float() - fp32).square().mean(dim=(1, 2, 3)).clamp_min(1e-20)
                rec["psnr_vs_fp32_db_min"] = round(float((10 * torch.log10(4 / mse)).min()), 1)
            print(json.dumps(rec), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="bench-a", help="network preset (default: bench-a, the issue's Config A)")
    p.add_argument("--network", default=None, help="a trained generator instead of the preset (e.g. synthfaces-64)")
    p.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--images", type=int, default=64, help="images per timing round and batch size")
    p.add_argument("--rounds", type=int, default=7, help="alternating timing rounds; the median is reported")
    p.add_argument("--malloc", default="default,tuned", help="allocator modes: default, tuned, or both")
    p.add_argument("--reference", default=None, help="path to a checkout of NVIDIA's stylegan2-ada-pytorch")
    p.add_argument("--impls", default=None, help="comma-separated subset of implementations to time")
    p.add_argument("--peak-gflops", type=float, default=125.0, help="fp32 peak of the machine, for the fraction")
    p.add_argument("--device", default="cpu", help="cpu or cuda (timings synchronise the GPU)")
    p.add_argument("--fp16-res", type=int, default=0,
                   help="build the preset with NVIDIA's num_fp16_res=N and conv_clamp=256 (fp16 runs on CUDA)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    for mode in args.malloc.split(","):
        if mode not in ("default", "tuned"):
            p.error(f"unknown allocator mode {mode!r}")
        cmd = [sys.executable, __file__, "--worker", "--malloc", mode]
        for key in ("preset", "network", "batch", "threads", "images", "rounds", "reference", "impls", "peak_gflops",
                    "device", "fp16_res"):
            value = getattr(args, key)
            if value is not None:
                cmd += [f"--{key.replace('_', '-')}", str(value)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        subprocess.run(cmd, check=True, env=env)


if __name__ == "__main__":
    main()
