"""CUDA paths, run where a GPU is present (``benchmarks/gpu_check.sh`` runs ``-m gpu``; skipped elsewhere).

Each compares the GPU with the CPU on the same seeded inputs, so a wrong device placement, a CUDA-only dtype
rule or a backend difference shows as a number, not as a crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentlab.perceptual import MSELoss
from latentlab.projection import ProjectConfig, project_batch
from latentlab.train import TrainConfig, train

from conftest import free_port, random_pngs, tiny_G

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.gpu


def _targets(G, n=2, seed=3):
    with torch.no_grad():
        return G(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)), noise_mode="const")


def test_cuda_projection_finds_what_the_cpu_finds():
    G = tiny_G()
    target = _targets(G)
    cfg = ProjectConfig(steps=30, w_avg_samples=500)
    cpu = project_batch(G, target, MSELoss(), cfg)
    Gc = tiny_G().cuda()
    gpu = project_batch(Gc, target.cuda(), MSELoss(), cfg)
    moved = (cpu.ws.cpu() - G.w_avg).norm()  # how far the search went (23.5 here)
    # the same search to rounding (cuDNN may run fp32 convolutions in TF32); bf16 on the CPU lands 0.13 away
    assert (gpu.ws.cpu() - cpu.ws.cpu()).norm() < 0.02 * moved
    bf = project_batch(Gc, target.cuda(), MSELoss(), ProjectConfig(steps=30, w_avg_samples=500, precision="bf16"))
    assert (bf.ws.cpu() - cpu.ws.cpu()).norm() < 0.05 * moved
    with torch.no_grad():
        start = G.synthesis(G.w_avg.expand(2, G.num_ws, -1), noise_mode="const")
    assert (gpu.images.cpu() - target).square().mean() < 0.5 * (start - target).square().mean()  # it did fit


def test_cuda_training_tick_and_snapshot(tmp_path):
    data = random_pngs(tmp_path / "data")
    res = train(TrainConfig(data=str(data), outdir=str(tmp_path / "run"), preset="tiny", batch=4, kimg=0.016,
                            snap=0.016, tick=0.008, grid=4, progress=False, device="cuda"), log=None)  # fmt: skip
    assert res.cur_nimg == 16 and res.snapshot.is_file()


def test_nccl_with_torchrun_on_one_gpu(tmp_path):
    data = random_pngs(tmp_path / "data")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "latentlab", "train",
           "--data", str(data), "--outdir", str(tmp_path / "run"), "--preset", "tiny", "--batch", "4",
           "--kimg", "0.016", "--snap", "0.016", "--tick", "0.008", "--grid", "4", "--no-progress",
           "--device", "cuda"]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "run" / "network-snapshot-000000.016.safetensors").is_file()
    state = torch.load(tmp_path / "run" / "training-state-000000.016.pt", weights_only=True)
    assert state["world_size"] == 1
