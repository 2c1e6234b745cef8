"""Pixel-level image similarity: PSNR and SSIM (Wang et al. 2004) between image batches.

Both take float ``[N, C, H, W]`` images in [-1, 1] and return one value per image, ``[N]``. They need no
weights; projection's offline losses, reconstruction scores and the metrics all use these two.
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
