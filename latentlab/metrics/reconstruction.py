"""Reconstruction quality of a projection folder: PSNR, SSIM and LPIPS recomputed from its files.

The distances themselves (:func:`psnr`, :func:`ssim`, LPIPS) live in :mod:`latentlab.perceptual`.
"""

from __future__ import annotations

import torch


def evaluate_projections(folder, G, lpips_loss: torch.nn.Module | None = None) -> dict:
    """Reconstruction quality of a ``latentlab project`` output folder, recomputed from the files.

    Every ``.npz`` whose meta names its source image is re-rendered with its noise maps and compared with
    that image, read again and cropped as projection reads it. Unlike ``summary.json``, this needs nothing
    but the codes and the images, so it also scores folders edited or copied since.

    Args:
        folder: the projection output folder.
        G: the generator the codes belong to.
        lpips_loss: an LPIPS module (``prepare``/``forward``) to add LPIPS; None = PSNR and SSIM only.
    Returns:
        ``{"rows": [{"name", "source", "psnr", "ssim", "lpips"}...], "psnr", "ssim", "lpips", "num"}``;
        the means are over images (LPIPS None without ``lpips_loss``).
    Raises:
        FileNotFoundError: no projection files in ``folder``, or a source image that is gone.
    """
    from pathlib import Path

    from ..data.targets import load_targets
    from ..io.latents import latents_noise, load_latents
    from ..perceptual.scores import quality_rows
    from ..render import render_codes

    folder = Path(folder)
    files = sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))
    rows = []
    for path in files:
        lat = load_latents(path)
        source = lat.meta.get("source")
        if not source:
            continue  # not a projection (e.g. an edit's codes)
        if not Path(source).is_file():
            raise FileNotFoundError(f"{path.name}: its source image {source!r} is gone")
        targets = load_targets([source], G.img_resolution, channels=G.img_channels)
        if targets.images.shape[0] != 1:
            raise ValueError(f"{path.name}: its source image {source!r} could not be read again")
        img = render_codes(G, lat.w[:1], latents_noise(G, lat))
        row = quality_rows(targets.images, img, lpips_loss)[0]
        rows.append({"name": path.stem, "source": source, **row})
    if not rows:
        raise FileNotFoundError(f"no projection codes (.npz with a source) in {str(folder)!r}")

    def mean(key: str):
        vals = [r[key] for r in rows if r[key] is not None]
        return float(sum(vals) / len(vals)) if vals else None

    return {"rows": rows, "psnr": mean("psnr"), "ssim": mean("ssim"), "lpips": mean("lpips"), "num": len(rows)}
