"""LPIPS (Zhang et al. 2018, v0.1) through the ``lpips`` package, with its backbone weights found and loaded here.

The ``lpips`` package bundles its linear heads; the VGG16/AlexNet backbones are torchvision's ImageNet
weight files, which torchvision downloads into ``$TORCH_HOME/hub/checkpoints`` on first use. latentlab
loads that file itself (torchvision's ``features.<i>`` names mapped onto lpips' slices), so the offline
policy decides about downloads, not torchvision, and a file the user names works.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..validate import why_missing
from .weights import WeightsUnavailable

# LPIPS backbones: torchvision's weight files (name, URL). The lpips package bundles its own linear layers.
BACKBONES = {
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
}
LPIPS_MAX_SIDE = 256  # larger images are area-downsampled to 256 before LPIPS, as NVIDIA's projector does


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
    from ..registry import DownloadError
    from ..registry import download as fetch_url

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
            if not path.is_file() and weights is not None:
                raise WeightsUnavailable(f"LPIPS backbone file {str(path)!r}: {why_missing(path)}")
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
