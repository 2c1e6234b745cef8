"""Editing quality on the embedded model: edit effect on projected fresh renders, conditional directions, and
the layer locality of style mixing. Prints JSON lines; the figures go to benchmarks/RESULTS.md and
docs/editing.md.

1. Edit effect. Fresh SynthFaces renders (a dataset seed the model never saw) are projected into W. Each is
   moved along each shipped binary direction by -6..+6 std (rendered with its projected noise maps; the
   same is measured on generated samples at psi 0.7 with constant noise, for comparison). We record the
   classifier's reading of the attribute at each step, the share of images whose reading rises
   monotonically, and the alpha at which the attribute flips (first crossing of 0.5). At that alpha we
   compare the change of the target factor with the mean absolute change of every other factor, each
   divided by its range.
2. Conditional directions. Each attribute is conditioned on the factor its shipped direction moves most.
   Plain and conditional directions are fitted from one fresh sampling pass, and the condition factor's
   change at each one's flip alpha is compared (also per unit of target change).
3. Layer locality. For pairs (A, B) of samples, A with B's coarse, middle or fine codes. Per factor we
   report the share of the A->B difference that the mix transfers: mean |f(mix) - f(A)| / mean |f(B) - f(A)|.

    python benchmarks/bench_editing.py --images 32 --steps 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from latentlab import load_generator
from latentlab.data.synthfaces import FACTORS, RANGES, render_item
from latentlab.edit import classifier_scorer, edit, fit_directions, mix
from latentlab.edit.ops import GROUPS
from latentlab.io import from_uint8
from latentlab.pretrained import load_classifier, load_direction
from latentlab.projection import build_loss, project
from latentlab.render import render_codes

LINEAR = [f for f in FACTORS if f not in ("bg_hue", "shirt_hue")]
TARGETS = {"smile": "smile", "glasses": "glasses", "eyes_open": "eyes_open", "hair_length": "hair_length"}
SIGMAS = np.linspace(-6, 6, 25)  # edit sizes in multiples of the direction's std over samples


def readings(clf, G, ws, noise=None) -> dict[str, torch.Tensor]:
    return clf.predict(render_codes(G, ws, noise))


def span(f: str) -> float:
    lo, hi = RANGES[f]
    return hi - lo


def edit_effect(G, clf, ws, noise, direction, target) -> dict:
    n = ws.shape[0]
    reads = []
    for k in SIGMAS:
        reads.append(readings(clf, G, edit(ws, direction, float(k * direction.std)), noise))
    t = torch.stack([r[target] for r in reads])  # [A, N]
    mono = ((t[1:] - t[:-1]) >= -0.02).all(0).float().mean().item()  # rises at every step, up to 0.02 jitter
    base = t[SIGMAS.tolist().index(0.0)]
    rows, flips = {f: [] for f in LINEAR}, []
    for i in range(n):
        # flip towards the other side of 0.5
        order = [j for j in range(len(SIGMAS)) if (SIGMAS[j] > 0) == bool(base[i] < 0.5) and SIGMAS[j] != 0]
        order = sorted(order, key=lambda j: abs(SIGMAS[j]))
        j = next((j for j in order if (t[j, i] >= 0.5) != bool(base[i] >= 0.5)), order[-1])
        flips.append(abs(SIGMAS[j]))
        for f in LINEAR:
            rows[f].append(abs(float(reads[j][f][i] - reads[SIGMAS.tolist().index(0.0)][f][i])) / span(f))
    change = {f: float(np.mean(v)) for f, v in rows.items()}
    others = {f: v for f, v in change.items() if f != target}
    flipped = float(np.mean([abs(float(t[-1, i] - t[0, i])) > 0 and ((t[-1, i] >= 0.5) != (t[0, i] >= 0.5))
                             for i in range(n)]))  # fmt: skip
    return {"target_change": change[target], "mean_other_change": float(np.mean(list(others.values()))),
            "max_other": max(others, key=others.get), "max_other_change": max(others.values()),
            "monotonic_share": mono, "flip_sigma_mean": float(np.mean(flips)), "flippable_share": flipped,
            "curve": [round(float(x), 3) for x in t.mean(1)], "other_changes": others}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--cond-samples", type=int, default=50_000)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help="keep the projections in this .pt file and reuse them")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(args.network, device="cpu")
    clf = load_classifier("synthfaces-64", device="cpu")

    # 1. project fresh renders into W
    t0 = time.time()
    if args.cache and os.path.exists(args.cache):
        ws, noise = torch.load(args.cache)
    else:
        photos = np.stack([render_item(i, G.img_resolution, seed=4242)[0] for i in range(args.images)])
        loss = build_loss("auto", download=False, log=lambda s: None, resolution=G.img_resolution)
        proj = project(G, from_uint8(photos), space="w", steps=args.steps, loss=loss, progress=False)
        ws, noise = proj.ws.cpu(), proj.noise
        if args.cache:
            torch.save((ws, noise), args.cache)
        print(json.dumps({"projected": args.images, "steps": args.steps, "loss": proj.loss_name,
                          "seconds": round(time.time() - t0, 1)}), flush=True)  # fmt: skip
    with torch.no_grad():
        samples = G.mapping(torch.randn(args.images, G.z_dim, generator=torch.Generator().manual_seed(11)), None,
                            truncation_psi=0.7)  # fmt: skip

    plain = {}
    for name, target in TARGETS.items():
        d = load_direction(name, model=args.network)
        plain[name] = edit_effect(G, clf, ws, noise, d, target)
        print(json.dumps({"edit": name, "codes": "projected", "val_acc": d.accuracy, **plain[name]}), flush=True)
        gen = edit_effect(G, clf, samples, None, d, target)
        print(json.dumps({"edit": name, "codes": "generated", **gen}), flush=True)

    # 2. conditional directions: condition each on the factor its plain direction moves most
    conds = {a: [plain[a]["max_other"]] for a in TARGETS}
    needed = sorted({c for cs in conds.values() for c in cs} | set(TARGETS))
    fitted = fit_directions(G, list(TARGETS), classifier_scorer(clf, needed), num_samples=args.cond_samples,
                            conditions=conds, model=args.network, progress=False)  # fmt: skip
    for a, cs in conds.items():
        d, p = fitted[f"{a}|{cs[0]}"], fitted[a]
        rc, rp = edit_effect(G, clf, ws, noise, d, TARGETS[a]), edit_effect(G, clf, ws, noise, p, TARGETS[a])
        cc, cp = rc["other_changes"][cs[0]], rp["other_changes"][cs[0]]
        print(json.dumps({"conditional": d.name, "val_acc": d.accuracy, "val_acc_plain": p.accuracy,
                          "cosine_to_plain": d.extra["cosine_to_unconditioned"],
                          "condition_change_plain": cp, "condition_change_conditional": cc,
                          "target_change_plain": rp["target_change"], "target_change_conditional": rc["target_change"],
                          "condition_per_target_plain": cp / max(rp["target_change"], 1e-9),
                          "condition_per_target_conditional": cc / max(rc["target_change"], 1e-9)}), flush=True)

    # 3. layer locality of style mixing
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        a = G.mapping(torch.randn(args.pairs, G.z_dim, generator=gen), None, truncation_psi=0.7)
        b = G.mapping(torch.randn(args.pairs, G.z_dim, generator=gen), None, truncation_psi=0.7)
    fa, fb = readings(clf, G, a), readings(clf, G, b)
    for group in GROUPS:
        try:
            fm = readings(clf, G, mix(a, b, group))
        except ValueError:
            continue
        share = {f: round(float((fm[f] - fa[f]).abs().mean() / (fb[f] - fa[f]).abs().mean()), 3) for f in LINEAR}
        print(json.dumps({"mixing": group, "transferred_share": share}), flush=True)


if __name__ == "__main__":
    main()
