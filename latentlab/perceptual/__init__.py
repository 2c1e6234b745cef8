"""Perceptual distances and the networks behind them, with their weights found and verified.

* :mod:`.lpips`: LPIPS v0.1 (VGG16 / AlexNet backbones through the ``lpips`` package), :func:`fetch_backbone`;
* :mod:`.inception`: the FID Inception-v3 and :func:`~.inception.fetch_weights`;
* :mod:`.pixels`: PSNR and SSIM; :mod:`.offline`: distances that need no downloaded weights (pixel MSE,
  multi-scale SSIM + L1, LPIPS's formula on a discriminator's or classifier's features);
* :func:`build_loss`: a distance by name, with the offline fallback.

Projection, tuning, encoders and metrics import this layer; it imports none of them (only the registry's
downloader below it).
"""

from .inception import FIDInception
from .losses import LOSSES, OFFLINE_DEFAULT, build_loss
from .lpips import LPIPS_MAX_SIDE, LPIPSLoss, backbone_path, fetch_backbone
from .offline import DiscriminatorFeatureLoss, MSELoss, MultiScaleSSIMLoss, stage_distance, unit_channels
from .pixels import psnr, ssim
from .weights import WeightsUnavailable

__all__ = [
    "LOSSES",
    "LPIPS_MAX_SIDE",
    "OFFLINE_DEFAULT",
    "DiscriminatorFeatureLoss",
    "FIDInception",
    "LPIPSLoss",
    "MSELoss",
    "MultiScaleSSIMLoss",
    "WeightsUnavailable",
    "backbone_path",
    "build_loss",
    "fetch_backbone",
    "psnr",
    "ssim",
    "stage_distance",
    "unit_channels",
]
