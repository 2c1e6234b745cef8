"""The FID Inception-v3 (TensorFlow's 2015-12-05 graph, ported to PyTorch), its weights found and checked here.

The network is torchvision's Inception-v3 with the FID graph's differences: 1008 classes, no auxiliary
head, average pools in the mixed blocks that ignore the zero padding (TensorFlow's), and a max pool in
the last block's pool branch. The weights are the file the common PyTorch implementation publishes
(``pt_inception-2015-12-05-6726825d.pth``). It is checked against the SHA-256 prefix in its name, as torch
hub does, and kept in the torch hub cache. Images are resized to 299 bilinearly.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .weights import WeightsUnavailable

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_NAME}"
SHA256_PREFIX = "6726825d"


def weights_path() -> Path:
    """Where the FID Inception weights are kept: the torch hub cache's ``checkpoints`` folder."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME


def _missing(reason: str) -> str:
    return (f"FID needs the Inception-v3 weights {WEIGHTS_NAME} ({reason}); download {WEIGHTS_URL} and put it at "
            f"{weights_path()} (or set TORCH_HOME)")  # fmt: skip


def check_sha256(path: Path, prefix: str = SHA256_PREFIX) -> None:
    """Raise :class:`WeightsUnavailable` unless the file's SHA-256 starts with ``prefix``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if not h.hexdigest().startswith(prefix):
        raise WeightsUnavailable(f"{path}: SHA-256 {h.hexdigest()[:16]}... does not start with {prefix}; "
                                 "not the FID Inception weights (or a damaged download)")  # fmt: skip


def fetch_weights(download: bool = True, timeout: float = 60.0) -> Path:
    """The FID Inception file: from the cache, or downloaded (atomically) and checked when allowed.

    The download goes through :func:`latentlab.registry.download` to a hidden name beside the target,
    and is renamed into place only once its SHA-256 prefix matches.
    """
    from ..registry import DownloadError
    from ..registry import download as fetch_url

    path = weights_path()
    if path.is_file():
        return path
    if not download or os.environ.get("LATENTLAB_OFFLINE"):
        raise WeightsUnavailable(_missing("not on disk; downloads are off" if download else "not on disk"))
    partial = path.with_name(f".{path.name}.download")
    try:
        fetch_url(WEIGHTS_URL, partial, timeout=timeout)
        check_sha256(partial)
        os.replace(partial, path)
    except DownloadError as e:
        raise WeightsUnavailable(_missing(f"not on disk and the download failed: {e}")) from None
    finally:
        partial.unlink(missing_ok=True)
    return path


def _tf_avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _tf_max_pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, 3, stride=1, padding=1)


class _FIDMixed(nn.Module):
    """A torchvision Inception A/C/E block evaluated with the FID graph's pool in its pool branch."""

    def __init__(self, block: nn.Module, pool):
        super().__init__()
        self.block, self.pool = block, pool

    def forward(self, x: Tensor) -> Tensor:
        b = self.block
        kind = type(b).__name__
        if kind == "InceptionA":
            outs = [b.branch1x1(x), b.branch5x5_2(b.branch5x5_1(x)),
                    b.branch3x3dbl_3(b.branch3x3dbl_2(b.branch3x3dbl_1(x)))]  # fmt: skip
        elif kind == "InceptionC":
            seven = b.branch7x7_3(b.branch7x7_2(b.branch7x7_1(x)))
            dbl = x
            for k in range(1, 6):
                dbl = getattr(b, f"branch7x7dbl_{k}")(dbl)
            outs = [b.branch1x1(x), seven, dbl]
        else:  # InceptionE: two split branches
            t = b.branch3x3_1(x)
            d = b.branch3x3dbl_2(b.branch3x3dbl_1(x))
            outs = [b.branch1x1(x), torch.cat([b.branch3x3_2a(t), b.branch3x3_2b(t)], 1),
                    torch.cat([b.branch3x3dbl_3a(d), b.branch3x3dbl_3b(d)], 1)]  # fmt: skip
        return torch.cat([*outs, b.branch_pool(self.pool(x))], 1)


class FIDInception(nn.Module):
    """``images [N, 3, H, W]`` in [-1, 1] -> ``[N, 2048]`` pool features of the FID Inception-v3."""

    def __init__(self, weights: str | os.PathLike | None = None, verify: bool = True, random: bool = False):
        """Args:
        weights: the ``.pth`` file; None = the torch hub cache (see :func:`fetch_weights`).
        verify: check the file's SHA-256 prefix (the published one).
        random: random weights (tests and timing only; the features mean nothing).
        """
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        state = None
        if not random:
            path = Path(weights) if weights is not None else weights_path()
            if not path.is_file():
                raise WeightsUnavailable(_missing("not on disk"))
            if verify:
                check_sha256(path)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001  (any unreadable file gets the same message)
                raise WeightsUnavailable(f"{path}: not a readable weight file ({e})") from None
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as e:
                raise WeightsUnavailable(f"{path}: does not fit the FID Inception-v3 ({e})") from None
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7b"):
            setattr(net, name, _FIDMixed(getattr(net, name), _tf_avg_pool))
        net.Mixed_7c = _FIDMixed(net.Mixed_7c, _tf_max_pool)
        self.layers = nn.Sequential(
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(3, stride=2),
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(3, stride=2),
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
            net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.name = "inception-v3-fid" + ("-random" if random else "")
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"FID wants images [N, 3, H, W] in [-1, 1], got {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers(x)
