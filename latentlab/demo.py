"""``latentlab demo``: the README's main job, on the embedded SynthFaces model.

It renders a SynthFaces portrait the model never saw (dataset seed 999) and treats it as the user's
photo. Then it shows what latentlab does with a generator:

* its projection into W and into W+ (1000 steps each; LPIPS-VGG when its weights are in the torch cache,
  else the offline loss), with the codes saved for ``latentlab generate --latents``;
* when the model ships an encoder, the photo inverted by it alone and by it plus 100 projector steps, beside the
  1000-step W+ projection, with the time each took;
* edits of the W code along the shipped smile and glasses directions;
* samples at psi 0.7;
* a truncation sweep;
* coarse / middle / fine style mixing;
* when the classifier ships, the classifier's reading of the photo next to its true factors.

The result is a PNG strip and an HTML page in the output folder. Without an embedded model the demo uses
an untrained network and says so (and skips the edit, which needs directions fitted on the model).
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

PHOTO_DATASET_SEED = 999  # the embedded model is trained on dataset seed 0; this one it never saw
PSIS = (1.0, 0.7, 0.4, 0.0)
EDITS = ("smile", "glasses")  # shipped directions shown on the projected photo
EDIT_SIGMAS = (-3, -1.5, 0, 1.5, 3)  # edit sizes in multiples of each direction's std over samples
PROJECT_STEPS = 1000  # the paper's default; about 20 s per space on 2 CPU cores at 64x64
ENCODER_STEPS = 100  # projector steps after the encoder (benchmarks/bench_encoder.py)


def _rows_to_strip(rows: list[np.ndarray], pad: int = 4) -> np.ndarray:
    """Stack uint8 image rows ``[h, w_i, 3]`` vertically, left-aligned, on white."""
    w = max(r.shape[1] for r in rows)
    out = [np.pad(r, ((0, pad), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(out)[:-pad]


def _row(images: np.ndarray, pad: int = 2) -> np.ndarray:
    """uint8 ``[N, h, w, 3]`` side by side with ``pad`` white pixels between."""
    parts = []
    for im in images:
        parts += [im, np.full((im.shape[0], pad, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def run_demo(outdir: str | os.PathLike, device: str = "auto") -> Iterator[str]:
    """Run the demo into ``outdir``; yields the lines to print."""
    from . import registry
    from .data.synthfaces import FACTORS, render_item
    from .edit.ops import GROUPS, mix
    from .io import init_checkpoint, save_image, to_uint8
    from .render import generate_images, render_codes
    from .utils import resolve_device

    device = resolve_device(device)  # before anything is written
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    default = registry.default_model()
    trained = default is not None
    if trained:
        network: str | Path = default
        yield f"embedded default model: {default}"
    else:
        network = init_checkpoint("synthfaces-64", outdir / "untrained.safetensors", seed=0, with_d=False)
        yield ("no embedded model ships yet: using an UNTRAINED synthfaces-64 network (random weights), "
               f"written to {network}")  # fmt: skip
    G = registry.load_generator(network, device=device)
    res = G.img_resolution
    yield f"generator: {res}x{res}, num_ws={G.num_ws}, w_dim={G.w_dim}, device={device}"
    sections: list[tuple[str, str, str]] = []  # (title, png name, caption)
    rows = []

    # The "photo": a SynthFaces render from a dataset seed the model was not trained on.
    photo, face = render_item(0, res, seed=PHOTO_DATASET_SEED)
    save_image(outdir / "photo.png", photo)
    rows.append(photo)
    truth = {k: round(float(v), 3) for k, v in zip(FACTORS, face.vector(), strict=True)}
    caption = "a SynthFaces portrait the model never saw (dataset seed 999, image 0)"
    reading = _classifier_reading(photo, device)
    if reading is not None:
        caption += "; classifier reading vs truth: " + ", ".join(
            f"{k} {reading[k]:.2f}/{truth[k]:.2f}" for k in ("smile", "yaw", "skin_tone", "glasses", "eyes_open"))
    sections.append(("The photo", "photo.png", caption))

    # Its projection into W and W+, then edits of the W code along shipped directions.
    projections: dict = {}
    yield from _project_photo(G, photo, outdir, sections, rows, projections)
    yield from _encode_photo(G, network, photo, outdir, sections, rows, projections)
    yield from _edit_photo(G, network, projections["w"], outdir, sections, rows)

    # Samples.
    gen = generate_images(G, list(range(8)), truncation_psi=0.7, noise_mode="const")
    samples = to_uint8(gen.images)
    save_image(outdir / "samples.png", _row(samples))
    rows.append(_row(samples))
    sections.append(("Samples", "samples.png", "seeds 0-7 at truncation psi 0.7, constant noise"))

    # Truncation sweep on seed 3.
    with torch.no_grad():
        z = gen.z[3:4].to(device)
        sweep = torch.cat([G(z, truncation_psi=psi, noise_mode="const").cpu() for psi in PSIS])
    save_image(outdir / "truncation.png", _row(to_uint8(sweep)))
    rows.append(_row(to_uint8(sweep)))
    sections.append(("Truncation", "truncation.png", "seed 3 at psi " + ", ".join(f"{p:g}" for p in PSIS)
                     + ": towards the average face"))  # fmt: skip

    # Style mixing: seed 6 with seed 1's codes for one group of layers.
    ws = gen.ws
    mixes = [ws[1:2], ws[6:7], *(mix(ws[6:7], ws[1:2], group) for group in GROUPS)]
    mixed = render_codes(G, torch.cat(mixes))
    save_image(outdir / "mixing.png", _row(to_uint8(mixed)))
    rows.append(_row(to_uint8(mixed)))
    sections.append(("Style mixing", "mixing.png", "seed 1, seed 6, then seed 6 with seed 1's coarse (pose, "
                     "face shape), middle (features) and fine (colour) codes"))  # fmt: skip

    save_image(outdir / "strip.png", _rows_to_strip(rows))
    _write_html(outdir / "report.html", sections, str(network), trained, truth)
    yield (f"wrote {outdir / 'report.html'} and {outdir / 'strip.png'} (photo, projection, edit, samples, "
           "truncation, style mixing)")
    yield f"next: latentlab info {network}   |   latentlab generate --network {network} --seeds 0-7 --outdir out"


def _project_photo(G, photo: np.ndarray, outdir: Path, sections: list, rows: list, out: dict) -> Iterator[str]:
    """Project the photo into W and W+; adds the comparison image, saves both codes, fills ``out[space]``."""
    from .io import from_uint8, save_image, save_latents, to_uint8
    from .io.latents import noise_arrays
    from .perceptual.pixels import psnr
    from .projection import build_loss, project

    lines: list[str] = []
    loss = build_loss("auto", download=False, log=lines.append, resolution=G.img_resolution).to(G.w_avg.device)
    yield from lines
    out["loss"] = loss  # the encoder's section refines with the same distance
    target = from_uint8(photo).to(G.w_avg.device)
    images, notes = [photo], []
    for space in ("w", "w+"):
        t0 = time.perf_counter()
        p = project(G, target, space=space, steps=PROJECT_STEPS, loss=loss, progress=True)
        out[space], out[f"{space} seconds"] = p, time.perf_counter() - t0
        name = "photo-" + space.replace("+", "plus")
        save_latents(outdir / f"{name}.npz", p.ws[0], meta={"space": space, "loss": p.loss_name, "source": "demo"},
                     **noise_arrays(G, p.noise, 0))  # fmt: skip
        images.append(to_uint8(p.images)[0])
        db = psnr(from_uint8(photo), from_uint8(to_uint8(p.images))).item()
        notes.append(f"{space.upper()} {db:.1f} dB")
        yield f"projected the photo into {space.upper()} ({p.loss_name}, {PROJECT_STEPS} steps): PSNR {db:.2f} dB"
    save_image(outdir / "projection.png", _row(np.stack(images)))
    rows.append(_row(np.stack(images)))
    sections.append(("Projection", "projection.png",
                     f"the photo | its projection into W | into W+ ({loss.name} loss, {PROJECT_STEPS} steps; "
                     f"PSNR {', '.join(notes)}); codes in photo-w.npz and photo-wplus.npz"))  # fmt: skip


def _encode_photo(G, network, photo: np.ndarray, outdir: Path, sections: list, rows: list,
                  projections: dict) -> Iterator[str]:  # fmt: skip
    """The photo through the model's embedded encoder: alone, and followed by ``ENCODER_STEPS`` W+ steps, beside
    the 1000-step W+ projection; saves ``photo-encoder.npz``. Nothing when the model has no encoder."""
    from .io import from_uint8, save_image, save_latents, to_uint8
    from .io.latents import noise_arrays
    from .perceptual.pixels import psnr
    from .projection import project
    from .projection.encoder import load_encoder
    from .registry import encoder_path

    try:
        path = encoder_path(network)
    except FileNotFoundError:
        return
    enc = load_encoder(path, device=G.w_avg.device, G=G, name=str(network))
    loss = projections["loss"]
    target = from_uint8(photo).to(G.w_avg.device)
    results = []
    for steps in (0, ENCODER_STEPS):
        t0 = time.perf_counter()
        p = project(G, target, space="w+", steps=steps, loss=loss, encoder=enc, progress=steps > 0)
        results.append((p, time.perf_counter() - t0))
    p = results[-1][0]
    save_latents(outdir / "photo-encoder.npz", p.ws[0], meta={"space": "w+", "loss": p.loss_name, "source": "demo",
                                                              "init": "encoder", "steps": ENCODER_STEPS},
                 **noise_arrays(G, p.noise, 0))  # fmt: skip
    full = projections["w+"]
    shown = [*results, (full, projections["w+ seconds"])]
    images = [photo] + [to_uint8(r.images)[0] for r, _ in shown]
    dbs = [psnr(from_uint8(photo), from_uint8(to_uint8(r.images))).item() for r, _ in shown]
    names = ("the encoder alone", f"encoder + {ENCODER_STEPS} steps", f"{PROJECT_STEPS} steps from the mean")
    notes = [f"{n} {db:.1f} dB in {s:.1f} s" for n, db, (_, s) in zip(names, dbs, shown, strict=True)]
    save_image(outdir / "encoder.png", _row(np.stack(images)))
    rows.append(_row(np.stack(images)))
    sections.append(("Encoder", "encoder.png", f"the photo | the embedded encoder alone (one pass) | the encoder + "
                     f"{ENCODER_STEPS} W+ steps | {PROJECT_STEPS} W+ steps from the mean ({'; '.join(notes)}); "
                     f"codes in photo-encoder.npz"))  # fmt: skip
    yield "encoded the photo into W+: " + "; ".join(notes)


def _edit_photo(G, network, proj, outdir: Path, sections: list, rows: list) -> Iterator[str]:
    """Move the photo's W code along the shipped smile and glasses directions (in multiples of each one's std)."""
    from .edit.figures import edited_codes, render_strip
    from .io import save_image
    from .pretrained import list_directions, load_direction

    names = [a for a in EDITS if f"{network}/{a}" in list_directions()]
    if not names:
        yield "no shipped directions for this network: the edit is skipped"
        return
    clf = _classifier(G.w_avg.device)
    strips, notes = [], []
    for a in names:
        d = load_direction(a, model=str(network))
        d.check_model(G, str(network))
        alphas = [k * d.std for k in EDIT_SIGMAS]
        strip, images = render_strip(G, edited_codes(G, d, alphas, proj.ws.cpu()), proj.noise)
        strips.append(strip)
        yield f"edited the W projection along {d.describe()}"
        if clf is not None and d.attribute in clf.config.factors:
            line = _travel_note(clf, images[0], d.attribute, G.w_avg.device)
            notes.append(f"{d.name}: {line}")
            yield f"  the classifier's readings over the strip: {line}"
    strip = _rows_to_strip(strips, pad=2)
    save_image(outdir / "edit.png", strip)
    rows.append(strip)
    sizes = ", ".join(f"{k:+g}" for k in EDIT_SIGMAS)
    caption = (f"the W projection moved along the shipped {' and '.join(names)} directions by {sizes} standard "
               "deviations (middle: unedited)")  # fmt: skip
    if notes:
        caption += ". How far the classifier's readings travel over each row (fractions of their ranges): "
        caption += "; ".join(notes)
    sections.append(("Edit", "edit.png", caption))


def _travel_note(clf, images: np.ndarray, target: str, device: torch.device) -> str:
    """``"smile 0.69, most-moved other: face_width 0.43 (1.6x)"`` for one edit row ``uint8 [A, R, R, 3]``."""
    from .io import from_uint8

    travel = clf.travel(from_uint8(images).to(device))
    other = max((f for f in travel if f != target), key=travel.get)
    ratio = travel[target] / max(travel[other], 1e-6)
    return f"{target} {travel[target]:.2f}, most-moved other: {other} {travel[other]:.2f} ({ratio:.1f}x)"


def _classifier(device: torch.device):
    """The embedded SynthFaces classifier, or None when it is not shipped."""
    from .pretrained import load_classifier

    try:
        return load_classifier("synthfaces-64", device=device)
    except FileNotFoundError:
        return None


def _classifier_reading(photo: np.ndarray, device: torch.device) -> dict[str, float] | None:
    """The embedded classifier's factor values for ``photo``, or None when it is not shipped."""
    clf = _classifier(device)
    if clf is None:
        return None
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float().to(device) / 127.5 - 1
    return {k: float(v[0]) for k, v in clf.predict(x).items()}


def _write_html(path: Path, sections, network: str, trained: bool, truth: dict[str, float]) -> None:
    from .io.atomic import atomic_path

    note = "" if trained else "<p><b>No embedded model ships yet: these images come from an UNTRAINED network.</b></p>"
    body = "".join(
        f"<h2>{html.escape(t)}</h2><img src='{png}' style='image-rendering:pixelated;height:160px'>"
        f"<p>{html.escape(c)}</p>"
        for t, png, c in sections
    )
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>latentlab demo</title></head><body>"
           f"<h1>latentlab demo</h1><p>network: <code>{html.escape(network)}</code></p>{note}{body}"
           f"<h2>The photo's true factors</h2><pre>{html.escape(json.dumps(truth, indent=1))}</pre>"
           "</body></html>")  # fmt: skip
    with atomic_path(path) as tmp:
        tmp.write_text(doc)
