"""The ``latentlab`` command line. Every subcommand is a thin wrapper over one library function."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .utils import DEVICE_CHOICES


class _Group(click.Group):
    """Turns expected errors (bad input, unreadable files) into one ``Error: ...`` line and exit code 1."""

    def invoke(self, ctx: click.Context):
        """Run the subcommand; ``LATENTLAB_DEBUG=1`` lets errors through with their traceback."""
        from .io.checkpoint import CheckpointError
        from .projection.losses import WeightsUnavailable

        if os.environ.get("LATENTLAB_DEBUG") == "1":
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except (CheckpointError, ValueError, KeyError, FileNotFoundError, IsADirectoryError, WeightsUnavailable) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            raise click.ClickException(str(msg)) from None
        except OSError as e:
            raise click.ClickException(f"{e.strerror or e}: {e.filename}" if e.filename else str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="latentlab")
def cli() -> None:
    """latentlab: StyleGAN2 inversion and latent-space editing.

    Run `latentlab COMMAND --help` for the options and an example of each command.
    """


def main() -> None:
    """Console-script entry point: tunes glibc's allocator for big tensors, then runs the CLI."""
    from .utils import tune_allocator

    tune_allocator()
    cli(prog_name="latentlab")


def _device_option(f):
    return click.option(
        "--device", default="auto", show_default=True,
        help=f"One of {', '.join(DEVICE_CHOICES)} (or e.g. cuda:1); auto = cuda, then mps, then cpu.",
    )(f)  # fmt: skip


# --------------------------------------------------------------------------------------------------


@cli.command()
@click.option("--network", "network", required=True,
              help="Registry name, or a latentlab .safetensors / NVIDIA .pkl / rosinality .pt file.")
@click.option("--seeds", default=None, help="Seeds as a list with inclusive ranges, e.g. 0-7,12.")
@click.option("--latents", "latents", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Render the codes in this .npz instead of seeds (e.g. from `latentlab project`), with its "
                   "saved noise maps when it has them.")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True,
              help="Truncation psi in [-1, 2]; 1 = none, 0.7 is a common choice.")
@click.option("--trunc-cutoff", "cutoff", type=int, default=None,
              help="Truncate only the first N W codes (the coarse layers); default all.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
              help="Noise inputs: the stored maps, fresh noise seeded by each seed, or none.")
@click.option("--class", "class_idx", type=int, default=None, help="Class index for a conditional network.")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for seed%04d.png (or code%04d.png), codes.npz and (with --grid) grid.png.")
@click.option("--grid/--no-grid", default=False, show_default=True, help="Also write all images as one grid.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Images per forward pass.")
@_device_option
def generate(network, seeds, latents, psi, cutoff, noise_mode, class_idx, outdir, grid, batch, device):
    """Render images from seeds, or re-render saved codes, with a generator.

    From seeds: one PNG per seed, the z and W+ codes as codes.npz (keys z, w, seeds; w is NVIDIA's
    --projected-w layout) and, with --grid, grid.png. Seeds give the same z as NVIDIA's generate.py.
    From --latents: one PNG per code (code0000.png, ...), rendered with the file's noise maps, so a
    projection comes back exactly as `latentlab project` wrote it.

    Examples:

        latentlab generate --network net.safetensors --seeds 0-7,12 --trunc 0.7 --outdir out/ --grid

        latentlab generate --network synthfaces-64 --latents proj/photo.npz --outdir out/
    """
    from .generate import generate_images, render_codes
    from .io import load_generator, load_latents, make_grid, save_image, save_latents, to_uint8
    from .utils import parse_int_list

    if (seeds is None) == (latents is None):
        raise click.UsageError("give exactly one of --seeds and --latents")
    G = load_generator(network, device=device)
    if latents is not None:
        from .nn import truncate
        from .projection.outputs import latents_noise

        codes = load_latents(latents)
        if codes.w.shape[1:] != (G.num_ws, G.w_dim):
            raise ValueError(f"{latents}: codes of shape {tuple(codes.w.shape[1:])} do not fit this network, "
                             f"which wants [{G.num_ws}, {G.w_dim}]")  # fmt: skip
        if noise_mode == "random":
            raise click.UsageError("--latents renders with the saved noise or --noise-mode const|none")
        ws = codes.w
        if psi != 1.0:
            ws = truncate(ws, G.w_avg.cpu(), psi, cutoff)
        pixels = to_uint8(render_codes(G, ws, latents_noise(G, codes), noise_mode=noise_mode, progress=True))
        for i, img in enumerate(pixels):
            save_image(outdir / f"code{i:04d}.png", img)
        if grid:
            save_image(outdir / "grid.png", make_grid(pixels))
        click.echo(f"wrote {len(pixels)} images{' and grid.png' if grid else ''} to {outdir}")
        return

    seed_list = parse_int_list(seeds, "seeds")
    result = generate_images(G, seed_list, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode,
                             class_idx=class_idx, batch_size=batch, progress=True)  # fmt: skip
    pixels = to_uint8(result.images)
    outdir.mkdir(parents=True, exist_ok=True)
    for seed, img in zip(result.seeds, pixels, strict=True):
        save_image(outdir / f"seed{seed:04d}.png", img)
    meta = {"network": str(network), "space": "w+", "truncation_psi": psi, "truncation_cutoff": cutoff,
            "noise_mode": noise_mode, "class_idx": class_idx, "source": "latentlab generate"}  # fmt: skip
    save_latents(outdir / "codes.npz", result.ws, meta=meta, z=result.z, seeds=result.seeds)
    if grid:
        save_image(outdir / "grid.png", make_grid(pixels))
    click.echo(f"wrote {len(seed_list)} images{' and grid.png' if grid else ''} and codes.npz to {outdir}")


@cli.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--network", required=True, help="Registry name, or a latentlab / NVIDIA / rosinality checkpoint.")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for <name>.npz, <name>.png, <name>-compare.png, summary.json and summary.csv.")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="W: one code per image (stays on the model's manifold); W+: one per layer (closer fit).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Optimization steps.")
@click.option("--loss", type=click.Choice(["auto", "lpips-vgg", "lpips-alex", "mse", "ms-ssim", "d-features"]),
              default="auto", show_default=True,
              help="Image distance; auto = LPIPS-VGG when its weights are present or downloadable, else the "
                   "offline loss (docs/projection.md).")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="torchvision's vgg16-397923af.pth (or alexnet-owt-7be5be79.pth) if it is not in the torch cache.")
@click.option("--download/--no-download", default=True, show_default=True,
              help="Allow downloading the LPIPS backbone into the torch cache.")
@click.option("--mse", "mse_weight", type=float, default=0.0, show_default=True,
              help="Weight of an extra pixel MSE term.")
@click.option("--lr", type=float, default=0.1, show_default=True, help="Peak Adam learning rate.")
@click.option("--noise/--no-noise", "optimize_noise", default=True, show_default=True,
              help="Optimize the per-layer noise maps too (the StyleGAN2 projector does).")
@click.option("--noise-weight", type=float, default=1e5, show_default=True, help="Noise regularization weight.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the W statistics and the random draws.")
@click.option("--class", "class_idx", type=int, default=None,
              help="Conditional networks: the class whose average W starts the search.")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Images optimized together (each independently); larger is faster per image.")
@click.option("--crop", type=click.Choice(["center", "none"]), default="center", show_default=True,
              help="center = largest centred square; none = skip non-square images.")
@click.option("--video/--no-video", default=False, show_default=True,
              help="Also write <name>.mp4: target | the optimization's progress.")
@click.option("--frames", type=click.IntRange(min=2), default=100, show_default=True, help="Frames per video.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@_device_option
def project(images, network, outdir, space, steps, loss, lpips_weights, download, mse_weight, lr, optimize_noise,
            noise_weight, seed, class_idx, batch, crop, video, frames, progress, device):
    """Project images into a generator's W or W+ space (StyleGAN2 paper, appendix D).

    IMAGES are files or folders (searched recursively). Any image Pillow reads works: RGB, RGBA
    (over white), grey, 16-bit, EXIF-rotated; non-square images are centre-cropped and all are resized
    (Lanczos) to the model's resolution. Unreadable files are listed and skipped. Per image it writes
    <name>.npz (key w in NVIDIA's --projected-w layout, plus the optimized noise maps and meta),
    the reconstruction <name>.png and <name>-compare.png (target | reconstruction); summary.json/.csv
    list PSNR, SSIM and LPIPS (when a pretrained LPIPS is at hand). Re-render a result exactly with
    `latentlab generate --latents <name>.npz`.

    Example:

        latentlab project --network synthfaces-64 --space w+ photos/ --outdir proj/ --video
    """
    from .io import load_any
    from .pretrained import resolve
    from .projection import ProjectConfig, build_loss, expand_inputs, iter_projections, load_targets
    from .projection.losses import LPIPSLoss, WeightsUnavailable
    from .projection.outputs import unique_names, write_projection, write_summary
    from .utils import resolve_device

    dev = resolve_device(device)
    paths = expand_inputs(images)
    ck = load_any(resolve(network), device=dev)
    G = ck.generator.requires_grad_(False)
    targets = load_targets(paths, G.img_resolution, G.img_channels, crop=crop)
    for p, why in targets.skipped:
        click.echo(f"skipped {p}: {why}", err=True)
    if not targets.paths:
        raise click.ClickException("no readable images to project")
    loss_module = build_loss(loss, D=ck.D, download=download, lpips_weights=lpips_weights,
                             log=lambda m: click.echo(m, err=True)).to(dev)  # fmt: skip
    # The summary's LPIPS column: the loss itself when it is LPIPS, else LPIPS-VGG if its weights are on disk.
    lpips_metric = loss_module if isinstance(loss_module, LPIPSLoss) else None
    if lpips_metric is None:
        try:
            lpips_metric = LPIPSLoss("vgg", weights=lpips_weights).to(dev)
        except WeightsUnavailable:
            lpips_metric = None
    config = ProjectConfig(space=space, steps=steps, lr=lr, noise_weight=noise_weight, optimize_noise=optimize_noise,
                           mse_weight=mse_weight, seed=seed, class_idx=class_idx, loss=loss_module.name)  # fmt: skip
    names = unique_names(targets.paths)
    meta = {"network": str(network), "source_tool": "latentlab project"}
    info = {"network": str(network), "space": space, "loss": loss_module.name, "steps": steps, "seed": seed,
            "skipped": [{"path": str(p), "reason": why} for p, why in targets.skipped]}  # fmt: skip
    rows: list[dict] = []
    chunks = iter_projections(G, targets.images, loss_module, config, batch_size=batch,
                              frames=frames if video else 0, progress=progress)  # fmt: skip
    for k, proj in enumerate(chunks):
        lo = k * batch
        rows += write_projection(outdir, G, names[lo : lo + len(proj)], targets.paths[lo : lo + len(proj)],
                                 targets.images[lo : lo + len(proj)], proj, meta, lpips_metric, video)  # fmt: skip
        write_summary(outdir, rows, info)
    mean_psnr = sum(r["psnr"] for r in rows) / len(rows)
    click.echo(f"projected {len(rows)} images into {space.upper()} ({loss_module.name}, {steps} steps), "
               f"mean PSNR {mean_psnr:.2f} dB; wrote {outdir}"
               + (f"; skipped {len(targets.skipped)}" if targets.skipped else ""))  # fmt: skip


@cli.command()
@click.argument("network")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(network, as_json):
    """Describe a checkpoint: format, config, parameter counts, num_ws and the W+ layer table.

    NETWORK may be a latentlab .safetensors file, an NVIDIA .pkl, a rosinality .pt or a registry name.
    For foreign files (and files converted from them) it also shows the conversion: the original
    constructor arguments, the options that were ignored and why, and where w_avg came from.

    Example:

        latentlab info ffhq.pkl
    """
    from .info import describe, format_description

    d = describe(network)
    click.echo(json.dumps(d, indent=2) if as_json else format_description(d))


@cli.command()
@click.argument("src")
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--what", default=None, help="Networks to convert, comma-separated from g_ema,g,d; default all present.")
@click.option("--to", "to", type=click.Choice(["latentlab", "rosinality"]), default=None,
              help="Output format; default from DST's extension (.safetensors = latentlab, .pt/.pth = rosinality).")
@click.option("--lr-mlp", type=float, default=0.01, show_default=True,
              help="Mapping learning-rate multiplier of a rosinality SRC (its files do not record it).")
@click.option("--force", is_flag=True, help="Export to rosinality even where its code would not match exactly.")
def convert(src, dst, what, to, lr_mlp, force):
    """Convert SRC (NVIDIA .pkl, rosinality .pt, latentlab .safetensors or a registry name) to DST.

    Nothing in SRC is executed: NVIDIA pickles are read with a restricted unpickler, rosinality files
    with torch.load(weights_only=True). The output is written atomically; on any error nothing is
    left at DST.

    Examples:

        latentlab convert network-snapshot-001000.pkl g.safetensors --what g_ema

        latentlab convert stylegan2-ffhq-config-f.pt ffhq.safetensors

        latentlab convert mymodel.safetensors mymodel.pt --to rosinality
    """
    from .io.foreign import convert as convert_file
    from .pretrained import resolve

    nets = None
    if what:
        names = {"g_ema": "G_ema", "g": "G", "d": "D"}
        parts = [w.strip().lower() for w in what.split(",") if w.strip()]
        bad = [p for p in parts if p not in names]
        if bad or not parts:
            bad_name = bad[0] if bad else what
            raise click.BadParameter(f"unknown network {bad_name!r}; use g_ema, g, d", param_hint="--what")
        nets = tuple(names[p] for p in parts)
    if to is None:
        to = "rosinality" if dst.suffix in (".pt", ".pth") else "latentlab"
    ck, warnings = convert_file(resolve(src), dst, what=nets, to=to, force=force, lr_mlp=lr_mlp)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    done = [n for n in ("G_ema", "G", "D") if getattr(ck, n) is not None]
    source = ck.meta.get("source", {}).get("format", "latentlab")
    click.echo(f"converted {', '.join(done)} from {source} to {to}: {dst}")


@cli.command()
@click.option("--preset", required=True, help="Preset name (see `latentlab presets`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random initialisation.")
@click.option("--with-d/--no-d", "with_d", default=True, show_default=True, help="Also store a discriminator.")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def init(preset, seed, with_d, out):
    """Write an untrained checkpoint (G, G_ema and D) built from a preset.

    Useful to inspect an architecture, to benchmark it, or to start training from a fixed initialisation.
    G_ema starts as a copy of G; w_avg starts at zero, as in training.

    Example:

        latentlab init --preset bench-a --seed 0 bench-a.safetensors
    """
    from .info import init_checkpoint

    init_checkpoint(preset, out, seed=seed, with_d=with_d)
    click.echo(f"wrote untrained {preset} checkpoint to {out}")


@cli.command()
def models():
    """List the registry's named models, and whether each is already in the local cache.

    Remote models are downloaded and converted on first use by any command that takes --network, or
    ahead of time with `latentlab download NAME`. The cache is $LATENTLAB_HOME (default ~/.cache/latentlab).

    Example:

        latentlab models
    """
    from .pretrained import MODELS, cached_path

    width = max((len(n) for n in MODELS), default=4)
    for name, m in sorted(MODELS.items()):
        path = cached_path(m)
        state = "cached" if path is not None and path.is_file() else ("remote" if m.url else "missing")
        click.echo(f"{name:<{width}}  {m.resolution:>4}px  {state:<7} {m.description}  [{m.license}]")


@cli.command()
@click.argument("name")
def download(name):
    """Download and convert a registry model (or an http(s) URL to a .pkl/.pt) into the local cache.

    The file is checked (size and SHA-256 where published), converted without executing anything in it,
    and kept as a native .safetensors; a failed or interrupted download leaves nothing behind.

    Example:

        latentlab download stylegan2-ffhq-1024
    """
    from .pretrained import resolve

    click.echo(f"{name}: {resolve(name)}")


@cli.command()
def presets():
    """List the named network presets.

    Example:

        latentlab presets
    """
    from .nn.config import PRESETS

    width = max(len(n) for n in PRESETS)
    for name, p in PRESETS.items():
        click.echo(f"{name:<{width}}  {p.description}")


@cli.command()
@click.option("--data", default=None, help="Folder or zip of images (e.g. from `latentlab dataset prepare`).")
@click.option("--outdir", required=True, help="Run folder: snapshots, training states, sample grids, stats.jsonl.")
@click.option("--preset", default=None, help="Network architecture (see `latentlab presets`).  [default: small-64]")
@click.option("--init", default=None, help="Start from this checkpoint's G, G_ema and D instead of a random "
              "initialisation (.safetensors, NVIDIA .pkl, rosinality .pt, registry name); fresh optimizers.")
@click.option("--kimg", type=float, default=None, help="Train until this many thousand images.  [default: 1000]")
@click.option("--batch", type=int, default=None, help="Global minibatch, split over processes.  [default: 16]")
@click.option("--gamma", type=float, default=None,
              help="R1 weight.  [default: NVIDIA's heuristic 0.0002 * resolution^2 / batch]")
@click.option("--seed", type=int, default=None, help="Seeds initialisation, latents, noise, data order.  [default: 0]")
@click.option("--snap", type=float, default=None, help="Snapshot every this many kimg.  [default: 10]")
@click.option("--keep", type=int, default=None, help="Keep the last K snapshots; 0 = all.  [default: 5]")
@click.option("--tick", type=float, default=None, help="One stats.jsonl row every this many kimg.  [default: 1]")
@click.option("--xflip/--no-xflip", default=None, help="Also train on mirrored images.  [default: no]")
@click.option("--crop", type=click.Choice(["none", "center"]), default=None,
              help="center = crop non-square images; none = skip them.  [default: none]")
@click.option("--cond/--no-cond", default=None, help="Condition on the dataset's labels.  [default: no]")
@click.option("--augment", type=click.Choice(["none", "ada", "fixed"]), default=None,
              help="Discriminator augmentation: ada = adaptive (for small datasets), fixed = constant --aug-p.  "
                   "[default: none]")
@click.option("--aug-p", type=float, default=None, help="Augmentation probability: ADA's start, or the fixed value.")
@click.option("--ada-target", type=float, default=None, help="ADA's target for E[sign(D(real))].  [default: 0.6]")
@click.option("--ema-kimg", "ema_kimg", type=float, default=None,
              help="G_ema half-life in kimg.  [default: batch * 10 / 32]")
@click.option("--lr", type=float, default=None, help="Adam learning rate of G and D.  [default: 0.0025]")
@click.option("--resume", default=None, help="auto = continue --outdir if it has a snapshot; or a run folder / "
              "training-state file. Options not given are taken from the saved run.")
@click.option("--grid", type=int, default=None, help="Samples per snapshot grid.  [default: 32]")
@click.option("--threads", type=int, default=None, help="CPU threads per process.  [default: PyTorch's]")
@click.option("--workers", type=int, default=None, help="Threads decoding images in parallel.  [default: 0]")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@_device_option
def train(data, outdir, preset, init, kimg, batch, gamma, seed, snap, keep, tick, xflip, crop, cond, augment, aug_p,
          ada_target, ema_kimg, lr, resume, grid, threads, workers, progress, device):
    """Train a StyleGAN2 generator on a folder or zip of images (lazy R1, path length, style mixing, G_ema).

    Every --snap kimg the run folder gets network-snapshot-KIMG.safetensors (G, G_ema, D),
    training-state-KIMG.pt and samples-KIMG.png; stats.jsonl gets a row every --tick kimg. Kill it at
    any time and continue with --resume auto: the result is the same as an uninterrupted run. For
    several processes, launch it with torchrun (gloo on CPU, nccl on GPU); --batch is the global batch.

    Examples:

    \b
        latentlab train --data faces.zip --outdir runs/faces --preset small-64 --kimg 500 --batch 16
        latentlab train --outdir runs/faces --resume auto
        torchrun --standalone --nproc_per_node 2 -m latentlab train --data faces.zip --outdir runs/f2
    """
    from .train import train as run_training
    from .train.loop import config_for_run

    lrs = {"lr_G": lr, "lr_D": lr} if lr is not None else {}
    config = config_for_run(dict(
        data=data, outdir=outdir, preset=preset, init=init, kimg=kimg, batch=batch, gamma=gamma, seed=seed, snap=snap,
        keep=keep, tick=tick, xflip=xflip, crop=crop, cond=cond, augment=augment, aug_p=aug_p, ada_target=ada_target,
        ema_kimg=ema_kimg, resume=resume, grid=grid,
        threads=threads, workers=workers, progress=progress, device=device, **lrs,
    ))  # fmt: skip
    run_training(config, log=click.echo)


@cli.group()
def dataset():
    """Prepare and inspect training datasets."""


@dataset.command("prepare")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resolution", type=int, required=True, help="Output side in pixels, a power of two.")
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
    from .train.data import prepare_dataset

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
@click.option("--count", type=click.IntRange(min=1), required=True, help="Number of images.")
@click.option("--resolution", type=click.Choice(["32", "64", "128", "256"]), default="64", show_default=True,
              help="Image side in pixels.")
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset seed (image i depends on seed and i).")
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
    from .data.synthfaces import write_dataset

    write_dataset(out, count, resolution=int(resolution), seed=seed, workers=workers, progress=progress)
    click.echo(f"wrote {count} SynthFaces at {resolution}x{resolution} to {out}")


@cli.group()
def classifier():
    """Train and evaluate the SynthFaces factor classifier."""


@classifier.command("train")
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="A zip from `latentlab dataset synth` (its labels are the factors).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .safetensors to write.")
@click.option("--epochs", type=int, default=4, show_default=True)
@click.option("--batch", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Adam learning rate (cosine decay).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--eval-count", type=int, default=2000, show_default=True,
              help="Fresh renders (dataset seed --eval-seed) for the held-out figures.")
@click.option("--eval-seed", type=int, default=1, show_default=True)
@click.option("--limit", type=int, default=None, help="Use only the first N images.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def classifier_train(data, out, epochs, batch, lr, seed, eval_count, eval_seed, limit, progress):
    """Train the factor classifier on SynthFaces and print its held-out accuracy / R² per factor.

    Example:

        latentlab classifier train --data synthfaces-64.zip --out pretrained/synthfaces-64-classifier.safetensors
    """
    from .data.classifier import train_classifier

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

    from .train.data import ImageDataset

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


@cli.command()
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Where to write the demo's files.")
@_device_option
def demo(outdir, device):
    """The main job on the embedded SynthFaces model: a report of what latentlab does with a generator.

    Renders a SynthFaces portrait the model never saw (the "photo"), samples, a truncation sweep and
    coarse/middle/fine style mixing, and writes report.html and strip.png to --outdir. Until the
    embedded model ships, it uses an untrained synthfaces-64 network (coloured noise) and says so.

    Example:

        latentlab demo --outdir demo-out
    """
    from .demo import run_demo

    for line in run_demo(outdir, device=device):
        click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


from .cli_edit import register as _register_edit_commands  # noqa: E402  (the commands need `cli` defined)

_register_edit_commands(cli)

from .cli_metrics import register as _register_metrics_command  # noqa: E402

_register_metrics_command(cli)
