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

``--mode select`` chooses the directions the demo's edit strip uses. For each target it tries the shipped
direction conditioned on nothing, on the factor it drags most, or on every other shipped direction
(``refine_direction``), each on all layers or on layers i..last, and moves every projected code by the
demo's sizes (-3, -1.5, 0, +1.5, +3 std). Per image, each reading's travel over the strip is measured
(``FactorClassifier.travel``, a fraction of the factor's range); the ratio is the target's travel over the
largest travel of any other reading. The chosen candidate has the highest median ratio among those whose
mean target travel is at least ``--min-travel``.

    python benchmarks/bench_editing.py --images 32 --steps 1000
    python benchmarks/bench_editing.py --mode select --images 32 --cache /tmp/proj.pt
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
from latentlab.demo import EDIT_SIGMAS
from latentlab.edit import classifier_scorer, edit, fit_directions, mix, refine_direction
from latentlab.edit.figures import edited_codes, render_strip
from latentlab.edit.ops import GROUPS
from latentlab.io import from_uint8
from latentlab.pretrained import list_directions, load_classifier, load_direction
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


def strip_travel(G, clf, ws, noise, direction) -> list[dict[str, float]]:
    """Per code, each reading's travel over the demo's edit strip (fractions of the factors' ranges)."""
    alphas = [k * direction.std for k in EDIT_SIGMAS]
    _, images = render_strip(G, edited_codes(G, direction, alphas, ws), noise)
    return [clf.travel(from_uint8(torch.as_tensor(row))) for row in images]


def strip_score(travels: list[dict[str, float]], target: str) -> dict:
    t = np.array([tr[target] for tr in travels])
    worst = [max((v, f) for f, v in tr.items() if f != target) for tr in travels]
    other = np.array([w[0] for w in worst])
    ratio = t / np.maximum(other, 1e-6)
    names = [w[1] for w in worst]
    return {"target_travel": round(float(t.mean()), 4), "max_other_travel": round(float(other.mean()), 4),
            "median_ratio": round(float(np.median(ratio)), 3), "share_ratio_3": round(float((ratio >= 3).mean()), 3),
            "most_dragged": max(set(names), key=names.count)}  # fmt: skip


def select(G, clf, ws, noise, network: str, min_travel: float) -> None:
    names = [n.split("/", 1)[1] for n in list_directions(network)]
    shipped = {n: load_direction(n, model=network) for n in names}
    plain = {n: d for n, d in shipped.items() if not d.conditioned_on and d.layers is None}
    for target in TARGETS:
        base = plain[target]
        dragged = strip_score(strip_travel(G, clf, ws, noise, base), target)["most_dragged"]
        condsets = {"none": [], dragged: [plain[dragged]] if dragged in plain else [],
                    "others": [d for n, d in plain.items() if n != target]}  # fmt: skip
        rows = []
        for cname, conds in condsets.items():
            if cname != "none" and not conds:
                continue
            for first in range(G.num_ws - 1):
                d = refine_direction(base, G, conds, layers=None if first == 0 else f"{first}-{G.num_ws - 1}")
                score = strip_score(strip_travel(G, clf, ws, noise, d), target)
                row = {"target": target, "conditioned_on": cname, "layers": f"{first}-{G.num_ws - 1}", **score}
                rows.append(row)
                print(json.dumps({"candidate": row}), flush=True)
        ok = [r for r in rows if r["target_travel"] >= min_travel] or rows
        best = max(ok, key=lambda r: r["median_ratio"])
        print(json.dumps({"chosen": best, "plain": rows[0]}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--cond-samples", type=int, default=50_000)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help="keep the projections in this .pt file and reuse them")
    ap.add_argument("--mode", choices=["all", "select"], default="all",
                    help="all = sections 1-3; select = choose the demo's edit directions")
    ap.add_argument("--min-travel", type=float, default=0.4,
                    help="select: least mean travel of the target reading over the strip")
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
    if args.mode == "select":
        select(G, clf, ws, noise, args.network, args.min_travel)
        return
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
