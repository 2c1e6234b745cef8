"""Sharded jobs over torchrun's processes (latentlab.parallel): the helpers in one process, then 2-process gloo
runs on the CPU against one process: projection (bit-identical, killed and resumed, a failing rank, mismatched
arguments), tuning, metrics and a direction fit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.io.checkpoint import save_checkpoint
from latentlab.io.latents import load_latents
from latentlab.parallel import World, map_tasks

from conftest import free_port, tiny_G

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTLAB_OFFLINE": "1", "LATENTLAB_WEIGHT_PACKAGES": "0"}


# --------------------------------------------------------------------------------------------------
# One process.


def test_map_tasks_in_one_process_runs_every_task_in_order_and_lets_errors_through():
    rounds = []
    out = map_tasks(World(), 5, lambda k: k * k, on_round=lambda done, fresh: rounds.append((dict(done), fresh)))
    assert out == [0, 1, 4, 9, 16]
    assert [f for _, f in rounds] == [[0], [1], [2], [3], [4]] and rounds[-1][0] == dict(enumerate(out))
    assert map_tasks(World(), 0, lambda k: k) == []

    def fail(k):
        if k == 2:
            raise KeyError("bad input")
        return k

    seen = []
    with pytest.raises(KeyError, match="bad input"):  # one process: the error itself, unchanged
        map_tasks(World(), 4, fail, on_round=lambda done, fresh: seen.extend(fresh))
    assert seen == [0, 1]
    with pytest.raises(ValueError, match="num_tasks"):
        map_tasks(World(), -1, fail)


def test_world_helpers_for_one_process(monkeypatch):
    w = World()
    assert w.gather({"a": 1}) == [{"a": 1}] and all(w.owns(k) for k in range(3))
    w.agree("anything", {"x": 1})  # nothing to compare with
    assert w.device(torch.device("cuda")) == torch.device("cuda")  # one process keeps the device it was given
    two = World(rank=1, size=2, local_rank=1)
    assert [two.owns(k) for k in range(4)] == [False, True, False, True]
    assert two.device(torch.device("cuda")) == torch.device("cuda", 1)
    assert two.device(torch.device("cuda", 0)) == torch.device("cuda", 0)
    assert two.device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # 2 processes, 1 GPU: they share it
    assert two.device(torch.device("cuda")) == torch.device("cuda", 0)


# --------------------------------------------------------------------------------------------------
# Two processes (gloo on the CPU, one thread each).


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A tiny network and 5 target images (16 px)."""
    root = tmp_path_factory.mktemp("sharded")
    net = save_checkpoint(root / "tiny.safetensors", G=tiny_G(0), G_ema=tiny_G(5))
    rng = np.random.default_rng(0)
    (root / "imgs").mkdir()
    for name in "abcde":
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "imgs" / f"{name}.png")
    return root, net


def _latentlab(args, procs: int = 1, **kw) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "latentlab"] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(procs),
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "latentlab"]  # fmt: skip
    return subprocess.run(launch + args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300, **kw)


def _project_args(root, net, out, *extra) -> list[str]:
    return ["project", str(root / "imgs"), "--network", str(net), "--outdir", str(out), "--steps", "12",
            "--loss", "mse", "--batch", "2", "--no-progress", "--device", "cpu", *extra]  # fmt: skip


def _same_outputs(a: Path, b: Path, names="abcde") -> None:
    for n in names:
        for suffix in (".npz", ".png", "-compare.png"):
            assert (a / f"{n}{suffix}").read_bytes() == (b / f"{n}{suffix}").read_bytes(), f"{n}{suffix}"
    ra, rb = ([r for r in json.loads((p / "summary.json").read_text())["results"] if r["name"] in names]
              for p in (a, b))  # fmt: skip
    assert ra == rb and len(ra) == len(names)


@pytest.fixture(scope="module")
def one_process(job):
    root, net = job
    r = _latentlab(_project_args(root, net, root / "one"))
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "one"


def test_two_process_projection_is_bit_identical_to_one(job, one_process):
    root, net = job
    r = _latentlab(_project_args(root, net, root / "two"), procs=2)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.count("projected 5 images") == 1  # rank 0 reports; rank 1 says nothing
    _same_outputs(one_process, root / "two")
    summary = json.loads((root / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and [row["name"] for row in summary["results"]] == list("abcde")
    w = load_latents(root / "two" / "c.npz")
    assert w.meta["source"].endswith("c.png")


def test_a_killed_two_process_projection_resumes_to_the_same_files(job, one_process):
    root, net = job
    out = root / "killed"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2", "--master_addr",
           "127.0.0.1", "--master_port", str(free_port()), "-m", "latentlab",
           *_project_args(root, net, out)[:-4], "--steps", "400", "--batch", "1", "--no-progress", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 240
        while not (out / "b-compare.png").exists():  # the first round (a, b) is written
            assert proc.poll() is None, "the job ended before its first round"
            assert time.time() < deadline, "the job never finished its first round"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job, as a lost machine
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (out / "e.npz").exists()
    r = _latentlab([*_project_args(root, net, out)[:-4], "--steps", "400", "--batch", "1", "--no-progress",
                    "--device", "cpu", "--resume"], procs=2)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "already done" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] >= 2 and [row["name"] for row in summary["results"]] == list("abcde")
    # the uninterrupted one-process run with the same per-process batch writes the same files
    ref = root / "one-b1"
    r = _latentlab([*_project_args(root, net, ref)[:-4], "--steps", "400", "--batch", "1", "--no-progress",
                    "--device", "cpu"])  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    for n in "abcde":
        assert (out / f"{n}.npz").read_bytes() == (ref / f"{n}.npz").read_bytes(), n


def test_a_failing_rank_names_its_images_and_the_finished_outputs_stay(job, one_process):
    root, net = job
    out = root / "failing"
    (out / "c.png").mkdir(parents=True)  # c's picture cannot be written: the rank projecting c fails
    r = _latentlab(_project_args(root, net, out, "--batch", "1"), procs=2)
    assert r.returncode != 0
    assert "c.png" in r.stderr and "rank 0, task 2" in r.stderr and "every finished output is kept" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [row["name"] for row in summary["results"]] == ["a", "b", "d"]  # round 2 (c, d): d finished
    one = _latentlab(_project_args(root, net, root / "one-b1-short", "--batch", "1"))
    assert one.returncode == 0
    _same_outputs(root / "one-b1-short", out, names="abd")
    assert not (out / "e.npz").exists()


def test_processes_started_with_different_arguments_are_refused(job):
    root, net = job
    port = free_port()
    procs = []
    for rank, steps in ((0, "12"), (1, "13")):
        env = {**ENV, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        args = [*_project_args(root, net, root / "mismatch")]
        args[args.index("--steps") + 1] = steps
        procs.append(subprocess.Popen([sys.executable, "-m", "latentlab", *args], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 1 for p in procs)
    for e in errs:
        assert "different arguments" in e and "rank 1 has steps=13 where rank 0 has 12" in e, e[-2000:]
    assert not (root / "mismatch" / "a.npz").exists()
    # training too (it joins through its Trainer)
    port, procs = free_port(), []
    for rank, kimg in ((0, "0.016"), (1, "0.032")):
        env = {**ENV, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        args = ["train", "--data", str(root / "imgs"), "--outdir", str(root / "train-mismatch"), "--preset", "tiny",
                "--batch", "4", "--kimg", kimg, "--no-progress", "--device", "cpu"]  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-m", "latentlab", *args], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))  # fmt: skip
    errs = [p.communicate(timeout=120)[1] for p in procs]
    for p, e in zip(procs, errs, strict=True):
        assert p.returncode == 1 and "latentlab train: the 2 processes were started with different arguments (rank 1 " \
            "has kimg=0.032 where rank 0 has 0.016)" in e, e[-2000:]  # fmt: skip
    assert not list((root / "train-mismatch").glob("*.safetensors")) if (root / "train-mismatch").exists() else True


def test_two_process_tuning_matches_one(job):
    root, net = job
    args = ["tune", str(root / "imgs" / "a.png"), str(root / "imgs" / "b.png"), str(root / "imgs" / "c.png"),
            "--network", str(net), "--steps", "3", "--pivot-steps", "4", "--pivot-loss", "mse", "--batch", "1",
            "--lpips-threshold", "0", "--no-progress", "--device", "cpu"]  # fmt: skip
    env_weights = ["--lpips-weights", str(_random_alexnet(root))]
    one = _latentlab([*args, "--outdir", str(root / "tune1"), *env_weights])
    two = _latentlab([*args, "--outdir", str(root / "tune2"), *env_weights], procs=2)
    assert one.returncode == 0 and two.returncode == 0, one.stderr[-2000:] + two.stderr[-2000:]
    from safetensors import safe_open

    for n in "abc":
        files = [safe_open(str(root / d / f"{n}.safetensors"), "pt") for d in ("tune1", "tune2")]
        assert files[0].keys() == files[1].keys() and len(files[0].keys()) > 0
        for key in files[0].keys():
            assert torch.equal(files[0].get_tensor(key), files[1].get_tensor(key)), (n, key)
        metas = [json.loads(f.metadata()["tune"]) for f in files]
        for m in metas:  # timings differ; everything else is the same
            m.pop("seconds")
            m["pivot"].pop("seconds")
        assert metas[0] == metas[1]
        for suffix in (".npz", ".png", "-compare.png"):
            assert (root / "tune1" / f"{n}{suffix}").read_bytes() == (root / "tune2" / f"{n}{suffix}").read_bytes()
    rows = [json.loads((root / d / "summary.json").read_text())["rows"] for d in ("tune1", "tune2")]
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in rs] for rs in rows]
    assert strip[0] == strip[1] and len(strip[0]) == 3


def _random_alexnet(root: Path) -> Path:
    """A torchvision-layout AlexNet backbone file with seeded random weights (LPIPS-AlexNet's file offline)."""
    path = root / "alexnet-owt-7be5be79.pth"
    if not path.exists():
        import torchvision

        torch.manual_seed(0)
        torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


def test_two_process_metrics_and_direction_fit_equal_one(job, tmp_path, real_weights):
    from latentlab.data.classifier import ClassifierConfig, FactorClassifier, save_classifier

    root, net = job
    torch.manual_seed(0)
    clf = save_classifier(tmp_path / "clf.safetensors", FactorClassifier(ClassifierConfig(resolution=16,
                          channels=(8, 16), feature_dim=16)))  # fmt: skip
    real = tmp_path / "real"
    real.mkdir()
    rng = np.random.default_rng(1)
    for k in range(10):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(real / f"{k}.png")
    script = str(REPO / "examples" / "sharded_measure.py")  # the example is the job
    args = ["--network", str(net), "--classifier", str(clf), "--data", str(real), "--samples", "24", "--batch", "4",
            "--seed", "3", "--random-lpips", "--out"]  # fmt: skip
    env = {k: v for k, v in ENV.items() if k != "LATENTLAB_WEIGHT_PACKAGES"}  # the packages' Inception for FID
    one = subprocess.run([sys.executable, script, *args, str(tmp_path / "one.json")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", str(free_port()), script, *args,
                          str(tmp_path / "two.json")], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert two.stdout.count("2 process(es): ppl_wend:lpips-vgg-random") == 1, two.stdout[-2000:]  # rank 0 reports
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert (a["processes"], b["processes"]) == (1, 2)
    assert a["results"] == b["results"]  # every value, exactly
    assert {"ppl_wend:lpips-vgg-random", "ppl_zfull:lpips-vgg-random", "ls_w", "dci_disentanglement", "fid",
            "kid"} <= set(a["results"])  # fmt: skip
    assert a["results"]["fid"] > 1 and a["smile"] == b["smile"]  # the real Inception: informative features
    # the work was shared: 2 PPL variants x 24 samples in batches of 4 = 12 batches, 6 per process
    assert a["ppl_batches"] == [12] and b["ppl_batches"] == [6, 6]


def test_two_process_encoder_training_trains_like_one_and_resumes_in_one(job, tmp_path):
    from safetensors.torch import load_file

    from conftest import relative_difference

    root, net = job
    args = ["encoder", "train", "--network", str(net), "--data", str(root / "imgs"), "--loss", "mse", "--batch",
            "4", "--snap", "2", "--e4e",
            "--progressive-start", "1", "--progressive-every", "1", "--no-progress", "--device", "cpu"]  # fmt: skip
    one = _latentlab([*args, "--steps", "4", "--out", str(tmp_path / "one.safetensors")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = _latentlab([*args, "--steps", "2", "--out", str(tmp_path / "two.safetensors")], procs=2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("trained 2 steps") == 1
    # the 2-process state continues in one process
    more = _latentlab([*args, "--steps", "4", "--out", str(tmp_path / "two.safetensors"), "--resume"])
    assert more.returncode == 0, more.stderr[-3000:]
    a, b = load_file(str(tmp_path / "one.safetensors")), load_file(str(tmp_path / "two.safetensors"))
    from latentlab.projection.encoder import new_encoder
    from latentlab.registry import load_generator

    init = new_encoder(load_generator(net), str(net), 0).state_dict()
    rel, moved = relative_difference(a, b, {k: v for k, v in init.items() if k in a and v.is_floating_point()})
    assert moved > 0.01 and rel < 1e-4, (rel, moved)  # measured 1.5e-5


@pytest.mark.parametrize("command", ["project", "tune", "metrics", "directions fit", "encoder train"])
def test_every_option_of_a_sharded_command_passes_through_torchrun(command):
    """torchrun's argument parser takes abbreviations of its own options even after the module name (metrics'
    --num read as --numa-binding): every option a sharded command documents for torchrun must reach it."""
    from torch.distributed.run import get_args_parser

    from latentlab.cli import cli

    cmd = cli
    for part in command.split():
        cmd = cmd.commands[part]
    names = [o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
             if o.startswith("--")]  # fmt: skip
    blocked = []
    for name in names:
        try:
            args = get_args_parser().parse_args(["--nproc_per_node", "2", "-m", "latentlab", *command.split(), name,
                                                 "1"])  # fmt: skip
        except SystemExit:
            args = None
        if args is None or name not in args.training_script_args:
            blocked.append(name)
    spare = {"metrics": {"--num"}}.get(command, set())  # --samples is its torchrun spelling (the help says so)
    assert set(blocked) == spare, blocked
    from click.testing import CliRunner

    r = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert r.exit_code == 0 and f"torchrun --nproc_per_node 4 -m latentlab {command}" in r.output


def test_two_process_projection_skips_an_unreadable_file_once_and_matches_one(job, tmp_path):
    import shutil

    root, net = job
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in "acd":
        shutil.copy(root / "imgs" / f"{name}.png", folder / f"{name}.png")
    (folder / "b.png").write_bytes(b"\x89PNG broken")  # chunks (a, b) | (c, d): b is read, refused, listed
    args = ["project", str(folder), "--network", str(net), "--steps", "6", "--loss", "mse", "--batch", "2",
            "--no-progress", "--device", "cpu", "--outdir"]  # fmt: skip
    one = _latentlab([*args, str(tmp_path / "one")])
    two = _latentlab([*args, str(tmp_path / "two")], procs=2)
    assert one.returncode == 0 and two.returncode == 0, one.stderr[-2000:] + two.stderr[-2000:]
    assert two.stderr.count("skipped ") == 1 and "b.png: not a readable image" in two.stderr  # rank 0 says it once
    assert "projected 3 images" in two.stdout and "skipped 1" in two.stdout
    _same_outputs(tmp_path / "one", tmp_path / "two", names="acd")
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert [s["path"] for s in summary["skipped"]] == [str(folder / "b.png")]
