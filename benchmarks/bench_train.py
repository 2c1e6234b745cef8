"""Training speed: seconds per kimg of StyleGAN2 training, main phases only and amortized with lazy regularization.

Config B (issue 4): 32x32, z = w = 512, 8 mapping layers, channels {4: 128, 8: 128, 16: 128, 32: 64}, batch 16,
fp32, 2 threads. "Main phases" = Gmain + Dmain every minibatch; "amortized" adds path-length regularization
every 4 minibatches (half batch) and R1 every 16, timed over a multiple of 16 minibatches so each lazy term
appears in its true proportion.

With ``--nvidia PATH`` (a checkout of NVlabs/stylegan2-ada-pytorch) the same config is timed with NVIDIA's own
networks, loss and phase loop in the same process, interleaved round by round with latentlab so both see the
same machine load; the script reports the ratio. Nothing from NVIDIA's code is copied here: it is imported
from the checkout you point at.

Prints one JSON line per (implementation, mode) and a summary line.

    python benchmarks/bench_train.py --threads 2 --rounds 3 --nvidia ~/src/stylegan2-ada-pytorch
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import latentlab
from latentlab.nn.config import get_preset
from latentlab.train import TrainConfig, Trainer

PRESET = "bench-b"


def make_dataset(folder: Path, n: int, res: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


# --------------------------------------------------------------------------------------------------
# latentlab


class LatentlabRunner:
    def __init__(self, data: Path, batch: int, regularize: bool, device: torch.device, precision: str = "fp32"):
        kw = {} if regularize else {"gamma": 0.0, "pl_weight": 0.0}
        cfg = TrainConfig(data=str(data), outdir=str(data.parent / f"run-{precision}"), preset=PRESET, batch=batch,
                          progress=False, device=str(device), precision=precision, **kw)  # fmt: skip
        self.trainer = Trainer(cfg)
        self.batch = batch

    def step(self) -> None:
        self.trainer.step()

    def reset(self) -> None:
        """Restart the lazy-regularization schedule, so a timed round starts on a regularization step."""
        self.trainer.batch_idx = 0


# --------------------------------------------------------------------------------------------------
# NVIDIA stylegan2-ada-pytorch, imported from a checkout


class NvidiaRunner:
    """NVIDIA's networks, StyleGAN2Loss and the phase loop of their training_loop.py, in fp32 (their custom CUDA
    ops where they build on a GPU, else their reference ops)."""

    def __init__(self, repo: Path, data: Path, batch: int, regularize: bool, device: torch.device):
        sys.path.insert(0, str(repo))
        if "requests" not in sys.modules:
            try:
                import requests  # noqa: F401  (dnnlib.util imports it at module level)
            except ImportError:
                sys.modules["requests"] = types.ModuleType("requests")
        from training.loss import StyleGAN2Loss
        from training.networks import Discriminator, Generator

        p = get_preset(PRESET)
        g, d = p.G, p.D
        torch.manual_seed(0)
        self.G = (
            Generator(
                z_dim=g.z_dim,
                c_dim=0,
                w_dim=g.w_dim,
                img_resolution=g.resolution,
                img_channels=3,
                mapping_kwargs=dict(num_layers=g.mapping_layers),
                synthesis_kwargs=dict(
                    channel_base=g.channel_base, channel_max=g.channel_max, num_fp16_res=0, conv_clamp=None
                ),
            )
            .train()
            .requires_grad_(False)
            .to(device)
        )
        self.D = (
            Discriminator(
                c_dim=0,
                img_resolution=d.resolution,
                img_channels=3,
                channel_base=d.channel_base,
                channel_max=d.channel_max,
                num_fp16_res=0,
                conv_clamp=None,
                epilogue_kwargs=dict(mbstd_group_size=4),
            )
            .train()
            .requires_grad_(False)
            .to(device)
        )
        import copy

        self.G_ema = copy.deepcopy(self.G).eval()
        gamma = 0.0002 * g.resolution**2 / batch if regularize else 0.0
        self.loss = StyleGAN2Loss(
            device=device,
            G_mapping=self.G.mapping,
            G_synthesis=self.G.synthesis,
            D=self.D,
            r1_gamma=gamma,
            pl_weight=2 if regularize else 0,
        )
        self.phases = []
        for name, module, interval in (("G", self.G, 4), ("D", self.D, 16)):
            if not regularize:
                self.phases.append(
                    (
                        name + "main",
                        module,
                        torch.optim.Adam(module.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8),
                        1,
                    )
                )
                continue
            c = interval / (interval + 1)
            opt = torch.optim.Adam(module.parameters(), lr=0.0025 * c, betas=(0.0, 0.99**c), eps=1e-8)
            self.phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
        self.batch, self.batch_idx, self.cur_nimg = batch, 0, 0
        rng = np.random.default_rng(0)
        self.reals = torch.from_numpy(rng.integers(0, 256, (256, 3, g.resolution, g.resolution)).astype(np.float32))
        self.reals, self.device = self.reals.to(device), device
        self.z_dim = g.z_dim

    def reset(self) -> None:
        self.batch_idx = 0

    def step(self) -> None:
        b = self.batch
        idx = torch.randint(len(self.reals), [b])
        real = self.reals[idx.to(self.device)] / 127.5 - 1
        real_c = torch.zeros([b, 0], device=self.device)
        all_z = torch.randn([len(self.phases) * b, self.z_dim]).to(self.device).split(b)
        for (name, module, opt, interval), z in zip(self.phases, all_z, strict=True):
            if self.batch_idx % interval:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(
                phase=name, real_img=real, real_c=real_c, gen_z=z, gen_c=real_c, sync=True, gain=interval
            )
            module.requires_grad_(False)
            for p in module.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()
        with torch.no_grad():
            ema_nimg = min(b * 10 / 32 * 1000, self.cur_nimg * 0.05)
            beta = 0.5 ** (b / max(ema_nimg, 1e-8))
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b_ in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                b_ema.copy_(b_)
        self.cur_nimg += b
        self.batch_idx += 1


# --------------------------------------------------------------------------------------------------


def time_steps(runner, steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        runner.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=32, help="minibatches per timed round (a multiple of 16)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per runner (the median is reported)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mode", choices=["both", "main", "amortized"], default="both",
                    help="time only one mode (a separate process per mode gives each its own peak RSS)")
    ap.add_argument("--nvidia", type=Path, default=None, help="a stylegan2-ada-pytorch checkout to compare with")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--precisions", default="fp32", help="latentlab runners: fp32, bf16 or both (fp32,bf16)")
    args = ap.parse_args()
    if args.steps % 16:
        ap.error("--steps must be a multiple of 16 so that the lazy terms are amortized exactly")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = make_dataset(tmp / "data", 256, get_preset(PRESET).G.resolution)
    env = {"latentlab": latentlab.__version__, "torch": torch.__version__, "threads": args.threads,
           "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "batch": args.batch,
           "preset": PRESET, "device": str(device)}  # fmt: skip
    results: dict[tuple[str, str], float] = {}
    modes = [(m, r) for m, r in (("main", False), ("amortized", True)) if args.mode in ("both", m)]
    for mode, regularize in modes:
        runners = {("latentlab" if p == "fp32" else f"latentlab-{p}"): LatentlabRunner(data, args.batch, regularize,
                                                                                       device, p)
                   for p in args.precisions.split(",")}  # fmt: skip
        if args.nvidia is not None:
            runners["nvidia"] = NvidiaRunner(args.nvidia, data, args.batch, regularize, device)
        for r in runners.values():
            for _ in range(args.warmup):
                r.step()
            r.reset()
        times: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.rounds):  # interleaved, so both see the same load
            for name, r in runners.items():
                times[name].append(time_steps(r, args.steps, device))
        for name, ts in times.items():
            s_per_kimg = statistics.median(ts) / (args.steps * args.batch) * 1000
            results[(name, mode)] = s_per_kimg
            print(json.dumps({"bench": "train", "impl": name, "mode": mode, "s_per_kimg": round(s_per_kimg, 2),
                              "rounds": [round(t, 3) for t in ts], **env}), flush=True)  # fmt: skip
    summary = {
        "bench": "train-summary",
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if device.type == "cuda":
        summary["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    if args.nvidia is not None:
        for mode, _ in modes:
            for name in (n for n, m in results if m == mode and n != "nvidia"):
                suffix = name[len("latentlab"):].replace("-", "_")
                summary[f"speedup_{mode}{suffix}"] = round(results[("nvidia", mode)] / results[(name, mode)], 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
