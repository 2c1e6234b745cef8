"""Reconstruction quality: PSNR and SSIM between image batches (LPIPS lives in :mod:`latentlab.projection.losses`).

Both take float ``[N, C, H, W]`` images in [-1, 1] and return one value per image, ``[N]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB per image, on the [0, 255] scale of the uint8 pixels.

    ``10 log10(255^2 / MSE)``; identical images give ``inf``. Inputs in [-1, 1] are compared as
    ``(x + 1) * 127.5``; quantise them first (``from_uint8(to_uint8(x))``) to score saved files.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"psnr wants two [N, C, H, W] tensors of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    mse = ((x.double() - y.double()) * 127.5).square().mean(dim=(1, 2, 3))
    return (10 * torch.log10(255.0**2 / mse)).float()


def _gaussian_window(size: int, sigma: float, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5, per_channel: bool = False) -> Tensor:
    """Structural similarity (Wang et al. 2004) per image, with a Gaussian window and valid padding.

    Args:
        x, y: ``[N, C, H, W]`` in [-1, 1] (compared on the [0, 1] scale with the paper's K1=0.01, K2=0.03).
        window: Gaussian window side; shrunk to the image side for small images.
        sigma: the window's standard deviation.
        per_channel: return ``[N, C]`` instead of the channel mean ``[N]``.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim wants two [N, C, H, W] tensors of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    x, y = (x + 1) / 2, (y + 1) / 2
    size = min(window, x.shape[-1], x.shape[-2])
    g = _gaussian_window(size, sigma * size / window, x.device)
    c = x.shape[1]
    kh = g.reshape(1, 1, 1, size).expand(c, 1, 1, size)
    kv = g.reshape(1, 1, size, 1).expand(c, 1, size, 1)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kv, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    s = s.mean(dim=(2, 3))
    return s if per_channel else s.mean(dim=1)


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

    from ..generate import render_codes
    from ..io.latents import load_latents
    from ..projection.inputs import load_targets
    from ..projection.outputs import latents_noise, quality_rows

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
