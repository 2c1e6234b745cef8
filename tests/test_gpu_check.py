"""benchmarks/gpu_check.sh's dry run: every step of the prepared GPU run, on the CPU with tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_gpu_check_dry_run_runs_every_step(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    r = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--budget", "400"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    log = (out / "log.txt").read_text()
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for step in ("install", "tests-gpu", "synthesis", "synthesis-fp16", "projection", "training", "sharding", "dataset",
                 "train"):  # fmt: skip
        assert f"{step}: exit 0" in log, (step, log)
    assert "done in" in log
    env_info = json.loads((out / "env.json").read_text())
    assert env_info["gpu"] is None and env_info["torch"]
    tests = (out / "tests-gpu.txt").read_text()
    assert "skipped" in tests and "failed" not in tests and "error" not in tests.lower()
    rows = {f: [json.loads(line) for line in (out / f"{f}.jsonl").read_text().splitlines()]
            for f in ("synthesis", "synthesis-fp16", "projection", "training", "sharding")}  # fmt: skip
    assert {r["impl"] for r in rows["synthesis"]} == {"latentlab", "latentlab-bf16"}  # no NVIDIA checkout here
    assert all(r["device"] == "cpu" and r["peak_mem_mb"] > 0 for r in rows["synthesis"] + rows["projection"])
    assert {r["num_fp16_res"] for r in rows["synthesis-fp16"]} == {4}
    assert any(r.get("bench") == "train-summary" for r in rows["training"])
    # the same projection in one process and in 2 under torchrun (same batch and threads each): the same files
    two = [r for r in rows["sharding"] if r.get("processes") == 2]
    assert len(two) == 1 and two[0]["torchrun"] and two[0]["bit_identical"] and two[0]["max_abs_w_diff"] == 0
    assert any(r.get("bench") == "sharding-summary" for r in rows["sharding"])
    snaps = sorted((out / "train").glob("network-snapshot-*.safetensors"))
    assert 1 <= len(snaps) <= 2 and snaps[-1].name > "network-snapshot-000400"  # continued from the shipped 400 kimg
    assert not (out / "synthfaces-64.zip").exists()  # the data is not sent back
