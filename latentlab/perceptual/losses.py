"""Image distances by name, with the offline policy: :func:`build_loss`.

The offline policy (docs/projection.md): LPIPS needs torchvision's ImageNet backbone weights, which are
downloaded into ``$TORCH_HOME/hub/checkpoints`` on first use. When they are missing and cannot be fetched,
:func:`build_loss` with ``"auto"`` says so in one line and uses :data:`OFFLINE_DEFAULT`; asking for
``"lpips-vgg"`` by name raises :class:`WeightsUnavailable` naming the file and where to put it.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from .lpips import LPIPSLoss, fetch_backbone
from .offline import DiscriminatorFeatureLoss, MSELoss, MultiScaleSSIMLoss
from .weights import WeightsUnavailable

LOSSES = ("auto", "lpips-vgg", "lpips-alex", "mse", "ms-ssim", "d-features")
OFFLINE_DEFAULT = "ms-ssim"  # chosen by measurement: benchmarks/RESULTS.md, "Projection quality"


def build_loss(
    name: str = "auto",
    D: nn.Module | None = None,
    download: bool = True,
    lpips_weights: str | os.PathLike | None = None,
    log: Any = print,
) -> nn.Module:
    """The image distance called ``name`` (one of :data:`LOSSES`).

    Args:
        name: ``"auto"`` = LPIPS-VGG when its weights are on disk or downloadable, else :data:`OFFLINE_DEFAULT`
            after one line through ``log``; ``"lpips-vgg"``/``"lpips-alex"`` = LPIPS or an error;
            ``"mse"``, ``"ms-ssim"``: pixel losses; ``"d-features"``: features of ``D`` (required then).
        D: the discriminator, for ``"d-features"``.
        download: allow fetching the LPIPS backbone into the torch hub cache.
        lpips_weights: an explicit backbone file instead of the cache.
        log: where the one-line offline notice goes (``print`` by default; None = silent).
    Raises:
        WeightsUnavailable: LPIPS asked for by name, or ``lpips_weights`` given, and the backbone cannot be had.
        ValueError: an unknown name, or ``"d-features"`` without a discriminator.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown projection loss {name!r}; known: {', '.join(LOSSES)}")
    if name in ("auto", "lpips-vgg", "lpips-alex"):
        net = "alex" if name == "lpips-alex" else "vgg"
        try:
            weights = lpips_weights if lpips_weights is not None else fetch_backbone(net, download=download)
            return LPIPSLoss(net, weights=weights)
        except WeightsUnavailable as e:
            if name != "auto" or lpips_weights is not None:  # a file the user named is never silently replaced
                raise
            if log is not None:
                log(f"note: {e}; projecting with the offline loss {OFFLINE_DEFAULT!r} instead")
            name = OFFLINE_DEFAULT
    if name == "mse":
        return MSELoss()
    if name == "ms-ssim":
        return MultiScaleSSIMLoss()
    if D is None:
        raise ValueError("the 'd-features' loss needs the model's discriminator, and this checkpoint has none")
    return DiscriminatorFeatureLoss(D)
