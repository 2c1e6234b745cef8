"""The StyleGAN2 residual discriminator (Karras et al., CVPR 2020, Fig. 7c).

FromRGB at the input resolution, then one residual block per resolution down to 8x8 (two 3x3 convs, the
second down-sampling with the FIR filter, plus a 1x1 down-sampling skip, summed with gain sqrt(1/2)), then
the 4x4 epilogue: minibatch standard deviation, a 3x3 conv, a dense layer and the output layer. A
conditional discriminator maps labels to ``cmap`` and projects the output onto it (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .config import DiscriminatorConfig
from .layers import Conv2dLayer, FullyConnectedLayer, downsample2d, setup_filter
from .mapping import MappingNetwork


class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: ``[N, C_tmp, R, R] -> [N, C_out, R/2, R/2]``."""

    def __init__(
        self,
        in_channels: int,  # feature maps from the previous block; 0 = first block (reads the image)
        tmp_channels: int,  # feature maps inside this block
        out_channels: int,  # feature maps passed on
        resolution: int,  # this block's input resolution
        img_channels: int,  # image channels
        architecture: str = "resnet",  # "resnet", "skip" (FromRGB at every block) or "orig"
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # taps of the separable low-pass filter
        conv_clamp: float | None = None,  # clamp conv outputs; None = no clamping
    ):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation="lrelu",
                                       conv_clamp=conv_clamp)  # fmt: skip
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation="lrelu",
                                 conv_clamp=conv_clamp)  # fmt: skip
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation="lrelu", down=2,
                                 resample_filter=resample_filter, conv_clamp=conv_clamp)  # fmt: skip
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter)  # fmt: skip

    def forward(self, x: Tensor | None, img: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``x [N, C_tmp, R, R]`` (None in the first block) and the image ``[N, C, R, R]`` (used by the first
        block and the skip architecture) -> ``([N, C_out, R/2, R/2], image at R/2 or None)``."""
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv1(self.conv0(x))
        return x, img


def minibatch_stddev(x: Tensor, group_size: int | None, num_channels: int = 1) -> Tensor:
    """Append the minibatch standard deviation as ``num_channels`` extra feature maps (ProGAN, Sec. 3).

    The batch is split into groups of ``min(group_size, N)`` samples; as in NVIDIA's code the members of
    a group are strided (sample ``i`` is in group ``i % (N // G)``). ``N`` must be divisible by the group.

    Args:
        x: ``[N, C, H, W]``.
    Returns:
        ``[N, C + num_channels, H, W]``.
    """
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size is not None else n
    if n % g:
        raise ValueError(f"minibatch-stddev group size {g} does not divide the batch size {n}")
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: [mbstd] -> 3x3 conv -> dense -> output (-> label projection)."""

    def __init__(
        self,
        in_channels: int,  # feature maps at 4x4
        cmap_dim: int,  # width of the mapped label; 0 = unconditional (one logit)
        resolution: int,  # 4
        img_channels: int,  # image channels (for the "skip" architecture)
        architecture: str = "resnet",  # "resnet", "skip" or "orig"
        mbstd_group_size: int | None = 4,  # minibatch-stddev group; None = the whole batch
        mbstd_num_channels: int = 1,  # minibatch-stddev feature maps; 0 = disabled
        conv_clamp: float | None = None,  # clamp conv outputs; None = no clamping
    ):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution, self.architecture = (
            in_channels, cmap_dim, resolution, architecture,
        )  # fmt: skip
        self.mbstd_group_size, self.mbstd_num_channels = mbstd_group_size, mbstd_num_channels
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="lrelu")
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation="lrelu", conv_clamp=conv_clamp)  # fmt: skip
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: Tensor, img: Tensor | None, cmap: Tensor | None) -> Tensor:
        """``x [N, C, 4, 4]`` (+ ``cmap [N, cmap_dim]`` when conditional) -> logits ``[N, 1]``."""
        x = x.contiguous()
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """``img [N, C, R, R]`` in [-1, 1] (+ labels ``c [N, c_dim]``) -> logits ``[N, 1]`` (real > fake)."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        if not isinstance(config, DiscriminatorConfig):
            raise TypeError(f"Discriminator wants a DiscriminatorConfig, got {type(config).__name__}")
        self.config = c = config
        if c.arch == "stylegan1":  # StyleGAN v1's D_basic (nn/stylegan1.py), behind the same interface
            from .stylegan1 import make_discriminator_v1

            self.cmap_dim = 0
            make_discriminator_v1(self, c)
            return
        self.block_resolutions = c.block_resolutions
        cmap_dim = 0 if c.c_dim == 0 else (c.cmap_dim if c.cmap_dim is not None else c.channels(4))
        self.cmap_dim = cmap_dim
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                c.channels(res) if res < c.resolution else 0, c.channels(res), c.channels(res // 2),
                resolution=res, img_channels=c.img_channels, architecture=c.architecture,
                resample_filter=c.resample_filter, conv_clamp=c.conv_clamp,
            )  # fmt: skip
            setattr(self, f"b{res}", block)
        if c.c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c.c_dim, w_dim=cmap_dim, num_ws=None,
                                          num_layers=c.mapping_layers, w_avg_beta=None)  # fmt: skip
        self.b4 = DiscriminatorEpilogue(
            c.channels(4), cmap_dim=cmap_dim, resolution=4, img_channels=c.img_channels,
            architecture=c.architecture, mbstd_group_size=c.mbstd_group_size,
            mbstd_num_channels=c.mbstd_num_channels, conv_clamp=c.conv_clamp,
        )  # fmt: skip

    @property
    def c_dim(self) -> int:
        """Label size (0 = unconditional)."""
        return self.config.c_dim

    @property
    def img_resolution(self) -> int:
        """Input image side in pixels."""
        return self.config.resolution

    def forward(self, img: Tensor, c: Tensor | None = None, channels_last: bool | None = None,
                dtype: torch.dtype | None = None) -> Tensor:
        """Images ``[N, C, R, R]`` in [-1, 1] (and labels ``[N, c_dim]``) -> logits ``[N, 1]`` in ``img``'s type.

        ``dtype`` is the blocks' activation type (None = ``img``'s, normally float32; bfloat16 for training in
        it); the label mapping, the minibatch standard deviation and the 4x4 epilogue run in ``img``'s type.
        StyleGAN v1's D runs float32.

        ``N`` must be divisible by the minibatch-stddev group size (or smaller than it). ``channels_last``
        runs the convolutions on channels-last activations; None = on CPU. On two CPU cores this made a
        forward + backward pass 1.4x faster (benchmarks/RESULTS.md), but the double backward of R1 10%
        slower, so the R1 phase turns it off.
        """
        r, ch = self.config.resolution, self.config.img_channels
        if img.ndim != 4 or img.shape[1:] != (ch, r, r):
            raise ValueError(f"discriminator wants images [N, {ch}, {r}, {r}], got {tuple(img.shape)}")
        if self.config.arch == "stylegan1":
            from .stylegan1 import discriminator_v1_forward

            return discriminator_v1_forward(self, img.to(torch.float32))
        if channels_last is None:
            channels_last = img.device.type == "cpu"
        outer = img.dtype
        if channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        if dtype is not None:
            img = img.to(dtype)
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.config.c_dim > 0 else None
        return self.b4(x.to(outer), None if img is None else img.to(outer), cmap)
