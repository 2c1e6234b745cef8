"""``latentlab encoder train|info``: encoders from images to W+ codes (:mod:`latentlab.projection.encoder`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..projection.encoder_train import E4E, LOSS_CHOICES, EncoderTrainConfig
from ._common import SEED, Finite, device_option, join_world, precision_option

_DEFAULT = EncoderTrainConfig()


@click.group("encoder")
def encoder() -> None:
    """Train and inspect encoders (images -> W+ codes in one pass; pSp / e4e)."""


@encoder.command("train")
@click.option("--network", required=True, help="Registry name or checkpoint of the generator to invert.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The encoder file (.safetensors); <stem>.state.pt and <stem>.stats.jsonl are written beside it.")
@click.option("--data", default=None, help="Also train on these real images (folder or zip, as `latentlab train` "
              "reads them; no latent loss for them).")
@click.option("--steps", type=click.IntRange(1, 10**9), default=_DEFAULT.steps, show_default=True,
              help="Optimizer steps.")
@click.option("--batch", type=click.IntRange(1, 65536), default=_DEFAULT.batch, show_default=True,
              help="Images per step.")
@click.option("--lr", type=Finite(0, 1, low_open=True), default=_DEFAULT.lr, show_default=True,
              help="Adam learning rate.")
@click.option("--lr-rampdown", type=Finite(0, 1), default=_DEFAULT.lr_rampdown, show_default=True,
              help="The last share of the steps, over which the rate falls to 0 (cosine).")
@click.option("--loss", type=click.Choice(LOSS_CHOICES), default=_DEFAULT.loss, show_default=True,
              help="Perceptual distance between input and rendering (mse: pixels only).")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The LPIPS backbone file instead of the search (latentlab weights).")
@click.option("--lpips-weight", type=Finite(0), default=_DEFAULT.lpips_weight, show_default=True,
              help="pSp's lpips_lambda.")
@click.option("--l2-weight", type=Finite(0), default=_DEFAULT.l2_weight, show_default=True, help="pSp's l2_lambda.")
@click.option("--latent-weight", type=Finite(0), default=_DEFAULT.latent_weight, show_default=True,
              help="Weight of the code error on generated samples (their true code is known).")
@click.option("--psi-min", type=Finite(0, 1), default=_DEFAULT.psi_min, show_default=True,
              help="Generated samples use a truncation psi drawn from [psi-min, 1].")
@click.option("--const-noise", type=Finite(0, 1), default=_DEFAULT.const_noise, show_default=True,
              help="Share of generated samples rendered with G's constant noise (the rest: random noise).")
@click.option("--mixing", type=Finite(0, 1), default=_DEFAULT.mixing, show_default=True,
              help="Share of generated samples that are style-mixed.")
@click.option("--real-fraction", type=Finite(0, 1), default=_DEFAULT.real_fraction, show_default=True,
              help="With --data: the share of each batch that is real.")
@click.option("--e4e", is_flag=True, help=f"e4e's editability terms with latentlab's defaults: {E4E}.")
@click.option("--delta-weight", type=Finite(0), default=None, help="e4e's delta regularization weight.  [default: 0; "
              "--e4e: 2e-4]")
@click.option("--progressive-every", type=click.IntRange(0, 10**9), default=None,
              help="e4e: one more W+ row gets its delta every N steps (0 = all at once).  [default: 0; --e4e: 200]")
@click.option("--progressive-start", type=click.IntRange(0, 10**9), default=None,
              help="e4e: steps with W codes only, before the first delta.  [default: 0; --e4e: 1000]")
@click.option("--latent-d-weight", type=Finite(0), default=None,
              help="e4e's latent discriminator weight.  [default: 0; --e4e: 0.1]")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the encoder, every batch and the "
              "held-out set.")
@click.option("--snap", type=click.IntRange(1, 10**9), default=_DEFAULT.snap, show_default=True,
              help="Steps between snapshots (encoder file, state, held-out figures).")
@click.option("--resume", is_flag=True, help="Continue the training whose state is beside --out (same settings; "
              "--steps may grow).")
@click.option("--init", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Start from this encoder's weights (fine-tuning, e.g. on new --data); same generator and size.")
@click.option("--iterations", type=click.IntRange(0, 100), default=_DEFAULT.iterations, show_default=True,
              help="An iterative encoder (ReStyle): corrections of each batch's codes after the first pass, each "
                   "reading the target beside the rendering; --init a single-pass encoder to start from it.")
@click.option("--threads", type=click.IntRange(1, 4096), default=None, help="CPU threads.  [default: torch's]")
@precision_option("The synthesis' and the encoder's arithmetic while training (bf16: CPUs with AVX-512 BF16 or "
                  "AMX, and CUDA; fp16: CUDA). Weights, optimizer, losses and the held-out figures stay fp32.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@device_option
def train_cmd(network, out, data, steps, batch, lr, lr_rampdown, loss, lpips_weights, lpips_weight, l2_weight,
              latent_weight, psi_min, const_noise, mixing, real_fraction, e4e, delta_weight, progressive_every,
              progressive_start, latent_d_weight, seed, snap, resume, init, iterations, threads, precision,
              progress, device):  # fmt: skip
    """Train an encoder for a generator: images -> W+ codes in one forward pass (pSp / e4e).

    It learns from the generator's own samples (z seeded per step, truncation and noise varied):
    the image loss (MSE + LPIPS, pSp's weights) between the input and the rendering of its code,
    plus the code error, since a sample's true code is known. --data adds real images (image loss
    only). --e4e adds e4e's editability terms (codes kept near one W code, rows trained one at a
    time, a latent discriminator). --iterations K trains ReStyle's iterative encoder, which reads
    the target beside the rendering of its code and corrects it K times. Every --snap steps it
    writes --out, its state and held-out figures; kill it at any time and continue with --resume:
    the result is the same as an uninterrupted run.
    The file records the generator's fingerprint; using it with another model is an error. Under
    torchrun every process encodes its share of each batch and the gradients are averaged (--batch is
    the whole batch; docs/scaling.md).

    Examples:

    \b
        latentlab encoder train --network synthfaces-64 --out enc.safetensors --steps 6000
        latentlab encoder train --network synthfaces-64 --out enc.safetensors --steps 6000 --resume
        latentlab encoder train --network G.pkl --out enc.safetensors --data photos.zip --e4e
        latentlab encoder train --network synthfaces-64 --out enc.safetensors --precision bf16
        torchrun --nproc_per_node 4 -m latentlab encoder train --network G.pkl --out enc.safetensors --batch 32
        latentlab encoder train --network synthfaces-64 --init pretrained/synthfaces-64-encoder.safetensors \\
            --data crops.zip --steps 2000 --out tuned-enc.safetensors      # fine-tune an encoder
        latentlab encoder train --network synthfaces-64 --init pretrained/synthfaces-64-encoder.safetensors \\
            --iterations 2 --steps 2000 --lr 1e-4 --out restyle.safetensors  # an iterative encoder from it
        latentlab project photos/ --network synthfaces-64 --init encoder --encoder enc.safetensors --outdir p/
    """
    import torch

    from ..data.datasets import ImageDataset
    from ..projection.encoder_train import build_distance, train_encoder
    from ..registry import load_generator

    e4e_values = E4E if e4e else {}
    picked = {"delta_weight": delta_weight, "progressive_every": progressive_every,
              "progressive_start": progressive_start, "latent_d_weight": latent_d_weight}  # fmt: skip
    terms = {k: (v if v is not None else e4e_values.get(k, getattr(_DEFAULT, k))) for k, v in picked.items()}
    config = EncoderTrainConfig(steps=steps, batch=batch, lr=lr, lr_rampdown=lr_rampdown, loss=loss,
                                lpips_weight=lpips_weight, l2_weight=l2_weight, latent_weight=latent_weight,
                                psi_min=psi_min, const_noise=const_noise, mixing=mixing, real_fraction=real_fraction,
                                seed=seed, snap=snap, precision=precision, iterations=iterations,
                                **terms)  # fmt: skip
    if threads is not None:
        torch.set_num_threads(threads)
    world, dev = join_world(device, "encoder train")
    G = load_generator(network, device=dev)
    dataset = None
    if data is not None:
        dataset = ImageDataset(data, resolution=G.img_resolution, channels=G.img_channels, crop="center",
                               use_labels=False)  # fmt: skip
    distance = None
    if lpips_weights is not None and loss != "mse":
        from ..perceptual import LPIPSLoss

        distance = LPIPSLoss(loss.split("-", 1)[1], weights=lpips_weights,
                             min_side=64 if G.img_resolution < 64 else None)  # fmt: skip
    elif loss != "mse":
        distance = build_distance(loss, G.img_resolution)
    trainer = train_encoder(G, out, config, network=str(network), dataset=dataset, resume=resume,
                            progress=progress, distance=distance, log=click.echo, init=init, world=world)  # fmt: skip
    if not world.is_main:
        return
    last = trainer.history[-1] if trainer.history else {}
    click.echo(f"trained {trainer.step_idx} steps; held-out: w error {last.get('w_error', float('nan')):.4f} w_std, "
               f"PSNR {last.get('psnr', float('nan')):.2f} dB; wrote {out}")  # fmt: skip


@encoder.command("info")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info_cmd(path, as_json):
    """Show an encoder file: its generator, size, training and held-out figures.

    Example:

    \b
        latentlab encoder info pretrained/synthfaces-64-encoder.safetensors
    """
    from ..projection.encoder import read_encoder_meta

    info = read_encoder_meta(path)
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    c, g, m = info["config"], info["generator"], info["meta"]
    click.echo(f"encoder for {g.get('network') or '?'} (fingerprint {g.get('fingerprint', '?')})")
    click.echo(f"  input {c['resolution']} px x {c['img_channels']} channels -> W+ {c['num_ws']} x {c['w_dim']}")
    if c.get("iterations"):
        click.echo(f"  iterative (ReStyle): {c['iterations']} corrections after the first pass by default")
    if m.get("step") is not None:
        click.echo(f"  trained {m['step']} steps ({m.get('images', '?')} images)"
                   + (f", real images from {m['data']}" if m.get("data") else "")
                   + (f", fine-tuned from the encoder with SHA-256 {m['init'][:16]}..." if m.get("init") else
                      ""))  # fmt: skip
    h = m.get("held_out") or {}
    if h:
        click.echo(f"  held-out generated images: w error {h['w_error']:.4f} w_std, PSNR {h['psnr']:.2f} dB, "
                   f"LPIPS {h['lpips']:.4f}")  # fmt: skip
