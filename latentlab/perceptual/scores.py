"""Reconstruction scores of 8-bit images: PSNR, SSIM and (given a module) LPIPS, one row per image."""

from __future__ import annotations

import torch

from ..io.images import from_uint8, to_uint8
from .pixels import psnr, ssim


def quality_rows(
    targets: torch.Tensor, images: torch.Tensor, lpips_loss: torch.nn.Module | None = None
) -> list[dict[str, float | None]]:
    """Per-image PSNR (dB), SSIM and LPIPS (None without ``lpips_loss``) of 8-bit-quantised images."""
    t = from_uint8(to_uint8(targets))
    x = from_uint8(to_uint8(images))
    p, s = psnr(t, x), ssim(t, x)
    lp = None
    if lpips_loss is not None:
        with torch.no_grad():
            dev = next(lpips_loss.parameters()).device
            lp = lpips_loss(x.to(dev), lpips_loss.prepare(t.to(dev))).cpu()
    return [{"psnr": float(p[i]), "ssim": float(s[i]), "lpips": None if lp is None else float(lp[i])}
            for i in range(t.shape[0])]  # fmt: skip
