"""Image distances for projection: LPIPS (VGG16 or AlexNet, via the ``lpips`` package) and the offline losses.

Every loss is an ``nn.Module`` with one calling convention, so that the projector treats them alike:

* ``loss.prepare(target)`` turns target images ``[N, C, H, W]`` in [-1, 1] into whatever the loss compares
  against (features, computed once per projection rather than once per step);
* ``loss(synth, prepared)`` returns the per-image distance ``[N]``. Each row depends only on its own image,
  which is what makes a batched projection equal to N separate ones.

The offline policy (docs/projection.md): LPIPS needs torchvision's ImageNet backbone weights, which are
downloaded into ``$TORCH_HOME/hub/checkpoints`` on first use. When they are missing and cannot be fetched,
:func:`build_loss` with ``"auto"`` says so in one line and uses :data:`OFFLINE_DEFAULT`; asking for
``"lpips-vgg"`` by name raises :class:`WeightsUnavailable` naming the file and where to put it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..metrics.reconstruction import ssim

# LPIPS backbones: torchvision's weight files (name, URL). The lpips package bundles its own linear layers.
BACKBONES = {
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
}
LOSSES = ("auto", "lpips-vgg", "lpips-alex", "mse", "ms-ssim", "d-features")
OFFLINE_DEFAULT = "ms-ssim"  # chosen by measurement: benchmarks/RESULTS.md, "Projection quality"
LPIPS_MAX_SIDE = 256  # larger images are area-downsampled to 256 before LPIPS, as NVIDIA's projector does


class WeightsUnavailable(RuntimeError):
    """A loss needs pretrained weights that are neither on disk nor downloadable."""


def backbone_path(net: str) -> Path:
    """Where torchvision keeps (and LPIPS looks for) the ImageNet weights of ``net`` ("vgg" or "alex")."""
    if net not in BACKBONES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; known: {', '.join(BACKBONES)}")
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONES[net][0]


def _missing_message(net: str, reason: str) -> str:
    name, url = BACKBONES[net]
    label = {"vgg": "VGG16", "alex": "AlexNet"}[net]
    return (f"LPIPS ({label}) needs torchvision's ImageNet weights {name} ({reason}); download {url} "
            f"and put it at {backbone_path(net)} (or set TORCH_HOME)")  # fmt: skip


def fetch_backbone(net: str, download: bool = True, timeout: float = 20.0) -> Path:
    """The backbone weight file of ``net``, downloaded into the torch hub cache when allowed and missing.

    The download goes to a temporary file that is renamed into place only when complete.

    Raises:
        WeightsUnavailable: the file is missing and ``download`` is False, or the download failed.
    """
    from ..pretrained import DownloadError
    from ..pretrained import download as fetch_url

    path = backbone_path(net)
    if path.is_file():
        return path
    if not download or os.environ.get("LATENTLAB_OFFLINE"):
        why = "not on disk; downloads are off" if download else "not on disk"
        raise WeightsUnavailable(_missing_message(net, why))
    try:
        fetch_url(BACKBONES[net][1], path, timeout=timeout)  # atomic: a failed download leaves nothing
    except DownloadError as e:
        raise WeightsUnavailable(_missing_message(net, f"not on disk and the download failed: {e}")) from None
    return path


def _area_to(x: Tensor, side: int) -> Tensor:
    return F.adaptive_avg_pool2d(x, side) if x.shape[-1] > side else x


class LPIPSLoss(nn.Module):
    """LPIPS v0.1 (Zhang et al. 2018) through the ``lpips`` package, with the target features cached.

    Images are RGB ``[N, 3, H, W]`` in [-1, 1]; sides above 256 are area-downsampled to 256 first.
    ``loss(synth, loss.prepare(target))`` equals ``lpips.LPIPS(synth, target)`` per image.
    """

    def __init__(self, net: str = "vgg", weights: str | os.PathLike | None = None, random_backbone: bool = False):
        """Args:
        net: "vgg" (VGG16, the StyleGAN2 projector's choice) or "alex".
        weights: the torchvision backbone file; None = :func:`backbone_path`. Ignored with ``random_backbone``.
        random_backbone: a randomly initialised backbone (tests, timing); the linear layers stay LPIPS's.
        """
        super().__init__()
        import lpips

        if net not in BACKBONES:
            raise ValueError(f"unknown LPIPS backbone {net!r}; known: {', '.join(BACKBONES)}")
        self.name = f"lpips-{net}" + ("-random" if random_backbone else "")
        with warnings.catch_warnings():  # torchvision's deprecation notice for pretrained=False
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).eval()
        if not random_backbone:
            path = Path(weights) if weights is not None else backbone_path(net)
            if not path.is_file():
                raise WeightsUnavailable(_missing_message(net, "not on disk"))
            self._load_backbone(path)
        self.model.requires_grad_(False)

    def _load_backbone(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  (any unreadable file gets the same message)
            raise WeightsUnavailable(f"{path}: not a readable torchvision weight file ({e})") from None
        # torchvision names the convolutions features.<i>; lpips splits the same modules into slices.
        target: dict[str, Tensor] = {}
        for slice_name, module in self.model.net.named_children():
            for idx, _ in module.named_children():
                for p in ("weight", "bias"):
                    key = f"features.{idx}.{p}"
                    if f"{idx}.{p}" in dict(module.named_parameters()):
                        if key not in state:
                            raise WeightsUnavailable(f"{path}: has no tensor {key!r}; is it the right backbone?")
                        target[f"{slice_name}.{idx}.{p}"] = state[key]
        try:
            self.model.net.load_state_dict(target, strict=True)
        except RuntimeError as e:
            raise WeightsUnavailable(f"{path}: does not fit the LPIPS backbone ({e})") from None

    def _features(self, x: Tensor) -> list[Tensor]:
        import lpips

        x = _area_to(x, LPIPS_MAX_SIDE)
        if x.shape[1] == 1:  # grey models: LPIPS sees the grey image as RGB
            x = x.expand(-1, 3, -1, -1)
        return [lpips.normalize_tensor(f) for f in self.model.net(self.model.scaling_layer(x))]

    def prepare(self, target: Tensor) -> list[Tensor]:
        """Target images ``[N, 3, H, W]`` in [-1, 1] -> their unit-normalised backbone features."""
        with torch.no_grad():
            return self._features(target)

    def forward(self, synth: Tensor, prepared: list[Tensor]) -> Tensor:
        """``[N]`` LPIPS distances between ``synth`` ``[N, 3, H, W]`` in [-1, 1] and the prepared targets."""
        total = 0
        for lin, f, t in zip(self.model.lins, self._features(synth), prepared, strict=True):
            total = total + lin((f - t).square()).mean(dim=(1, 2, 3))
        return total


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


def build_loss(
    name: str = "auto",
    D: nn.Module | None = None,
    download: bool = True,
    lpips_weights: str | os.PathLike | None = None,
    log: Any = print,
) -> nn.Module:
    """The projection loss called ``name`` (one of :data:`LOSSES`).

    Args:
        name: ``"auto"`` = LPIPS-VGG when its weights are on disk or downloadable, else :data:`OFFLINE_DEFAULT`
            after one line through ``log``; ``"lpips-vgg"``/``"lpips-alex"`` = LPIPS or an error;
            ``"mse"``, ``"ms-ssim"``: pixel losses; ``"d-features"``: features of ``D`` (required then).
        D: the discriminator, for ``"d-features"``.
        download: allow fetching the LPIPS backbone into the torch hub cache.
        lpips_weights: an explicit backbone file instead of the cache.
        log: where the one-line offline notice goes (``print`` by default; None = silent).
    Raises:
        WeightsUnavailable: LPIPS asked for by name and its backbone cannot be had.
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
            if name != "auto":
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
