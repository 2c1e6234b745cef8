"""StyleGAN v1 training: the progressive-growing schedule (known values from NVIDIA's TrainingSchedule rules), the
real-image processing, the recipe, the networks run only where they reach the output, optimizer resets, exact
resume across a fade, two processes, learning, the CLI and its errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from latentlab import load_checkpoint
from latentlab.cli import cli
from latentlab.nn import Discriminator, Generator, get_preset
from latentlab.train import TrainConfig, Trainer, train
from latentlab.train.config import STYLEGAN1_RECIPE
from latentlab.train.growing import growing_lod, lod_changed, process_reals
from latentlab.validate import InvalidInput

from conftest import free_port, relative_difference

REPO = Path(__file__).resolve().parents[1]


def _dataset(path: Path, n: int = 12, color=None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.full((16, 16, 3), color, np.uint8) if color else rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(a).save(path / f"{i:03d}.png")
    return path


def _config(tmp_path: Path, **kw) -> TrainConfig:
    # 16 px from 4 px: 4x4 for 16 images, fade to 8x8 over 16, 8x8 for 16, fade to 16x16 over 16, then 16x16.
    base = dict(data=str(tmp_path / "data"), outdir=str(tmp_path / "run"), preset="stylegan1-tiny",
                lod_initial_resolution=4, lod_training_kimg=0.016, lod_transition_kimg=0.016,
                batch_dict=((4, 8), (8, 8), (16, 4)), kimg=0.08, snap=0.04, tick=0.008, grid=4, progress=False,
                threads=2)  # fmt: skip
    return TrainConfig.stylegan1(**{**base, **kw})


@pytest.fixture
def data(tmp_path):
    return _dataset(tmp_path / "data")


# --- the schedule ------------------------------------------------------------------------------------------


def test_lod_follows_nvidias_schedule():
    # 64 px from 8 px, 600 kimg stable + 600 fade: lod 3 (8x8) ... 0 (64x64).
    cases = {0: 3.0, 599_999: 3.0, 600_000: 3.0, 900_000: 2.5, 1_200_000: 2.0, 1_800_000: 2.0, 2_100_000: 1.5,
             3_000_000: 1.0, 3_300_000: 0.5, 3_600_000: 0.0, 10_000_000: 0.0}  # fmt: skip
    for nimg, lod in cases.items():
        assert growing_lod(nimg, 64, 8, 600, 600) == pytest.approx(lod, abs=1e-9), nimg
    assert growing_lod(0, 64, 64, 600, 600) == 0.0  # starting at full size: no growing
    assert growing_lod(150_000, 16, 4, 100, 0) == 1.0  # no fades: a jump per phase


def test_optimizers_reset_when_floor_or_ceil_changes():
    assert lod_changed(None, 3.0)
    assert not lod_changed(3.0, 3.0)
    assert lod_changed(3.0, 2.9)  # a fade starts: floor 3 -> 2
    assert not lod_changed(2.9, 2.5)
    assert lod_changed(2.1, 2.0)  # the fade ends: ceil 3 -> 2
    assert not lod_changed(2.0, 2.0)


def test_reals_are_box_filtered_faded_and_repeated():
    img = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert process_reals(img, 0.0) is img
    x = img.numpy()
    box = x.reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5))  # [2, 3, 4, 4]
    up = box.repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(process_reals(img, 1.0).numpy(), up, rtol=0, atol=1e-12)
    # lod 0.25: the full image a quarter of the way to its own 2x2 average
    np.testing.assert_allclose(process_reals(img, 0.25).numpy(), x + 0.25 * (up - x), rtol=0, atol=1e-12)
    # lod 1.5: the 4x4 image half-way to its 2x2 average, repeated to 8x8
    box2 = box.reshape(2, 3, 2, 2, 2, 2).mean(axis=(3, 5)).repeat(2, axis=2).repeat(2, axis=3)
    mid = box + 0.5 * (box2 - box)
    np.testing.assert_allclose(process_reals(img, 1.5).numpy(), mid.repeat(2, axis=2).repeat(2, axis=3), atol=1e-12)


def test_the_stylegan1_recipe_and_its_phases():
    cfg = TrainConfig.stylegan1(data="d", outdir="o", preset="stylegan1-1024")
    assert (cfg.gamma, cfg.r1_interval, cfg.pl_weight, cfg.ema_kimg, cfg.ema_rampup) == (10.0, 1, 0.0, 10.0, None)
    assert cfg.r1_gamma() == 10.0 and cfg.ema_half_life_kimg == 10.0
    p = cfg.phase(0)
    assert (p.lod, p.resolution, p.batch, p.lr_G) == (7.0, 8, 128, 0.001)
    p = cfg.phase(int(5 * 1200e3 + 100e3))  # 5 phases done: 256x256 stable
    assert (p.lod, p.resolution, p.batch, p.lr_G, p.lr_D) == (2.0, 256, 8, 0.002, 0.002)
    p = cfg.phase(int(7 * 1200e3 + 900e3))  # beyond growing
    assert (p.lod, p.resolution, p.batch, p.lr_G) == (0.0, 1024, 4, 0.003)
    assert p.layers_in_use(18) == 18 and cfg.phase(0).layers_in_use(18) == 4
    # The preset defaults to stylegan1-64; a constant batch or lr replaces the tables.
    small = TrainConfig.stylegan1(data="d", outdir="o", batch=16, lr_G=0.002, lr_D=0.002)
    assert small.preset == "stylegan1-64" and small.batch_dict is None and small.lr_dict is None
    assert small.phase(0) == type(p)(3.0, 8, 16, 0.002, 0.002)
    # Tables survive the JSON round trip of a run folder.
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.batch_dict == STYLEGAN1_RECIPE["batch_dict"] and not cfg.differences(again)


def test_growing_config_errors():
    with pytest.raises(InvalidInput, match="progressive growing .* is StyleGAN v1's; a stylegan2 generator"):
        TrainConfig(data="d", outdir="o", preset="tiny", lod_initial_resolution=4)
    with pytest.raises(InvalidInput, match="batch_dict sets values per resolution, which needs progressive growing"):
        TrainConfig(data="d", outdir="o", preset="stylegan1-tiny", batch_dict=((8, 4),))
    with pytest.raises(InvalidInput, match="lod_initial_resolution must be a power of two, got 6"):
        TrainConfig.stylegan1(data="d", outdir="o", preset="stylegan1-tiny", lod_initial_resolution=6)
    with pytest.raises(InvalidInput, match="lod_initial_resolution 32 is above the network's resolution 16"):
        TrainConfig.stylegan1(data="d", outdir="o", preset="stylegan1-tiny", lod_initial_resolution=32)
    with pytest.raises(InvalidInput, match="batch_dict resolution 12 is not a power of two"):
        TrainConfig.stylegan1(data="d", outdir="o", preset="stylegan1-tiny", batch_dict=((12, 4),))
    with pytest.raises(InvalidInput, match=r"lr_dict\[8\]"):
        TrainConfig.stylegan1(data="d", outdir="o", preset="stylegan1-tiny", lr_dict=((8, -1.0),))
    with pytest.raises(InvalidInput, match="names a resolution twice"):
        TrainConfig.stylegan1(data="d", outdir="o", preset="stylegan1-tiny", batch_dict=((8, 4), (8, 8)))
    with pytest.raises(InvalidInput, match="lod_training_kimg \\+ lod_transition_kimg > 0"):
        TrainConfig.stylegan1(data="d", outdir="o", preset="stylegan1-tiny", lod_training_kimg=0,
                              lod_transition_kimg=0)  # fmt: skip
    with pytest.raises(InvalidInput, match="G is stylegan1 but D is stylegan2"):
        TrainConfig(data="d", outdir="o", G=get_preset("stylegan1-tiny").G, D=get_preset("tiny").D)


# --- the networks run only where they reach the output -------------------------------------------------------


def test_layers_above_the_level_get_no_gradient_and_change_nothing():
    torch.manual_seed(0)
    G = Generator(get_preset("stylegan1-tiny").G)
    D = Discriminator(get_preset("stylegan1-tiny").D)
    ws = torch.randn(4, G.num_ws, G.w_dim)
    G.synthesis.lod.fill_(1.0)
    D.lod.fill_(1.0)
    img = G.synthesis(ws, noise_mode="const")
    assert torch.equal(img, img[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3))  # 8x8, repeated
    (D(img).sum()).backward()
    top = {n for n, p in G.named_parameters() if n.startswith("synthesis.b16.")}
    assert top and all(p.grad is None for n, p in G.named_parameters() if n in top)
    assert all(p.grad is not None for n, p in G.named_parameters() if n.startswith("synthesis.b8."))
    assert D.b16.conv0.weight.grad is None and D.b16.fromrgb.weight.grad is None
    assert D.b8.fromrgb.weight.grad is not None and D.b8.conv0.weight.grad is not None
    # mid-fade every block is used
    G.zero_grad(set_to_none=True)
    G.synthesis.lod.fill_(0.5)
    G.synthesis(ws, noise_mode="const").sum().backward()
    assert G.synthesis.b16.conv1.weight.grad is not None and G.synthesis.b8.torgb.weight.grad is not None


# --- the loop ----------------------------------------------------------------------------------------------


def test_a_growing_run_moves_through_the_levels_and_resets_adam(tmp_path, data):
    cfg = _config(tmp_path, kimg=0.072, snap=0.072)
    t = Trainer(cfg)
    seen = []
    while t.cur_nimg < 72:
        before = t.cur_nimg
        t.step()
        steps = {int(s["step"]) for s in t.opt_D.state.values()}
        seen.append((before, t.lod, float(t.D.lod), float(t.G_ema.synthesis.lod), steps))
    # Minibatches of 8 at 4x4 and 8x8, of 4 at 16x16, starting at image 0, 8, 16 (lod 2), 24 (fade), 32, 40, 48
    # (lod 1), 56, 60 (fade), 64, 68 (lod 0).
    assert [s[0] for s in seen] == [0, 8, 16, 24, 32, 40, 48, 56, 60, 64, 68]
    assert [s[1] for s in seen] == pytest.approx([2.0, 2.0, 2.0, 1.5, 1.0, 1.0, 1.0, 0.5, 0.25, 0.0, 0.0], abs=1e-12)
    assert all(np.float32(a) == b == c for _, a, b, c, _ in seen)  # G, D and G_ema at one level
    # Adam's step counts restart whenever floor or ceil of lod changes, and every parameter in use steps together.
    assert all(len(s[4]) == 1 for s in seen)
    assert [max(s[4]) for s in seen] == [1, 2, 3, 1, 1, 2, 3, 1, 2, 1, 2]
    assert t.G.synthesis.lod == 0


def test_growing_resume_equals_uninterrupted(tmp_path, data):
    full = train(_config(tmp_path, outdir=str(tmp_path / "full")), log=None)
    half = _config(tmp_path, outdir=str(tmp_path / "split"), kimg=0.06)  # stops inside the second fade
    train(half, log=None)
    resumed = train(dataclasses.replace(half, kimg=0.08, resume="auto"), log=None)
    a, b = load_file(str(full.snapshot)), load_file(str(resumed.snapshot))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    state = torch.load(resumed.state, weights_only=True)
    assert state["lod"] == 0.0
    rows = [json.loads(x) for x in (tmp_path / "split" / "stats.jsonl").read_text().splitlines()]
    assert [r["lod"] for r in rows][:9] == pytest.approx([2.0, 2.0, 2.0, 1.5, 1.0, 1.0, 1.0, 0.5, 0.25], abs=1e-12)
    assert [r["cur_nimg"] for r in rows][6:9] == [56, 60, 64]


def test_a_tiny_v1_generator_learns_a_single_colour(tmp_path):
    target = np.array([220, 40, 60], np.float32) / 127.5 - 1
    _dataset(tmp_path / "data", n=8, color=(220, 40, 60))
    cfg = _config(tmp_path, kimg=0.4, snap=0.4, tick=0.1, lod_training_kimg=0.04, lod_transition_kimg=0.04,
                  lr_dict=((4, 0.01), (8, 0.01), (16, 0.01)), ema_kimg=0.02)  # fmt: skip
    z = torch.randn([64, 32], generator=torch.Generator().manual_seed(0))

    def mean_colour(G):
        with torch.no_grad():
            return G(z, noise_mode="const").mean(dim=[0, 2, 3]).numpy()

    start = mean_colour(Trainer(cfg).G_ema)
    ck = load_checkpoint(train(cfg, log=None).snapshot)
    assert float(ck.G_ema.synthesis.lod) == 0.0
    end = mean_colour(ck.G_ema)
    d0, d1 = np.abs(start - target).mean(), np.abs(end - target).mean()
    assert d1 < 0.5 * d0, (d1 / d0, start, end, target)


def test_two_gloo_processes_grow_like_one(tmp_path, data):
    # Adam restarts at every level, and its first steps divide by |g|: rounding (here even the thread count alone
    # moves a tiny run's weights by 10%) becomes lr-sized steps. eps = 1 makes the updates linear in small
    # gradients, so the comparison sees the data-parallel arithmetic, not Adam's amplification of rounding.
    lrs = ((4, 0.1), (8, 0.1), (16, 0.1))
    cfg = _config(tmp_path, outdir=str(tmp_path / "one"), kimg=0.064, snap=0.064, threads=1, eps=1.0, lr_dict=lrs,
                  batch_dict=((4, 8), (8, 8), (16, 8)))  # fmt: skip
    one = train(cfg, log=None)
    script = tmp_path / "run.py"
    script.write_text("import json, sys\nfrom latentlab.train import TrainConfig, train\n"
                      "train(TrainConfig.from_dict(json.loads(open(sys.argv[1]).read())))\n")  # fmt: skip
    spec = tmp_path / "two.json"
    spec.write_text(json.dumps(dataclasses.replace(cfg, outdir=str(tmp_path / "two"), device="cpu").to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script), str(spec)]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 processes" in r.stdout and "growing from 4px" in r.stdout
    t = Trainer(cfg)
    init = {**{f"G.{k}": v for k, v in t.G.state_dict().items()}, **{f"D.{k}": v for k, v in t.D.state_dict().items()}}
    b = load_file(str(tmp_path / "two" / one.snapshot.name))
    rel, moved = relative_difference(load_file(str(one.snapshot)), b, init)
    assert moved > 10 and rel < 1e-2, (rel, moved)
    assert torch.equal(b["G.synthesis.lod"], torch.tensor(0.5))  # the last minibatch: half-way through the fade
    s1, s2 = (torch.load(p / one.state.name, weights_only=True) for p in (tmp_path / "one", tmp_path / "two"))
    assert s2["world_size"] == 2 and s1["lod"] == s2["lod"] == 0.5 and s1["data"] == s2["data"]
    assert torch.equal(s1["rng"], s2["rng"])


# --- the CLI -----------------------------------------------------------------------------------------------


def test_cli_arch_stylegan1(tmp_path, data):
    run = tmp_path / "cli-v1"
    args = ["train", "--data", str(data), "--outdir", str(run), "--arch", "stylegan1", "--preset", "stylegan1-tiny",
            "--grow-from", "8", "--grow-kimg", "0.008", "--fade-kimg", "0.008", "--batch-by-res", "8:4,16:4",
            "--kimg", "0.024", "--snap", "0.024", "--tick", "0.008", "--grid", "4", "--no-progress"]  # fmt: skip
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "R1 gamma 10, G_ema half-life 10 kimg; growing from 8px, 0.008 + 0.008 kimg per resolution" in r.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["batch_dict"] == [[8, 4], [16, 4]] and saved["lr_dict"] == [[128, 0.0015], [256, 0.002],
                                                                            [512, 0.003], [1024, 0.003]]  # fmt: skip
    assert saved["r1_interval"] == 1 and saved["pl_weight"] == 0 and saved["lod_initial_resolution"] == 8
    r = CliRunner().invoke(cli, ["train", "--outdir", str(run), "--resume", "auto", "--kimg", "0.032", "--no-progress"])
    assert r.exit_code == 0 and "done at 0.032 kimg" in r.output, r.output
    rows = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert [row["lod"] for row in rows] == [1.0, 0.5, 0.0, 0.0]
    # --arch stylegan1 alone picks the v1 preset; mismatches and malformed tables are one line each
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--outdir", str(tmp_path / "x"), "--arch", "stylegan1",
                                 "--preset", "tiny"])  # fmt: skip
    assert r.exit_code == 1 and "--arch stylegan1 does not match preset 'tiny', a stylegan2 network" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--outdir", str(tmp_path / "x"), "--arch", "stylegan1",
                                 "--batch-by-res", "8=4"])  # fmt: skip
    assert r.exit_code == 2 and "'8=4' is not RES:N" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--outdir", str(tmp_path / "x"), "--grow-from", "8"])
    assert r.exit_code == 1 and "is StyleGAN v1's; a stylegan2 generator" in r.output
