"""Photo in, edited photo out, measured where the truth is known: W, W+ and PTI on renders pasted into photos.

Held-out SynthFaces renders (dataset seed 1000, never seen in training) at 256 px are each pasted into a larger
"photo" by a random similarity (rotation +-30 degrees, scale 0.8-3, a random blocky background), as in
``bench_align.py``. For each photo:

* alignment: the face is cut at 64 px with the SynthFaces framing from the renderer's keypoints carried by the
  same similarity (dlib finds no SynthFaces face, so this measures the procedure, not a detector: see
  ``bench_align.py`` for dlib on the astronaut). Its error against the true transform is reported in pixels
  of a 256 px crop;
* reconstruction: the crop is inverted by W projection and W+ projection (1000 steps, the library's default
  distance at 64 px, noise optimized, 8 at a time) and by PTI: a W pivot (450 steps, lr 5e-3, constant noise),
  then the synthesis tuned with LPIPS-AlexNet + MSE, in three settings: PTI's defaults (stop at LPIPS 0.06),
  all 350 steps (threshold 0), and all 350 steps with the locality regularization. PSNR, SSIM and LPIPS
  against the crop; LPIPS both with AlexNet at 64 px (what PTI optimizes) and with VGG on 256 px enlargements
  (what it does not), and the seconds per image;
* editability: every inverted code moved +3 std along the shipped smile, glasses, hair_length and yaw
  directions, rendered on its generator (tuned for PTI) with its noise. The classifier reads the target factor
  and the others before and after; we report the target's change and the mean change of the other factors
  (each over its range; binaries as probabilities).

    python benchmarks/bench_photos.py --images 16 --figure docs/images/photos-methods.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_align import crop_error, paste_into_photo  # noqa: E402

from latentlab import load_generator  # noqa: E402
from latentlab.data import synthfaces as sf  # noqa: E402
from latentlab.edit import edit  # noqa: E402
from latentlab.faces import SYNTHFACES, align_image  # noqa: E402
from latentlab.io import from_uint8, make_grid, save_image, to_uint8  # noqa: E402
from latentlab.perceptual import LPIPSLoss, build_loss  # noqa: E402
from latentlab.perceptual.pixels import psnr, ssim  # noqa: E402
from latentlab.pretrained import load_classifier, load_direction  # noqa: E402
from latentlab.projection import ProjectConfig, project_batch, w_statistics  # noqa: E402
from latentlab.projection.tune import TuneConfig, project_pivots, tune  # noqa: E402
from latentlab.render import render_codes  # noqa: E402

DIRECTIONS = ("smile", "glasses", "hair_length", "yaw")
SIGMA = 3.0
LINEAR = [f for f in sf.FACTORS if f not in ("bg_hue", "shirt_hue")]


def photos(n: int, seed: int, res: int):
    """``(targets [n, 3, res, res], crop errors [n, 2])``."""
    rng = np.random.default_rng(seed)
    crops, errors = [], []
    for i in range(n):
        face, detail = sf.item(i, seed=1000)
        render = sf.render(face, 256, detail)
        kp = sf.keypoints(face, 256)
        _, tr0 = align_image(render, kp, 256, template=SYNTHFACES)
        photo, m = paste_into_photo(rng, render)
        kp_photo = kp @ m[:, :2].T + m[:, 2]
        _, tr1 = align_image(photo, kp_photo, 256, template=SYNTHFACES)
        errors.append(crop_error(tr1, tr0, m))
        crop, _ = align_image(photo, kp_photo, res, template=SYNTHFACES)
        crops.append(crop)
    return from_uint8(np.stack(crops)), np.array(errors)


class Scorer:
    def __init__(self, device):
        self.alex = LPIPSLoss("alex", min_side=64).to(device)
        self.vgg = LPIPSLoss("vgg", min_side=256).to(device)

    @torch.no_grad()
    def __call__(self, x, y) -> dict[str, list[float]]:
        return {"psnr": psnr(x, y).tolist(), "ssim": ssim(x, y).tolist(),
                "lpips_alex": self.alex(x, self.alex.prepare(y)).flatten().tolist(),
                "lpips_vgg256": self.vgg(x, self.vgg.prepare(y)).flatten().tolist()}  # fmt: skip


def editability(clf, G, ws, noise, directions) -> dict[str, dict[str, float]]:
    base = clf.predict(render_codes(G, ws, noise))
    out = {}
    for name, d in directions.items():
        moved = clf.predict(render_codes(G, edit(ws, d, SIGMA * d.std), noise))
        target = name

        def change(f, moved=moved):
            lo, hi = sf.RANGES.get(f, (0.0, 1.0))
            return (moved[f] - base[f]) / (1.0 if f in sf.BINARY else hi - lo)

        others = [f for f in [*LINEAR, *sf.BINARY] if f != target]
        out[name] = {"target": float(change(target).mean()),
                     "others": float(torch.stack([change(f).abs() for f in others]).mean())}  # fmt: skip
    return out


def summarize(rows: dict[str, list[float]]) -> dict[str, float]:
    return {k: float(np.mean(v)) for k, v in rows.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--network", default="synthfaces-64")
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000, help="W / W+ projection steps")
    p.add_argument("--tune-steps", type=int, default=350)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default="w,w+,pti,pti-full,pti-full-locality")
    p.add_argument("--figure", default=None, help="write crop | W | W edit | PTI | PTI edit for 4 photos here")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    G = load_generator(args.network, device=device)
    clf = load_classifier(args.network, device=device)
    dirs = {n: load_direction(n, model=args.network) for n in DIRECTIONS}
    targets, errors = photos(args.images, args.seed, G.img_resolution)
    score = Scorer(device)
    print(json.dumps({"bench": "photos", "images": args.images, "align_max_corner_px_256": float(errors[:, 0].max()),
                      "align_rms_px_256": float(errors[:, 1].mean())}), flush=True)  # fmt: skip
    loss = build_loss("auto", resolution=G.img_resolution, log=None)
    stats = w_statistics(G, 10000, args.seed)
    methods = args.methods.split(",")
    figure_cols = {"crop": to_uint8(targets[:4])}
    results = {}
    pivots = pivot_seconds = None
    for method in methods:
        t0 = time.perf_counter()
        per_image: list[tuple] = []  # (G, ws [1, L, D], noise or None, image [1, C, R, R])
        if method in ("w", "w+"):
            config = ProjectConfig(space=method, steps=args.steps, seed=args.seed, loss=loss.name)
            for i in range(0, args.images, 8):
                proj = project_batch(G, targets[i : i + 8], loss, config, stats)
                for j in range(proj.ws.shape[0]):
                    noise = [None if n is None else n[j : j + 1] for n in proj.noise]
                    per_image.append((G, proj.ws[j : j + 1], noise, proj.images[j : j + 1]))
            seconds = (time.perf_counter() - t0) / args.images
            steps_taken = [args.steps] * args.images
        else:
            if pivots is None:  # the three PTI settings share their pivots
                pivots = project_pivots(G, targets, loss).cpu()
                pivot_seconds = (time.perf_counter() - t0) / args.images
            config = TuneConfig(steps=args.tune_steps, lpips_threshold=0.06 if method == "pti" else 0.0,
                                locality=method.endswith("locality"), seed=args.seed)  # fmt: skip
            steps_taken, secs = [], []
            for i in range(args.images):
                r = tune(G, targets[i : i + 1], pivots[i : i + 1], score.alex, config)
                with torch.no_grad():
                    img = r.G.synthesis(r.pivot, noise_mode="const")
                per_image.append((r.G, r.pivot, None, img))
                steps_taken.append(r.steps)
                secs.append(r.seconds)
            seconds = pivot_seconds + float(np.mean(secs))
        images = torch.cat([x[3] for x in per_image])
        rec = summarize(score(images, targets))
        edits: dict[str, list] = {n: [] for n in DIRECTIONS}
        for Gi, ws, noise, _ in per_image:
            for n, v in editability(clf, Gi, ws, noise, dirs).items():
                edits[n].append(v)
        ed = {n: {k: float(np.mean([v[k] for v in vs])) for k in ("target", "others")} for n, vs in edits.items()}
        results[method] = {"reconstruction": rec, "edits": ed}
        print(json.dumps({"method": method, **rec, "seconds_per_image": round(seconds, 2),
                          "steps_mean": float(np.mean(steps_taken)), "edits": ed}), flush=True)  # fmt: skip
        if args.figure and method in ("w", "pti-full"):
            figure_cols[method] = to_uint8(images[:4])
            moved = [render_codes(Gi, edit(ws, dirs["smile"], SIGMA * dirs["smile"].std), noise)
                     for Gi, ws, noise, _ in per_image[:4]]  # fmt: skip
            figure_cols[method + " smile"] = to_uint8(torch.cat(moved))
    if "w" in results:
        w = results["w"]
        for m in [m for m in results if m.startswith("pti")]:
            r = results[m]
            keep = {n: r["edits"][n]["target"] / w["edits"][n]["target"] for n in DIRECTIONS}
            print(json.dumps({"vs_w": m, "lpips_alex_reduction": 1 - r["reconstruction"]["lpips_alex"]
                              / w["reconstruction"]["lpips_alex"], "lpips_vgg256_reduction":
                              1 - r["reconstruction"]["lpips_vgg256"] / w["reconstruction"]["lpips_vgg256"],
                              "edit_target_kept": keep}), flush=True)  # fmt: skip
    if args.figure and len(figure_cols) > 1:
        cols = list(figure_cols.values())
        cells = np.stack([c[i] for i in range(cols[0].shape[0]) for c in cols])
        big = np.stack([cv2.resize(c, (128, 128), interpolation=cv2.INTER_NEAREST) for c in cells])
        save_image(args.figure, make_grid(big, cols=len(cols)))
        print(json.dumps({"figure": args.figure, "columns": list(figure_cols)}), flush=True)


if __name__ == "__main__":
    main()
