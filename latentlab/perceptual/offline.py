"""Image distances that need no downloaded weights: pixel MSE, multi-scale SSIM + L1, and LPIPS's formula on the
features of a network at hand (a discriminator's blocks, a classifier's stages).

Every distance here and in :mod:`.lpips` follows one calling convention, so that projection, tuning, encoders
and metrics treat them alike: ``prepare(target)`` once, then ``loss(synth, prepared) -> [N]``, each row
depending only on its own image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pixels import ssim


class MSELoss(nn.Module):
    """Mean squared pixel error per image, on [-1, 1] images."""

    name = "mse"

    def prepare(self, target: Tensor) -> Tensor:
        """The target itself."""
        return target.detach()

    def forward(self, synth: Tensor, prepared: Tensor) -> Tensor:
        """``[N]`` mean of ``(synth - target)^2`` over channels and pixels."""
        return (synth - prepared).square().mean(dim=(1, 2, 3))


class MultiScaleSSIMLoss(nn.Module):
    """Offline loss: ``alpha * mean_s(1 - SSIM_s) + (1 - alpha) * L1`` over a pyramid of 2x area downsamplings.

    The mix of Zhao et al. (2017, "Loss functions for image restoration with neural networks", alpha = 0.84)
    with the SSIM averaged over scales from the full image down to 16 pixels. It needs no weights.
    """

    name = "ms-ssim"

    def __init__(self, alpha: float = 0.84, min_side: int = 16):
        super().__init__()
        self.alpha, self.min_side = alpha, min_side

    def prepare(self, target: Tensor) -> Tensor:
        """The target itself."""
        return target.detach()

    def forward(self, synth: Tensor, prepared: Tensor) -> Tensor:
        """``[N]`` per-image loss, 0 for identical images."""
        l1 = (synth - prepared).abs().mean(dim=(1, 2, 3)) / 2  # on the [0, 1] scale, like the SSIM
        x, y, terms = synth, prepared, []
        while True:
            terms.append(1 - ssim(x, y))
            if x.shape[-1] // 2 < self.min_side:
                break
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        return self.alpha * torch.stack(terms).mean(dim=0) + (1 - self.alpha) * l1


def unit_channels(h: Tensor) -> Tensor:
    """Feature maps ``[N, C, H, W]`` scaled to unit length over channels at every pixel (as LPIPS does)."""
    return h / (h.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()


def stage_distance(feats_a: list[Tensor], feats_b: list[Tensor]) -> Tensor:
    """LPIPS's formula without learned weights: ``[N]`` sum over stages of the squared differences of
    :func:`unit_channels` features, summed over channels and averaged over pixels."""
    total = torch.zeros(feats_a[0].shape[0], device=feats_a[0].device)
    for a, b in zip(feats_a, feats_b, strict=True):
        total = total + (a - b).square().sum(dim=1).mean(dim=(1, 2))
    return total


class DiscriminatorFeatureLoss(nn.Module):
    """Offline loss from the generator's own discriminator: an LPIPS-like distance on D's block features.

    Each residual block's output is unit-normalised over channels (as LPIPS does); the squared differences are
    averaged over channels and pixels and summed over blocks, plus the pixel MSE. D is frozen and used without
    its minibatch-stddev epilogue, so each image's loss depends only on itself.
    """

    name = "d-features"

    def __init__(self, D: nn.Module, mse_weight: float = 1.0):
        super().__init__()
        self.D = D.eval().requires_grad_(False)
        self.mse_weight = mse_weight

    def _features(self, x: Tensor) -> list[Tensor]:
        feats, h, img = [], None, x
        for res in self.D.block_resolutions:
            h, img = getattr(self.D, f"b{res}")(h, img)
            feats.append(unit_channels(h))
        return feats

    def prepare(self, target: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The target and its normalised D features."""
        with torch.no_grad():
            return target.detach(), self._features(target)

    def forward(self, synth: Tensor, prepared: tuple[Tensor, list[Tensor]]) -> Tensor:
        """``[N]`` per-image distance."""
        target, tfeats = prepared
        return self.mse_weight * (synth - target).square().mean(dim=(1, 2, 3)) + stage_distance(
            self._features(synth), tfeats)
