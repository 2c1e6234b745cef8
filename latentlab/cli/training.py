"""Datasets and training: ``train``, ``dataset prepare|synth|info``, ``classifier train``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import SEED, Finite, device_option, join_world


@click.command()
@click.option("--data", default=None, help="Folder or zip of images (e.g. from `latentlab dataset prepare`).")
@click.option("--outdir", required=True, help="Run folder: snapshots, training states, sample grids, stats.jsonl.")
@click.option("--preset", default=None, help="Network architecture (see `latentlab presets`).  [default: small-64]")
@click.option("--init", default=None, help="Start from this checkpoint's G, G_ema and D instead of a random "
              "initialisation (.safetensors, NVIDIA .pkl, rosinality .pt, registry name); fresh optimizers.")
@click.option("--channel-base", type=click.IntRange(1, 2**20), default=None,
              help="Feature maps at resolution R: min(channel-base / R, channel-max). With --init, its networks "
                   "are widened to it and start computing what they computed.  [default: the preset's or the "
                   "init file's]")
@click.option("--channel-max", type=click.IntRange(1, 2**16), default=None,
              help="The most feature maps at any resolution (see --channel-base).")
@click.option("--kimg", type=Finite(0, low_open=True), default=None,
              help="Train until this many thousand images.  [default: 1000]")
@click.option("--batch", type=click.IntRange(1, 65536), default=None,
              help="Global minibatch, split over processes.  [default: 16]")
@click.option("--gamma", type=Finite(0), default=None,
              help="R1 weight.  [default: NVIDIA's heuristic 0.0002 * resolution^2 / batch]")
@click.option("--seed", type=SEED, default=None, help="Seeds initialisation, latents, noise, data order.  [default: 0]")
@click.option("--snap", type=Finite(0, low_open=True), default=None,
              help="Snapshot every this many kimg.  [default: 10]")
@click.option("--keep", type=click.IntRange(min=0), default=None,
              help="Keep the last K snapshots; 0 = all.  [default: 5]")
@click.option("--tick", type=Finite(0, low_open=True), default=None,
              help="One stats.jsonl row every this many kimg.  [default: 1]")
@click.option("--xflip/--no-xflip", default=None, help="Also train on mirrored images.  [default: no]")
@click.option("--crop", type=click.Choice(["none", "center"]), default=None,
              help="center = crop non-square images; none = skip them.  [default: none]")
@click.option("--cond/--no-cond", default=None, help="Condition on the dataset's labels.  [default: no]")
@click.option("--augment", type=click.Choice(["none", "ada", "fixed"]), default=None,
              help="Discriminator augmentation: ada = adaptive (for small datasets), fixed = constant --aug-p.  "
                   "[default: none]")
@click.option("--aug-p", type=Finite(0, 1), default=None,
              help="Augmentation probability: ADA's start, or the fixed value.")
@click.option("--ada-target", type=Finite(0, 1), default=None,
              help="ADA's target for E[sign(D(real))].  [default: 0.6]")
@click.option("--ema-kimg", "ema_kimg", type=Finite(0), default=None,
              help="G_ema half-life in kimg.  [default: batch * 10 / 32]")
@click.option("--lr", type=Finite(0, 10, low_open=True), default=None,
              help="Adam learning rate of G and D.  [default: 0.0025]")
@click.option("--arch", type=click.Choice(["stylegan2", "stylegan1"]), default=None,
              help="stylegan1 = StyleGAN v1 with its recipe: progressive growing from 8x8 (600 + 600 kimg per "
                   "resolution), R1 gamma 10 every minibatch, no path length, lr 0.001, batch by resolution, "
                   "G_ema half-life 10 kimg.  [default: the preset's; preset stylegan1-64 for stylegan1]")
@click.option("--grow-from", "lod_initial_resolution", type=click.IntRange(4, 65536), default=None,
              help="StyleGAN v1: start progressive growing at this resolution.  [default: 8]")
@click.option("--grow-kimg", "lod_training_kimg", type=Finite(0), default=None,
              help="StyleGAN v1: kimg at each resolution before the next fades in.  [default: 600]")
@click.option("--fade-kimg", "lod_transition_kimg", type=Finite(0), default=None,
              help="StyleGAN v1: kimg fading in each new resolution.  [default: 600]")
@click.option("--batch-by-res", "batch_dict", default=None, metavar="RES:N,...",
              help="StyleGAN v1: global batch per resolution, e.g. 8:64,16:32,32:16 (others: --batch).  "
                   "[default: NVIDIA's one-GPU table, 128 up to 16x16 ... 4 at 1024x1024]")
@click.option("--lr-by-res", "lr_dict", default=None, metavar="RES:LR,...",
              help="StyleGAN v1: learning rate per resolution (others: --lr).  [default: 0.0015 at 128, 0.002 at "
                   "256, 0.003 from 512]")
@click.option("--resume", default=None, help="auto = continue --outdir if it has a snapshot; or a run folder / "
              "training-state file. Options not given are taken from the saved run.")
@click.option("--grid", type=click.IntRange(1, 1024), default=None, help="Samples per snapshot grid.  [default: 32]")
@click.option("--threads", type=click.IntRange(1, 4096), default=None,
              help="CPU threads per process.  [default: PyTorch's]")
@click.option("--workers", type=click.IntRange(0, 256), default=None,
              help="Threads decoding images in parallel.  [default: 0]")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None,
              help="G's synthesis and D's blocks in bf16 (CPUs with AVX-512 BF16 or AMX, CUDA); weights, Adam, "
                   "losses and D's epilogue stay fp32. A resumed run may change it.  [default: fp32]")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@device_option
def train(data, outdir, preset, init, channel_base, channel_max, kimg, batch, gamma, seed, snap, keep, tick, xflip,
          crop, cond, augment, aug_p, ada_target, ema_kimg, lr, arch, lod_initial_resolution, lod_training_kimg,
          lod_transition_kimg, batch_dict, lr_dict, resume, grid, threads, workers, precision, progress,
          device):  # fmt: skip
    """Train a StyleGAN2 (or StyleGAN v1, --arch stylegan1) generator on a folder or zip of images.

    StyleGAN2: lazy R1, path length, style mixing, G_ema. StyleGAN v1: progressive growing with
    the paper's recipe (--arch help); the level of detail is in stats.jsonl ("lod").

    Every --snap kimg the run folder gets network-snapshot-KIMG.safetensors (G, G_ema, D),
    training-state-KIMG.pt and samples-KIMG.png; stats.jsonl gets a row every --tick kimg. Kill it at
    any time and continue with --resume auto: the result is the same as an uninterrupted run. For
    several processes, launch it with torchrun (gloo on CPU, nccl on GPU); --batch is the global batch.

    Examples:

    \b
        latentlab train --data faces.zip --outdir runs/faces --preset small-64 --kimg 500 --batch 16
        latentlab train --outdir runs/faces --resume auto
        latentlab train --data faces.zip --outdir runs/v1 --arch stylegan1 --grow-kimg 60 --fade-kimg 60
        torchrun --standalone --nproc_per_node 2 -m latentlab train --data faces.zip --outdir runs/f2
        latentlab train --data faces.zip --outdir runs/bf --preset small-64 --precision bf16
        latentlab train --data faces.zip --outdir runs/wide --init model.safetensors --channel-base 8192
    """
    from ..train import train as run_training
    from ..train.loop import config_for_run

    lrs = {"lr_G": lr, "lr_D": lr} if lr is not None else {}
    config = config_for_run(dict(
        data=data, outdir=outdir, preset=preset, init=init, channel_base=channel_base, channel_max=channel_max,
        kimg=kimg, batch=batch, gamma=gamma, seed=seed, snap=snap,
        keep=keep, tick=tick, xflip=xflip, crop=crop, cond=cond, augment=augment, aug_p=aug_p, ada_target=ada_target,
        ema_kimg=ema_kimg, resume=resume, grid=grid, arch=arch, lod_initial_resolution=lod_initial_resolution,
        lod_training_kimg=lod_training_kimg, lod_transition_kimg=lod_transition_kimg,
        batch_dict=_per_resolution(batch_dict, "--batch-by-res", int),
        lr_dict=_per_resolution(lr_dict, "--lr-by-res", float),
        threads=threads, workers=workers, precision=precision, progress=progress, device=device, **lrs,
    ))  # fmt: skip
    join_world(device, "train")  # under torchrun: the group, the same arguments everywhere, leaving it together
    run_training(config, log=click.echo)


def _per_resolution(text: str | None, option: str, kind: type) -> tuple | None:
    """``"8:64,16:32"`` -> ``((8, 64), (16, 32))``; a malformed item is a usage error naming it."""
    if text is None:
        return None
    pairs = []
    for item in text.split(","):
        res, sep, value = item.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            pairs.append((int(res), kind(value)))
        except ValueError:
            raise click.BadParameter(f"{item.strip()!r} is not RES:{'N' if kind is int else 'LR'}",
                                     param_hint=option) from None  # fmt: skip
    return tuple(pairs)


@click.group()
def dataset():
    """Prepare and inspect training datasets."""


@dataset.command("prepare")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resolution", type=click.IntRange(4, 16384), required=True,
              help="Output side in pixels, a power of two.")
@click.option("--crop", type=click.Choice(["none", "center"]), default="none", show_default=True,
              help="center = crop the largest centred square; none = skip non-square images.")
@click.option("--channels", type=click.Choice(["3", "1"]), default="3", show_default=True, help="RGB or grey.")
@click.option("--background", default="255,255,255", show_default=True,
              help="R,G,B colour that transparent pixels are composited over.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def dataset_prepare(src, out, resolution, crop, channels, background, progress):
    """Convert a folder or zip of images (png/jpg/webp, any mode) into a training-ready zip.

    Writes NVIDIA's dataset_tool layout (00000/img00000000.png ..., dataset.json with labels carried
    over from SRC's dataset.json). 16-bit images are scaled to 8 bits, transparency is composited over
    --background, grey is replicated to RGB. Files that cannot be used are skipped and listed with the
    reason. The zip is written atomically.

    Example:

        latentlab dataset prepare photos/ faces-64.zip --resolution 64 --crop center
    """
    from ..data.datasets import prepare_dataset

    try:
        bg = tuple(int(v) for v in background.split(","))
    except ValueError:
        bg = ()
    if len(bg) != 3 or not all(0 <= v <= 255 for v in bg):
        raise click.BadParameter(f"want three numbers in 0..255 like 255,255,255, got {background!r}",
                                 param_hint="--background")  # fmt: skip
    report = prepare_dataset(src, out, resolution=resolution, crop=crop, channels=int(channels), background=bg,
                             progress=progress)  # fmt: skip
    for name, reason in report.skipped:
        click.echo(f"skipped {name}: {reason}", err=True)
    labels = " with labels" if report.labels else ""
    click.echo(f"wrote {report.written} images{labels} at {resolution}x{resolution} to {out} "
               f"({len(report.skipped)} skipped)")  # fmt: skip


@dataset.command("synth")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(1, 10**8), required=True, help="Number of images.")
@click.option("--resolution", type=click.Choice(["32", "64", "128", "256"]), default="64", show_default=True,
              help="Image side in pixels.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Dataset seed (image i depends on seed and i).")
@click.option("--workers", type=int, default=None, help="Rendering processes.  [default: all cores]")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def dataset_synth(out, count, resolution, seed, workers, progress):
    """Render SynthFaces (face-like portraits with known factors) into a training zip.

    The zip has NVIDIA's layout; dataset.json's labels are each image's factor vector (yaw, roll,
    face_width, skin_tone, hair_color, hair_length, smile, eyes_open, glasses, bg_hue, bg_light,
    light_dir, shirt_hue), so the factors travel with the images. See docs/synthfaces.md.

    Example:

        latentlab dataset synth --count 50000 --resolution 64 synthfaces-64.zip
    """
    from ..data.synthfaces import write_dataset

    write_dataset(out, count, resolution=int(resolution), seed=seed, workers=workers, progress=progress)
    click.echo(f"wrote {count} SynthFaces at {resolution}x{resolution} to {out}")


@click.group()
def classifier():
    """Train and evaluate the SynthFaces factor classifier."""


@classifier.command("train")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="A zip from `latentlab dataset synth` (its labels are the factors).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .safetensors to write.")
@click.option("--epochs", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--batch", type=click.IntRange(1, 65536), default=128, show_default=True)
@click.option("--lr", type=Finite(0, 10, low_open=True), default=2e-3, show_default=True,
              help="Adam learning rate (cosine decay).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--eval-count", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Fresh renders (dataset seed --eval-seed) for the held-out figures.")
@click.option("--eval-seed", type=SEED, default=1, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def classifier_train(data, out, epochs, batch, lr, seed, eval_count, eval_seed, limit, progress):
    """Train the factor classifier on SynthFaces and print its held-out accuracy / R² per factor.

    Example:

        latentlab classifier train --data synthfaces-64.zip --out pretrained/synthfaces-64-classifier.safetensors
    """
    from ..data.classifier import train_classifier

    _, figures = train_classifier(data, out, epochs=epochs, batch=batch, lr=lr, seed=seed, eval_count=eval_count,
                                  eval_seed=eval_seed, limit=limit, progress=progress)  # fmt: skip
    for k, v in figures.items():
        click.echo(f"{k:32s} {v:.4f}")
    click.echo(f"wrote {out}")


@dataset.command("info")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def dataset_info(path, as_json):
    """Describe a dataset folder or zip: usable images, resolution, labels, skipped files.

    Example:

        latentlab dataset info faces-64.zip
    """
    import warnings as _warnings

    from ..data.datasets import ImageDataset

    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        ds = ImageDataset(path, crop="center")
    d = ds.describe()
    d.pop("crop")
    d.pop("xflip")
    d["skipped_files"] = [{"file": n, "reason": r} for n, r in ds.skipped]
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"{path}: {d['images']} images ({d['kind']}), first image {d['resolution']}px, "
               f"{'labels c_dim=' + str(d['c_dim']) if d['c_dim'] else 'no labels'}")  # fmt: skip
    for s in d["skipped_files"]:
        click.echo(f"  skipped {s['file']}: {s['reason']}")
