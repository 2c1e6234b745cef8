"""The training loop: files, resume equals uninterrupted, crash safety, two processes, learning, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from latentlab import load_any, load_checkpoint, seed_to_z, to_uint8
from latentlab.cli import cli
from latentlab.io.checkpoint import CheckpointError
from latentlab.train import TrainConfig, Trainer, find_resume_point, list_snapshots, train
from latentlab.validate import InvalidInput

from conftest import free_port, kill_9_when_flagged, relative_difference

REPO = Path(__file__).resolve().parents[1]


def _dataset(path: Path, n: int = 12, color=None, labels: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = np.full((16, 16, 3), color, np.uint8) if color else rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(a).save(path / f"{i:03d}.png")
    if labels:
        (path / "dataset.json").write_text(json.dumps({"labels": [[f"{i:03d}.png", i % 3] for i in range(n)]}))
    return path


def _config(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(data=str(tmp_path / "data"), outdir=str(tmp_path / "run"), preset="tiny", batch=4, kimg=0.08,
                snap=0.04, tick=0.02, grid=4, progress=False, threads=2)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


@pytest.fixture
def data(tmp_path):
    return _dataset(tmp_path / "data")


# --------------------------------------------------------------------------------------------------


def test_run_writes_snapshots_states_grids_and_stats(tmp_path, data):
    res = train(_config(tmp_path), log=None)
    run = tmp_path / "run"
    assert res.cur_nimg == 80 and res.snapshot == run / "network-snapshot-000000.080.safetensors"
    names = sorted(p.name for p in run.iterdir())
    assert names == ["config.json", "network-snapshot-000000.040.safetensors",
                     "network-snapshot-000000.080.safetensors", "reals.png", "samples-000000.040.png",
                     "samples-000000.080.png", "stats.jsonl",
                     "training-state-000000.040.pt", "training-state-000000.080.pt"]  # fmt: skip
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["cur_nimg"] for r in rows] == [20, 40, 60, 80]
    for key in ("Loss/G/loss", "Loss/D/loss", "Loss/scores/real", "sec_per_kimg", "pl_mean", "peak_rss_mb"):
        assert all(r[key] is not None for r in rows), key
    assert rows[0]["Loss/r1_penalty"] > 0 and rows[0]["Loss/pl_penalty"] >= 0  # batch 0 regularizes
    ck = load_checkpoint(res.snapshot)
    assert ck.G is not None and ck.G_ema is not None and ck.D is not None
    assert ck.meta["cur_nimg"] == 80 and ck.meta["train"]["preset"] == "tiny"
    assert not torch.equal(ck.G.synthesis.b16.conv1.weight, ck.G_ema.synthesis.b16.conv1.weight)
    with Image.open(run / "samples-000000.080.png") as im:
        assert im.size == (4 * 16, 16)
        grid = np.asarray(im)
    with torch.no_grad():  # cell 2 is seed 2, as `latentlab generate --seeds 2 --noise-mode const` renders it
        want = to_uint8(ck.G_ema(seed_to_z(32, 2), noise_mode="const"))[0]
    assert np.abs(grid[:, 32:48].astype(int) - want.astype(int)).max() <= 1
    assert json.loads((run / "config.json").read_text())["batch"] == 4


def test_keep_last_k(tmp_path, data):
    train(_config(tmp_path, kimg=0.1, snap=0.02, keep=2), log=None)
    states = [p.name for p in list_snapshots(tmp_path / "run")]
    assert states == ["training-state-000000.080.pt", "training-state-000000.100.pt"]
    nets = sorted(p.name for p in (tmp_path / "run").glob("network-snapshot-*"))
    assert nets == ["network-snapshot-000000.080.safetensors", "network-snapshot-000000.100.safetensors"]


@pytest.mark.parametrize("augment", ["none", "ada"])
def test_resume_equals_uninterrupted(tmp_path, data, augment):
    # With ADA: p starts at 0.2 and moves fast (ada_kimg 0.1), and the snapshot falls mid-interval.
    aug = {} if augment == "none" else dict(augment="ada", aug_p=0.2, ada_kimg=0.1, ada_interval=3)
    full = train(_config(tmp_path, outdir=str(tmp_path / "full"), **aug), log=None)
    half = _config(tmp_path, outdir=str(tmp_path / "split"), kimg=0.04, **aug)
    train(half, log=None)
    resumed = train(dataclasses.replace(half, kimg=0.08, resume="auto"), log=None)
    a, b = _tensors(full.snapshot), _tensors(resumed.snapshot)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit for bit
    sa = torch.load(full.state, weights_only=True)
    sb = torch.load(resumed.state, weights_only=True)
    assert torch.equal(sa["rng"], sb["rng"]) and sa["data"] == sb["data"] and torch.equal(sa["pl_mean"], sb["pl_mean"])
    assert sa["augment"] == sb["augment"]
    if augment == "ada":
        assert sa["augment"]["p"] != 0.2  # p moved
    # The resumed run's stats continue the interrupted one's.
    rows = [json.loads(x)["cur_nimg"] for x in (tmp_path / "split" / "stats.jsonl").read_text().splitlines()]
    assert rows == [20, 40, 60, 80]


def test_init_from_a_foreign_checkpoint_and_from_a_snapshot(tmp_path, data):
    src = REPO / "tests" / "fixtures" / "rosinality_tiny.pt"
    res = train(_config(tmp_path, init=str(src), kimg=0.008, snap=0.008, lr_G=0.0, lr_D=0.0), log=None)
    ours, theirs = load_checkpoint(res.snapshot), load_any(src)
    for name in ("G", "D"):
        a, b = getattr(ours, name).state_dict(), getattr(theirs, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in b if not k.endswith("w_avg")), name  # lr 0: unchanged
    assert ours.meta["train"]["init"] == str(src)
    # A latentlab snapshot as init continues its image count.
    res2 = train(_config(tmp_path, outdir=str(tmp_path / "warm"), init=str(res.snapshot), kimg=0.016, snap=0.008),
                 log=None)  # fmt: skip
    assert res2.cur_nimg == 16 and res2.stats[0]["cur_nimg"] == 16
    with pytest.raises(ValueError, match="conditioned on"):
        train(_config(tmp_path, outdir=str(tmp_path / "c"), init=str(REPO / "tests" / "fixtures" / "nvidia_tiny.pkl")),
              log=None)  # fmt: skip


def test_init_without_d_gets_the_runs_seeded_d(tmp_path, data):
    from latentlab import save_checkpoint

    from conftest import tiny_G

    src = save_checkpoint(tmp_path / "g_only.safetensors", G_ema=tiny_G())
    cfg = _config(tmp_path, init=str(src))
    torch.manual_seed(1)
    d1 = Trainer(cfg).D.state_dict()
    torch.manual_seed(2)  # the caller's random state must not matter: the run's seed makes D
    d2 = Trainer(cfg).D.state_dict()
    assert d1.keys() == d2.keys() and all(torch.equal(d1[k], d2[k]) for k in d1)
    d3 = Trainer(dataclasses.replace(cfg, seed=5)).D.state_dict()
    assert not all(torch.equal(d1[k], d3[k]) for k in d1)


def test_decoding_threads_change_nothing(tmp_path, data):
    a = train(_config(tmp_path, outdir=str(tmp_path / "w0"), kimg=0.02, snap=0.02), log=None)
    b = train(_config(tmp_path, outdir=str(tmp_path / "w2"), kimg=0.02, snap=0.02, workers=2), log=None)
    ta, tb = _tensors(a.snapshot), _tensors(b.snapshot)
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_resume_refuses_a_different_config_and_an_occupied_outdir(tmp_path, data):
    cfg = _config(tmp_path, kimg=0.04)
    train(cfg, log=None)
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, log=None)
    with pytest.raises(ValueError, match=r"differs from the saved run in batch: 4 -> 8"):
        train(dataclasses.replace(cfg, batch=8, resume="auto"), log=None)
    res = train(dataclasses.replace(cfg, resume="auto"), log=None)  # nothing left to do: points at the snapshot
    assert res.snapshot.name == "network-snapshot-000000.040.safetensors" and res.stats == []
    with pytest.raises(CheckpointError, match="no snapshot"):
        train(dataclasses.replace(cfg, outdir=str(tmp_path / "other"), resume=str(tmp_path / "empty")), log=None)


def test_torn_latest_snapshot_falls_back_to_the_previous(tmp_path, data):
    train(_config(tmp_path), log=None)
    run = tmp_path / "run"
    (run / "network-snapshot-000000.080.safetensors").write_bytes(b"torn")
    with pytest.warns(UserWarning, match="different size"):
        path, state = find_resume_point(run)
    assert path.name == "training-state-000000.040.pt" and state["cur_nimg"] == 40
    (run / "training-state-000000.040.pt").write_bytes(b"torn")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="no usable snapshot"):
        find_resume_point(run)


# --------------------------------------------------------------------------------------------------
# kill -9 in the middle of writing a snapshot.

_KILL_SCRIPT = """
import sys, time, torch
import latentlab.io.checkpoint as ck
import latentlab.train.loop as loop
from latentlab.train import TrainConfig, train

what, flag = sys.argv[1], sys.argv[2]
calls = {"n": 0}

def stall(write):
    def wrapper(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second snapshot: write half a file, tell the test, wait to be killed
            with open(path, "wb") as f:
                f.write(b"half a file" * 100)
                f.flush()
            open(flag, "w").close()
            time.sleep(120)
        return write(obj, path, *args, **kwargs)
    return wrapper

if what == "network":
    ck.save_file = stall(ck.save_file)
else:
    loop._write_state = stall(loop._write_state)
train(TrainConfig(**__CONFIG__), log=None)
"""


@pytest.mark.parametrize("what", ["network", "state"])
def test_kill_9_during_a_save_leaves_a_resumable_run(tmp_path, data, what):
    cfg = _config(tmp_path)
    flag = tmp_path / "saving"
    script = _KILL_SCRIPT.replace("__CONFIG__", repr({k: v for k, v in cfg.to_dict().items() if k not in ("G", "D")}))
    kill_9_when_flagged([sys.executable, "-c", script, what, str(flag)], flag, REPO, "the trainer")
    run = tmp_path / "run"
    leftovers = [p.name for p in run.iterdir() if ".tmp-" in p.name]
    assert leftovers, "the kill should have left a temporary file behind"
    path, state = find_resume_point(run)
    assert state["cur_nimg"] == 40  # the last complete snapshot
    load_checkpoint(run / state["network_file"])
    # Resuming finishes the run, cleans the temporaries and matches an uninterrupted run.
    resumed = train(dataclasses.replace(cfg, resume="auto"), log=None)
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]
    full = train(dataclasses.replace(cfg, outdir=str(tmp_path / "full")), log=None)
    a, b = _tensors(full.snapshot), _tensors(resumed.snapshot)
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------------
# Learning.


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_tiny_generator_learns_a_single_colour(tmp_path, precision):
    """The learning test; with bf16 (G's synthesis and D's blocks) it must learn as fp32 does."""
    target = np.array([220, 40, 60], np.float32) / 127.5 - 1
    _dataset(tmp_path / "data", n=8, color=(220, 40, 60))
    cfg = _config(tmp_path, kimg=0.6, batch=8, snap=0.6, tick=0.2, precision=precision)
    z = torch.randn([64, 32], generator=torch.Generator().manual_seed(0))

    def mean_colour(G):
        with torch.no_grad():
            return G(z, noise_mode="const").mean(dim=[0, 2, 3]).numpy()

    start = mean_colour(Trainer(cfg).G_ema)  # the same seeded initialisation as the run
    end = mean_colour(load_checkpoint(train(cfg, log=None).snapshot).G_ema)
    d0, d1 = np.abs(start - target).mean(), np.abs(end - target).mean()
    assert d1 < 0.5 * d0, (start, end, target)


def test_bfloat16_training_runs_in_bfloat16_and_resumes_in_either_precision(tmp_path, data):
    runs = {p: train(_config(tmp_path, outdir=str(tmp_path / p), kimg=0.016, snap=0.008, precision=p), log=None)
            for p in ("fp32", "bf16")}  # fmt: skip
    a, b = _tensors(runs["fp32"].snapshot), _tensors(runs["bf16"].snapshot)
    assert a.keys() == b.keys() and all(b[k].dtype == a[k].dtype for k in a)  # the weights stay float32
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("D."))  # D's blocks did run in bfloat16
    # a run started in bf16 continues in fp32 (a runtime choice, like the device)
    more = train(_config(tmp_path, outdir=str(tmp_path / "bf16"), kimg=0.024, snap=0.008, resume="auto"), log=None)
    assert more.cur_nimg == 24
    with pytest.raises(InvalidInput, match="precision must be 'fp32' or 'bf16'"):
        _config(tmp_path, precision="fp16")


def test_conditional_training_uses_labels(tmp_path):
    _dataset(tmp_path / "data", labels=True)
    res = train(_config(tmp_path, cond=True, kimg=0.02, snap=0.02), log=None)
    ck = load_checkpoint(res.snapshot)
    assert ck.G.c_dim == 3 and ck.D.c_dim == 3
    with pytest.raises(ValueError, match="no labels"):
        _dataset(tmp_path / "plain")
        train(_config(tmp_path, data=str(tmp_path / "plain"), outdir=str(tmp_path / "r2"), cond=True), log=None)


# --------------------------------------------------------------------------------------------------
# Two processes.


def test_two_gloo_processes_agree_with_one(tmp_path, data):
    cfg = _config(tmp_path, outdir=str(tmp_path / "one"), kimg=0.064, snap=0.032, batch=8, threads=1)
    one = train(cfg, log=None)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "latentlab", "train",
           "--data", cfg.data, "--outdir", str(tmp_path / "two"), "--preset", "tiny", "--batch", "8",
           "--kimg", "0.032", "--snap", "0.032", "--tick", "0.02", "--grid", "4", "--threads", "1",
           "--no-progress", "--device", "cpu"]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "2 processes" in r.stdout
    name = "network-snapshot-000000.032.safetensors"
    t = Trainer(cfg)
    init = {**{f"G.{k}": v for k, v in t.G.state_dict().items()}, **{f"D.{k}": v for k, v in t.D.state_dict().items()}}
    # Gradients agree to float summation order; Adam's first steps divide by |g|, which turns rounding in
    # near-zero gradients into up-to-lr differences in a handful of weights. So compare the whole update:
    # the two runs' difference must be tiny next to how far training moved the weights.
    rel, moved = relative_difference(_tensors(tmp_path / "one" / name), _tensors(tmp_path / "two" / name), init)
    assert moved > 10 and rel < 2e-3, (rel, moved)
    state = torch.load(tmp_path / "two" / "training-state-000000.032.pt", weights_only=True)
    same = torch.load(tmp_path / "one" / "training-state-000000.032.pt", weights_only=True)
    assert state["world_size"] == 2 and state["data"] == same["data"] and torch.equal(state["rng"], same["rng"])
    # The state does not depend on the number of processes: continue the 2-process run in one process.
    resumed = train(dataclasses.replace(cfg, outdir=str(tmp_path / "two"), resume="auto"), log=None)
    rel, _ = relative_difference(_tensors(one.snapshot), _tensors(resumed.snapshot), init)
    assert rel < 2e-3, rel


# --------------------------------------------------------------------------------------------------
# The CLI.


def test_cli_train_and_resume(tmp_path, data):
    run = tmp_path / "cli-run"
    args = ["train", "--data", str(data), "--outdir", str(run), "--preset", "tiny", "--batch", "4", "--kimg", "0.02",
            "--snap", "0.02", "--tick", "0.02", "--grid", "4", "--no-progress", "--augment", "ada",
            "--aug-p", "0.1"]  # fmt: skip
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "done at 0.020 kimg" in r.output
    r = CliRunner().invoke(cli, ["train", "--outdir", str(run), "--resume", "auto", "--kimg", "0.04", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "resuming from" in r.output and "done at 0.040 kimg" in r.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["preset"] == "tiny" and saved["batch"] == 4 and saved["kimg"] == 0.04
    assert saved["augment"] == "ada" and saved["aug_p"] == 0.1
    assert json.loads((run / "stats.jsonl").read_text().splitlines()[-1])["augment_p"] >= 0
    r = CliRunner().invoke(cli, ["train", "--outdir", str(run), "--resume", "auto", "--batch", "8"])
    assert r.exit_code == 1 and "batch: 4 -> 8" in r.output
    r = CliRunner().invoke(cli, ["train", "--outdir", str(tmp_path / "new")])
    assert r.exit_code == 1 and "--data" in r.output
    r = CliRunner().invoke(cli, ["train", "--data", str(data), "--outdir", str(tmp_path / "x"), "--preset", "nope"])
    assert r.exit_code == 1 and "unknown preset 'nope'" in r.output
    r = CliRunner().invoke(cli, ["train", "--help"])
    assert "Examples" in r.output and "torchrun" in r.output


def test_training_from_a_prepared_zip(tmp_path):
    from latentlab.train import prepare_dataset

    src = _dataset(tmp_path / "src", n=6)
    zpath = tmp_path / "d.zip"
    prepare_dataset(src, zpath, resolution=16, progress=False)
    assert zipfile.is_zipfile(zpath)
    res = train(_config(tmp_path, data=str(zpath), kimg=0.008, snap=0.008), log=None)
    assert res.cur_nimg == 8
