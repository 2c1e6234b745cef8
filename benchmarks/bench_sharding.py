"""Sharded jobs: ``--layouts`` of processes x threads, e.g. 2 processes x 1 thread (``torchrun``) against 1
process x 2 threads on this machine.

A layout ``PxT`` is ``P`` processes of ``T`` threads: ``P = 1`` runs the command plainly, ``P > 1`` (or a leading
``t``, as in ``t1x8``: torchrun with one process) under ``torchrun``. Each round runs the same command in every
layout, in turn (the order reversed every other round), as a user would (process start-up included), and
prints one JSON line per run with the wall time and images/s:

* ``project``: ``--images`` targets rendered from seeds 1,000,000 + i of ``--network`` (written once as
  PNGs), projected into W+ for ``--steps`` steps at ``--batch`` per process (the default distance);
* ``metrics``: ``ppl_wend`` over ``--ppl-num`` samples with a random LPIPS backbone (the same FLOPs as the
  real one; the timing, not the value, is what is measured).

With ``--compare`` the first round's projections of every layout are compared with the first layout's: the
largest ``|w - w_first|`` and whether the ``.npz`` files are bit-identical (expected where the per-process
batch and threads are the same, e.g. ``1x1`` and ``2x1``). The last line is the median speed-up of each layout
over the first, per job. Examples:

    python benchmarks/bench_sharding.py --images 8 --steps 200 --rounds 3
    python benchmarks/bench_sharding.py --device cuda --layouts 1x8,2x4 --jobs project --compare   # 2 share a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from latentlab.io.images import save_image, to_uint8


def _compare(first: Path, other: Path) -> dict[str, object]:
    import numpy as np

    diffs, same = [], True
    for f in sorted(first.glob("*.npz")):
        a, b = np.load(f), np.load(other / f.name)
        diffs.append(float(np.abs(a["w"] - b["w"]).max()))
        same = same and f.read_bytes() == (other / f.name).read_bytes()
    return {"max_abs_w_diff": max(diffs), "bit_identical": same, "files": len(diffs)}


def _targets(network: str, n: int, folder: Path) -> None:
    from latentlab.registry import load_generator
    from latentlab.render import generate_images

    G = load_generator(network, device="cpu")
    imgs = generate_images(G, [1_000_000 + i for i in range(n)], truncation_psi=1.0, noise_mode="random").images
    for i, img in enumerate(to_uint8(imgs)):
        save_image(folder / f"t{i:03d}.png", img)


def _layout(text: str) -> tuple[int, int, bool]:
    """``"2x1"`` -> (2 processes, 1 thread, under torchrun); ``"t1x8"`` -> (1, 8, torchrun)."""
    forced = text.startswith("t")
    procs, threads = (int(v) for v in text.lstrip("t").split("x"))
    return procs, threads, forced or procs > 1


def _run(args: list[str], procs: int, threads: int, torchrun: bool, port: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    launch = [sys.executable, "-m", "latentlab"] if not torchrun else [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(procs),
        "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "latentlab"]  # fmt: skip
    t0 = time.perf_counter()
    r = subprocess.run(launch + args, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--ppl-num", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", default="project,metrics")
    ap.add_argument("--layouts", default="1x2,2x1", help="processes x threads, comma-separated; the first is the base")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compare", action="store_true", help="compare the first round's projections across layouts")
    args = ap.parse_args()
    jobs, layouts = args.jobs.split(","), args.layouts.split(",")
    speed: dict[str, dict[str, list[float]]] = {j: {lay: [] for lay in layouts} for j in jobs}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        _targets(args.network, args.images, tmp / "in")
        for r in range(args.rounds):
            for job in jobs:
                for key in layouts if r % 2 == 0 else layouts[::-1]:
                    procs, threads, torchrun = _layout(key)
                    out = tmp / f"{job}-{key}-{r}"
                    if job == "project":
                        cmd = ["project", str(tmp / "in"), "--network", args.network, "--outdir", str(out), "--space",
                               "w+", "--steps", str(args.steps), "--batch", str(args.batch), "--no-progress",
                               "--device", args.device]  # fmt: skip
                        n = args.images
                    else:
                        cmd = ["metrics", "--network", args.network, "--metrics", "ppl_wend", "--samples",
                               str(args.ppl_num), "--random-lpips", "--no-progress", "--device",
                               args.device]  # fmt: skip
                        n = args.ppl_num
                    seconds = _run(cmd, procs, threads, torchrun, 29600 + r)
                    speed[job][key].append(n / seconds)
                    row = {"job": job, "layout": key, "processes": procs, "threads": threads, "torchrun": torchrun,
                           "round": r, "device": args.device, "seconds": round(seconds, 2),
                           "images_per_s": round(n / seconds, 4)}  # fmt: skip
                    if args.compare and job == "project" and r == 0 and key != layouts[0]:
                        row.update(_compare(tmp / f"{job}-{layouts[0]}-0", out))
                    print(json.dumps(row), flush=True)
    base = layouts[0]

    def speedup(s: dict[str, list[float]], lay: str) -> float:
        return round(statistics.median([b / a for a, b in zip(s[base], s[lay], strict=True)]), 3)

    summary = {job: {**{f"median_{lay}": round(statistics.median(s[lay]), 4) for lay in layouts},
                     **{f"speedup_{lay}": speedup(s, lay) for lay in layouts[1:]}}
               for job, s in speed.items()}  # fmt: skip
    print(json.dumps({"bench": "sharding-summary", "summary": summary, "images": args.images, "steps": args.steps,
                      "batch": args.batch, "ppl_num": args.ppl_num, "device": args.device,
                      "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}))  # fmt: skip


if __name__ == "__main__":
    main()
