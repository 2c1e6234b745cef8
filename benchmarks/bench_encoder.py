"""The encoder against optimization on the embedded model: time to quality, editability, speed.

Modes (JSON lines on stdout; the figures go to benchmarks/RESULTS.md and docs/projection.md):

* ``speed``: the encoder alone, images/s at batch 64 and 1 (median of ``--repeats`` timed runs, after warm-up),
  beside the generator's synthesis at batch 64 measured the same way in the same process.
* ``quality``: two sets of images, ``--images`` each: held-out generated images (psi 1, half with random noise;
  their true codes are known) and fresh SynthFaces renders (dataset seed 4242, which neither the model nor the
  encoder saw). For W and W+: optimization from ``w_avg`` (1000 steps, the paper's schedule), the encoder alone,
  and the encoder followed by 50 / 100 / 200 steps of the same projector (``--init encoder``). Per method: PSNR and
  LPIPS-VGG (the summary's metric, pretrained weights), seconds per image at ``--batch`` (the encoder's pass
  included), the code error on the generated set, and the editability of its codes: the shipped directions'
  target and mean off-target change at the flip alpha (benchmarks/bench_editing.py's measure). ``--plot``
  draws LPIPS against seconds per image.
* ``schedule``: the refinement's learning rate and code noise after the encoder, 100 steps, LPIPS-VGG.
* ``iterations``: the encoder's corrections (``Encoder.invert``; for a single-pass encoder the fixed-point step
  ``E(x) - E(G(w))``): PSNR and LPIPS-VGG after 0 to ``--max-iterations`` of them, in W and W+, per set; then the
  encoder + 100 steps from 0, 1 and 2 of them; and the seconds per image of each count at ``--batch``, side by
  side in this process.

    python benchmarks/bench_encoder.py --mode speed
    python benchmarks/bench_encoder.py --mode quality --images 16 --plot docs/images/encoder-time-quality.png
    python benchmarks/bench_encoder.py --mode schedule --images 8
    python benchmarks/bench_encoder.py --mode iterations --images 16
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latentlab import load_generator  # noqa: E402
from latentlab.data.synthfaces import render_item  # noqa: E402
from latentlab.io import from_uint8  # noqa: E402
from latentlab.perceptual import LPIPSLoss, build_loss  # noqa: E402
from latentlab.projection import project  # noqa: E402
from latentlab.projection.encoder import load_encoder  # noqa: E402
from latentlab.projection.encoder_train import EncoderTrainConfig, batch_generator, sample_training_images  # noqa: E402
from latentlab.registry import encoder_path  # noqa: E402

EDITS = ("smile", "glasses")


def run_times(fn, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn()``, after ``warmup`` untimed ones (the benchmarks' one timer)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _rate(fn, n: int, repeats: int) -> float:
    return n / statistics.median(run_times(fn, repeats))


def speed(G, enc, repeats: int) -> None:
    x = torch.rand(64, G.img_channels, G.img_resolution, G.img_resolution) * 2 - 1
    ws = G.mapping(torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    nchw = copy.deepcopy(enc).to(memory_format=torch.contiguous_format)  # load_encoder's CPU layout is channels-last
    out = {"mode": "speed", "threads": torch.get_num_threads(),
           "encoder_params_M": round(sum(p.numel() for p in enc.parameters()) / 1e6, 2)}
    with torch.no_grad():
        for label, e in (("channels_last", enc), ("nchw", nchw)):
            for b in (64, 8, 1):
                out[f"encoder_{label}_img_s_batch{b}"] = round(
                    _rate(lambda e=e, b=b: [e(x[i : i + b]) for i in range(0, 64 if b > 1 else 16, b)],
                          64 if b > 1 else 16, repeats), 1)  # fmt: skip
        out["synthesis_img_s_batch64"] = round(_rate(lambda: G.synthesis(ws, noise_mode="const"), 64, repeats), 1)
    print(json.dumps(out), flush=True)


def image_sets(G, n: int) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Held-out generated images (with their codes), fresh renders, and aligned photo-like crops."""
    from bench_photos import photos

    cfg = EncoderTrainConfig(const_noise=0.5)
    gen_imgs, w = sample_training_images(G, n, batch_generator(20261203, 0, salt=3), cfg, psi=(1.0, 1.0))
    fresh = from_uint8(np.stack([render_item(i, G.img_resolution, seed=4242)[0] for i in range(n)]))
    crops = photos(n, 0, G.img_resolution)[0]
    return {"generated": (gen_imgs, w), "fresh": (fresh, None), "photos": (crops, None)}


def scores(G, proj, target, lpips, w_true, w_var) -> dict:
    with torch.no_grad():
        mse = (proj.images - target).square().mean(dim=(1, 2, 3))
        out = {"psnr": float((10 * torch.log10(4 / mse)).mean()),
               "lpips": float(lpips(proj.images, lpips.prepare(target)).mean())}  # fmt: skip
        if w_true is not None:
            out["w_error"] = float(((proj.ws - w_true).square().sum(2).mean() / w_var).sqrt())
    return out


def editability(G, clf, proj) -> dict:
    from bench_editing import TARGETS, edit_effect

    from latentlab.pretrained import load_direction

    out = {}
    for name in EDITS:
        r = edit_effect(G, clf, proj.ws, proj.noise, load_direction(name, model="synthfaces-64"), TARGETS[name])
        out[name] = {"target": round(r["target_change"], 4), "off_target": round(r["mean_other_change"], 4)}
    return out


def methods(which: str):
    if which in ("all", "opt"):
        yield "optimization 1000", {"steps": 1000}
    if which in ("all", "enc"):
        yield "encoder alone", {"steps": 0, "encoder": True}
        for k in (50, 100, 200):
            yield f"encoder + {k}", {"steps": k, "encoder": True}


def quality(G, enc, args) -> list[dict]:
    from latentlab.pretrained import load_classifier
    from latentlab.projection import w_statistics

    lpips = LPIPSLoss("vgg")
    loss = build_loss(args.loss, download=False, log=lambda s: None, resolution=G.img_resolution)
    clf = load_classifier("synthfaces-64", device="cpu")
    w_var = w_statistics(G)[1] ** 2
    rows = []
    for set_name, (target, w_true) in image_sets(G, args.images).items():
        if set_name not in args.sets.split(","):
            continue
        for space in args.spaces.split(","):
            for name, m in methods(args.methods):
                t0 = time.perf_counter()
                proj = project(G, target, space=space, steps=m["steps"], loss=loss, batch_size=args.batch,
                               progress=False, encoder=enc if m.get("encoder") else None,
                               mse_weight=args.mse)  # fmt: skip
                seconds = (time.perf_counter() - t0) / len(target)
                row = {"mode": "quality", "set": set_name, "space": space, "method": name, "steps": m["steps"],
                       "loss": proj.loss_name + (f"+{args.mse:g}mse" if args.mse else ""),
                       "seconds_per_image": round(seconds, 4),
                       **scores(G, proj, target, lpips, w_true, w_var)}  # fmt: skip
                if set_name != "generated":
                    row["edits"] = editability(G, clf, proj)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def schedule(G, enc, args) -> None:
    lpips = LPIPSLoss("vgg")
    loss = build_loss("auto", download=False, log=lambda s: None, resolution=G.img_resolution)
    sets = image_sets(G, args.images)
    for lr in (0.1, 0.03, 0.01):
        for noise in (0.05, 0.0):
            for set_name, (target, _) in sets.items():
                for space in ("w", "w+"):
                    proj = project(G, target, space=space, steps=100, loss=loss, batch_size=args.batch, progress=False,
                                   encoder=enc, lr=lr, noise_factor=noise)  # fmt: skip
                    with torch.no_grad():
                        lp = float(lpips(proj.images, lpips.prepare(target)).mean())
                    print(json.dumps({"mode": "schedule", "lr": lr, "noise_factor": noise, "set": set_name,
                                      "space": space, "lpips": round(lp, 4)}), flush=True)  # fmt: skip


def iterations(G, enc, args) -> None:
    from latentlab.projection import ProjectConfig, project_batch, w_statistics

    lpips = LPIPSLoss("vgg")
    loss = build_loss(args.loss, download=False, log=lambda s: None, resolution=G.img_resolution)
    sets = image_sets(G, args.images)
    w_stats = w_statistics(G)
    counts = range(args.max_iterations + 1)

    def score(images, target):
        mse = (images - target).square().mean(dim=(1, 2, 3))
        return {"psnr": round(float((10 * torch.log10(4 / mse)).mean()), 2),
                "lpips": round(float(lpips(images, lpips.prepare(target)).mean()), 4)}  # fmt: skip

    for set_name, (target, _) in sets.items():
        if set_name not in args.sets.split(","):
            continue
        for space in args.spaces.split(","):
            with torch.no_grad():
                trace = []
                enc.invert(target, G, iterations=args.max_iterations, trace=trace, space=space)
                for n, ws in zip(counts, trace, strict=True):
                    print(json.dumps({"mode": "iterations", "set": set_name, "space": space, "iterations": n,
                                      "steps": 0, **score(G.synthesis(ws, noise_mode="const"), target)}),
                          flush=True)  # fmt: skip
            for n in (0, 1, 2):
                cfg = ProjectConfig(space=space, steps=100, loss=loss.name, init="encoder", encoder_iterations=n)
                parts = []
                for i in range(0, len(target), args.batch):
                    with torch.no_grad():
                        init = enc.invert(target[i : i + args.batch], G, iterations=n, space=space)
                    parts.append(project_batch(G, target[i : i + args.batch], loss, cfg, w_stats=w_stats,
                                               init=init).images)  # fmt: skip
                with torch.no_grad():
                    row = score(torch.cat(parts), target)
                print(json.dumps({"mode": "iterations", "set": set_name, "space": space, "iterations": n,
                                  "steps": 100, **row}), flush=True)  # fmt: skip
    x = sets["fresh"][0][: args.batch]
    with torch.no_grad():
        for n in counts:
            t = statistics.median(run_times(lambda n=n: enc.invert(x, G, iterations=n), args.repeats))
            print(json.dumps({"mode": "iterations-speed", "iterations": n, "batch": len(x),
                              "seconds_per_image": round(t / len(x), 5), "threads": torch.get_num_threads()}),
                  flush=True)  # fmt: skip


def _timed(rows: list[dict], times: str | None) -> list[dict]:
    """The quality rows with the seconds of a quiet ``--mode speed`` run (method, space) where there is one."""
    if times is None:
        return rows
    quiet = {}
    for line in Path(times).read_text().splitlines():
        r = json.loads(line)
        if r.get("mode") == "method-speed":
            quiet[(r["method"], r["space"])] = r["seconds_per_image"]
    return [{**r, "seconds_per_image": quiet.get((r["method"], r["space"]), r["seconds_per_image"])} for r in rows]


def method_speed(G, enc, args) -> None:
    """Seconds per image of every method, side by side in this process, one batch of ``--batch`` fresh renders."""
    loss = build_loss(args.loss, download=False, log=lambda s: None, resolution=G.img_resolution)
    target = image_sets(G, args.batch)["fresh"][0]
    for space in ("w", "w+"):
        for name, m in methods("all"):
            t0 = time.perf_counter()
            project(G, target, space=space, steps=m["steps"], loss=loss, batch_size=args.batch, progress=False,
                    encoder=enc if m.get("encoder") else None, mse_weight=args.mse)  # fmt: skip
            seconds = (time.perf_counter() - t0) / len(target)
            print(json.dumps({"mode": "method-speed", "space": space, "method": name, "batch": args.batch,
                              "seconds_per_image": round(seconds, 4), "threads": torch.get_num_threads()}),
                  flush=True)  # fmt: skip


def plot(rows: list[dict], path: str) -> None:
    """LPIPS against seconds per image (log scale), one panel per image set, drawn with Pillow."""
    from PIL import Image, ImageDraw

    sets = [s for s in ("generated", "fresh", "photos") if any(r["set"] == s for r in rows)]
    W, H, pad = 460, 340, 56
    img = Image.new("RGB", (W * len(sets), H), "white")
    d = ImageDraw.Draw(img)
    colors = {"w": (40, 90, 200), "w+": (210, 70, 40)}
    secs = [r["seconds_per_image"] for r in rows]
    lo_t, hi_t = np.log10(max(min(secs), 1e-4)) - 0.2, np.log10(max(secs)) + 0.2
    for k, s in enumerate(sets):
        sub = [r for r in rows if r["set"] == s]
        lps = [r["lpips"] for r in sub]
        lo_l, hi_l = min(lps) - 0.02, max(lps) + 0.02
        x0 = k * W

        def xy(r, x0=x0, lo_l=lo_l, hi_l=hi_l):
            x = x0 + pad + (np.log10(max(r["seconds_per_image"], 1e-4)) - lo_t) / (hi_t - lo_t) * (W - 2 * pad)
            y = H - pad - (r["lpips"] - lo_l) / (hi_l - lo_l) * (H - 2 * pad)
            return x, y

        d.rectangle([x0 + pad, pad, x0 + W - pad, H - pad], outline=(120, 120, 120))
        d.text((x0 + pad, 12), f"{s} images: LPIPS-VGG (lower is better)", fill="black")
        d.text((x0 + pad, H - 22), "seconds per image, log scale (2 CPU cores)", fill="black")
        for e in range(int(np.floor(lo_t)), int(np.ceil(hi_t)) + 1):
            if lo_t <= e <= hi_t:
                x = x0 + pad + (e - lo_t) / (hi_t - lo_t) * (W - 2 * pad)
                d.line([x, H - pad, x, H - pad + 5], fill="black")
                d.text((x - 10, H - pad + 8), f"{10.0**e:g}", fill="black")
        for v in np.linspace(lo_l, hi_l, 5):
            y = H - pad - (v - lo_l) / (hi_l - lo_l) * (H - 2 * pad)
            d.text((x0 + 8, y - 6), f"{v:.3f}", fill="black")
        for space in ("w", "w+"):
            enc_rows = [r for r in sub if r["space"] == space and r["method"].startswith("encoder")]
            pts = [xy(r) for r in sorted(enc_rows, key=lambda r: r["steps"])]
            d.line(pts, fill=colors[space], width=2)
            for r in sub:
                if r["space"] != space:
                    continue
                x, y = xy(r)
                shape = d.rectangle if r["method"].startswith("optimization") else d.ellipse
                shape([x - 4, y - 4, x + 4, y + 4], fill=colors[space])
                label = r["method"].replace("optimization 1000", "opt 1000").replace("encoder alone", "enc")
                d.text((x + 6, y - 12), label.replace("encoder + ", "+"), fill=colors[space])
        d.text((x0 + W - pad - 120, pad + 6), "W", fill=colors["w"])
        d.text((x0 + W - pad - 100, pad + 6), "W+", fill=colors["w+"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def markdown(rows: list[dict]) -> str:
    """The time-to-quality table of ``rows`` (one per set, W and W+ rows), in RESULTS.md's layout."""
    out = []
    order = ["optimization 1000", "encoder alone", "encoder + 50", "encoder + 100", "encoder + 200"]
    for s in ("generated", "fresh", "photos"):
        sub = [r for r in rows if r["set"] == s]
        if not sub:
            continue
        out += [f"**{s}**", "", "| space | method | s / image | PSNR | LPIPS-VGG | w error | smile: target / off "
                "| glasses: target / off |", "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for space in ("w", "w+"):
            for r in sorted((r for r in sub if r["space"] == space), key=lambda r: order.index(r["method"])):
                e = r.get("edits") or {}
                ed = [f"{e[k]['target']:.3f} / {e[k]['off_target']:.3f}" if k in e else "" for k in EDITS]
                we = f"{r['w_error']:.3f}" if r.get("w_error") is not None else ""
                out.append(f"| {'W' if space == 'w' else 'W+'} | {r['method']} | {r['seconds_per_image']:.3f} | "
                           f"{r['psnr']:.2f} | {r['lpips']:.3f} | {we} | {ed[0]} | {ed[1]} |")  # fmt: skip
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["speed", "quality", "schedule", "iterations"], default="speed")
    ap.add_argument("--max-iterations", type=int, default=5, help="iterations: the most corrections")
    ap.add_argument("--network", default="synthfaces-64")
    ap.add_argument("--encoder", default=None, help="encoder file (default: the network's embedded encoder)")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", default=None, help="quality: draw the plot from these rows (and --rows files)")
    ap.add_argument("--sets", default="generated,fresh,photos", help="quality, iterations: which image sets")
    ap.add_argument("--spaces", default="w,w+", help="quality, iterations: which spaces")
    ap.add_argument("--methods", choices=["all", "opt", "enc"], default="all", help="quality: which methods")
    ap.add_argument("--rows", nargs="*", default=[], help="quality rows (JSON lines) from earlier runs, for --plot")
    ap.add_argument("--times", default=None, help="speed rows (JSON lines) whose seconds replace the quality runs'")
    ap.add_argument("--loss", default="auto", help="the projector's distance (auto: ms-ssim at 64 px)")
    ap.add_argument("--mse", type=float, default=0.0, help="the projector's extra pixel MSE weight")
    ap.add_argument("--markdown", action="store_true", help="quality: print the table of all rows (RESULTS.md)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(args.network, device="cpu")
    if args.mode == "quality" and args.images == 0:  # only --rows: draw and tabulate earlier runs
        rows = [json.loads(line) for f in args.rows for line in Path(f).read_text().splitlines() if '"quality"' in line]
        if args.plot:
            plot(_timed(rows, args.times), args.plot)
        if args.markdown:
            print(markdown(_timed(rows, args.times)))
        return
    need = args.mode != "quality" or args.methods != "opt"
    enc = load_encoder(encoder_path(args.network, args.encoder), G=G) if need else None
    if args.mode == "speed":
        speed(G, enc, args.repeats)
        method_speed(G, enc, args)
    elif args.mode == "quality":
        rows = quality(G, enc, args)
        for f in args.rows:
            rows += [json.loads(line) for line in Path(f).read_text().splitlines() if '"quality"' in line]
        if args.plot:
            plot(_timed(rows, args.times), args.plot)
        if args.markdown:
            print(markdown(_timed(rows, args.times)))
    elif args.mode == "iterations":
        iterations(G, enc, args)
    else:
        schedule(G, enc, args)


if __name__ == "__main__":
    main()
