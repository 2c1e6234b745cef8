"""The StyleGAN2 synthesis network ``ws -> image`` (Karras et al., CVPR 2020, Fig. 2d and 7).

A learned 4x4 constant goes through one block per resolution (4, 8, ..., R). Every 3x3 convolution is
modulated by its own W code through a learned affine ("style"), demodulated, gets per-pixel noise with a
learned strength, a bias and leaky ReLU. The "skip" architecture sums up-sampled RGB outputs of every block.

W+ layout: code ``i`` drives conv layer ``i`` (``b4.conv1``, ``b8.conv0``, ``b8.conv1``, ...), so it acts at
resolution ``2 ** (i // 2 + 2)``; the ToRGB of a block reads the code of the next block's first conv, and the
last ToRGB reads the last code. ``num_ws = 2 * log2(R) - 2``.

Speed on CPU: activations are kept channels-last, which the oneDNN convolutions and the depthwise FIR blur
run several times faster than NCHW (see benchmarks/RESULTS.md); the output is returned as contiguous NCHW.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import (
    LRELU_GAIN,
    LRELU_SLOPE,
    Conv2dLayer,
    FullyConnectedLayer,
    modulated_conv2d,
    setup_filter,
    upsample2d,
)

NOISE_MODES = ("random", "const", "none")


def noise_map(resolution: int, batch: int, device: torch.device, noise_mode: str, noise: Tensor | None,
              generator: torch.Generator | None, const: Tensor) -> Tensor | None:  # fmt: skip
    """The unit noise a layer of ``resolution`` adds before its strength: ``[N or 1, 1, R, R]``, or None.

    ``noise`` (``[N or 1, 1, R, R]`` or ``[R, R]``) wins over ``noise_mode``: ``"random"`` (N(0, 1), from
    ``generator`` if given), ``"const"`` (the layer's stored map ``const``) or ``"none"``.
    """
    r = resolution
    if noise is not None:
        ok = noise.ndim == 2 or (noise.ndim == 4 and noise.shape[0] in (1, batch) and noise.shape[1] == 1)
        if not ok or noise.shape[-2:] != (r, r):
            raise ValueError(f"noise for a {r}x{r} layer must be [{batch} or 1, 1, {r}, {r}] or [{r}, {r}], "
                             f"got {tuple(noise.shape)}")  # fmt: skip
        return noise.reshape(-1, 1, r, r)
    if noise_mode == "random":
        return torch.randn([batch, 1, r, r], device=device, generator=generator)
    if noise_mode == "const":
        return const.reshape(1, 1, r, r)
    if noise_mode == "none":
        return None
    raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


def check_synthesis_args(ws: Tensor, num_ws: int, w_dim: int, noise_mode: str, noise: Sequence | None,
                         num_noise: int) -> None:  # fmt: skip
    """Refuse, with what was expected, ``ws`` not ``[N, num_ws, w_dim]``, an unknown ``noise_mode`` or a
    ``noise`` list whose length is not ``num_noise`` (either family's synthesis)."""
    if ws.ndim != 3 or ws.shape[1] != num_ws or ws.shape[2] != w_dim:
        raise ValueError(f"synthesis wants ws of shape [N, {num_ws}, {w_dim}], got {tuple(ws.shape)}")
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise is not None and len(noise) != num_noise:
        raise ValueError(f"noise must list {num_noise} per-layer maps (or None), got {len(noise)}")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution + noise + bias + leaky ReLU, optionally up-sampling by 2."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        w_dim: int,  # size of the W code that drives the style affine
        resolution: int,  # output resolution (the noise map's side)
        kernel_size: int = 3,  # convolution kernel side
        up: int = 1,  # 2 = up-sample by 2 with the FIR filter
        use_noise: bool = True,  # False = no noise input (no noise_const / noise_strength)
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # taps of the separable low-pass filter
        conv_clamp: float | None = None,  # clamp outputs to +-conv_clamp; None = no clamping
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up, self.use_noise, self.conv_clamp = resolution, up, use_noise, conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = LRELU_GAIN
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(
        self,
        x: Tensor,
        w: Tensor,
        noise_mode: str = "random",
        fused: bool = False,
        gain: float = 1.0,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``x [N, I, r, r]``, ``w [N, w_dim]`` -> ``[N, O, R, R]`` (``r = R / up``).

        ``noise`` (``[N or 1, 1, R, R]`` or ``[R, R]``), when given, replaces ``noise_const`` whatever the
        ``noise_mode``; it is scaled by the learned strength like the built-in noise.
        """
        styles = self.affine(w)
        n = self.scaled_noise(x.shape[0], x.device, noise_mode, noise, generator)
        x = modulated_conv2d(
            x, self.weight, styles, up=self.up, padding=self.padding, resample_filter=self.resample_filter,
            fused=fused, noise=n, bias=self.bias, gain=self.act_gain * gain,
        )  # fmt: skip
        # In place: x is a fresh tensor. The activation gain was applied before the activation, which
        # is exact because leaky ReLU is positively homogeneous.
        x = F.leaky_relu_(x, LRELU_SLOPE)
        if self.conv_clamp is not None:  # not in place: leaky ReLU's backward reads its output
            x = x.clamp(-self.conv_clamp * gain, self.conv_clamp * gain)
        return x

    def scaled_noise(
        self,
        batch: int,
        device: torch.device,
        noise_mode: str,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor | None:
        """The noise this layer adds, ``[N or 1, 1, R, R]`` already times ``noise_strength``, or None."""
        if not self.use_noise:
            return None
        n = noise_map(self.resolution, batch, device, noise_mode, noise, generator, self.noise_const)
        return None if n is None else n * self.noise_strength


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to RGB, without demodulation."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # image channels
        w_dim: int,  # size of the W code that drives the style affine
        kernel_size: int = 1,  # convolution kernel side
        conv_clamp: float | None = None,  # clamp outputs to +-conv_clamp; None = no clamping
    ):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2

    def forward(self, x: Tensor, w: Tensor, fused: bool = False) -> Tensor:
        """``x [N, C, R, R]``, ``w [N, w_dim]`` -> RGB contribution ``[N, img_channels, R, R]``."""
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, padding=self.padding, fused=fused,
                             bias=self.bias)  # fmt: skip
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisBlock(nn.Module):
    """One resolution: [const | up-conv] -> conv -> ToRGB, accumulating the RGB image (skip architecture)."""

    def __init__(
        self,
        in_channels: int,  # feature maps from the previous block; 0 = first block (learned constant)
        out_channels: int,  # feature maps of this block
        w_dim: int,  # size of the W codes
        resolution: int,  # this block's resolution
        img_channels: int,  # image channels
        is_last: bool,  # the last block always has a ToRGB
        architecture: str = "skip",  # "skip", "orig" (ToRGB only at the end) or "resnet"
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # taps of the separable low-pass filter
        conv_clamp: float | None = None,  # clamp conv outputs; None = no clamping
        use_noise: bool = True,  # noise inputs on the conv layers
    ):
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.is_last, self.architecture = is_last, architecture
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.num_conv = 0
        self.num_torgb = 0
        layer_kwargs = dict(w_dim=w_dim, resolution=resolution, resample_filter=resample_filter,
                            conv_clamp=conv_clamp, use_noise=use_noise)  # fmt: skip
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)  # fmt: skip


    def forward(
        self,
        x: Tensor | None,
        img: Tensor | None,
        ws: Tensor,
        noise_mode: str = "random",
        fused: bool = False,
        noise: Sequence[Tensor | None] | None = None,
        generator: torch.Generator | None = None,
        memory_format: torch.memory_format = torch.contiguous_format,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, Tensor | None]:
        """``ws [N, num_conv + num_torgb, w_dim]``; returns the features (in ``dtype``, the first block's
        constant is cast to it) and the RGB image so far (float32 whatever ``dtype``)."""
        w_iter = iter(ws.unbind(dim=1))
        noise_iter = iter(noise if noise is not None else [None] * self.num_conv)
        kw = dict(noise_mode=noise_mode, fused=fused, generator=generator)
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = x.contiguous(memory_format=memory_format)
            x = self.conv1(x, next(w_iter), noise=next(noise_iter), **kw)
        elif self.architecture == "resnet":
            x = x.to(dtype=dtype, memory_format=memory_format)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise=next(noise_iter), **kw)
            x = self.conv1(x, next(w_iter), noise=next(noise_iter), gain=math.sqrt(0.5), **kw)
            x = y.add_(x)
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
            x = self.conv0(x, next(w_iter), noise=next(noise_iter), **kw)
            x = self.conv1(x, next(w_iter), noise=next(noise_iter), **kw)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused=fused).float()  # the image accumulates in float32
            img = img.add_(y) if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """``ws [N, num_ws, w_dim]`` -> images ``[N, img_channels, R, R]`` (roughly in [-1, 1])."""

    def __init__(
        self,
        w_dim: int,  # size of the W codes
        img_resolution: int,  # output side, a power of two >= 4
        img_channels: int,  # 3 = RGB
        channel_base: int = 32768,  # channels at resolution r are min(channel_base // r, channel_max)
        channel_max: int = 512,  # upper bound on channels
        architecture: str = "skip",  # "skip", "orig" or "resnet"
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # taps of the separable low-pass filter
        conv_clamp: float | None = None,  # clamp conv outputs; None = no clamping
        use_noise: bool = True,  # noise inputs on the conv layers
        num_fp16_res: int = 0,  # NVIDIA's mixed precision: the N highest resolutions run in fp16 under dtype=fp16
    ):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        # NVIDIA's rule (never below 8x8): the blocks at or above this side are the fp16 ones
        self.fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8) if num_fp16_res else None
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=res == img_resolution, architecture=architecture,
                resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise,
            )  # fmt: skip
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        """The blocks from 4x4 up to the output resolution."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def noise_layers(self) -> list[tuple[str, SynthesisLayer]]:
        """The conv layers in W+ order as ``(name, layer)``, e.g. ``("b8.conv0", layer)``; ws[i] drives layer i."""
        return [(f"b{block.resolution}.{name}", getattr(block, name))
                for block in self.blocks() for name in ("conv0", "conv1") if hasattr(block, name)]  # fmt: skip

    def forward(
        self,
        ws: Tensor,
        noise_mode: str = "random",
        fused: bool | None = None,
        noise: Sequence[Tensor | None] | None = None,
        generator: torch.Generator | None = None,
        channels_last: bool | None = None,
        until: int | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> Tensor:
        """Render W+ codes.

        Args:
            ws: ``[N, num_ws, w_dim]``; ``ws[:, i]`` drives conv layer ``i`` (see :meth:`noise_layers`).
            noise_mode: ``"random"`` (fresh noise, from ``generator`` if given), ``"const"`` (the stored
                per-layer maps) or ``"none"``.
            fused: grouped-convolution modulation; None = the faster form for this call, given the batch,
                the device and whether autograd records (see :func:`use_fused_modconv`).
            noise: optional per-layer noise maps (``num_ws - 1`` entries, None = use ``noise_mode``),
                each ``[N or 1, 1, r, r]``; they replace ``noise_const`` and are scaled by the strengths.
            generator: random source for ``noise_mode="random"``, on the device of ``ws``.
            channels_last: run the activations channels-last; None = on CPU only (measured faster there).
            until: stop after the block of this resolution and return the image summed so far, ``[N, C, r, r]``
                (the skip architecture's partial sum: a cheap, blurred preview; the editor shows it while a
                slider is dragged). None = the full image. Only for the skip architecture.
            dtype: the activations' type: None or ``torch.float32`` (the default), ``torch.bfloat16`` (CPUs
                with AVX-512 BF16 or AMX, and CUDA) or ``torch.float16`` (CUDA only); or its name ``"fp32"``,
                ``"bf16"``, ``"fp16"``. The convolutions and activations run in it; the mapping, the styles,
                the demodulation coefficients and the RGB image stay float32 (docs/performance.md has the
                error and the speed). bfloat16 has float32's range and runs every block; float16 follows
                NVIDIA's scheme: only the ``num_fp16_res`` highest resolutions (at least 8x8) run in it, the
                modulated convolutions pre-normalise their weights and styles, and a model without fp16
                layers (``num_fp16_res=0``: trained in float32, its activations not clamped) is refused.
        Returns:
            ``[N, img_channels, R, R]`` float32, contiguous NCHW; values roughly in [-1, 1].
        """
        check_synthesis_args(ws, self.num_ws, self.w_dim, noise_mode, noise, self.num_ws - 1)
        if until is not None:
            sides = [b.resolution for b in self.blocks()]
            if until not in sides:
                raise ValueError(f"until must be one of the block resolutions {sides}, got {until!r:.40}")
            if self.blocks()[-1].architecture != "skip" and until != sides[-1]:
                raise ValueError("until= needs the skip architecture (only it has an image before the last block)")
        ws = ws.to(torch.float32)
        block_dtypes = self.block_dtypes(activation_dtype(dtype, ws.device))
        if fused is None:
            needs_grad = torch.is_grad_enabled() and (
                ws.requires_grad or any(p.requires_grad for p in self.parameters())
            )
            fused = use_fused_modconv(ws.shape[0], ws.device, needs_grad)
        if channels_last is None:
            channels_last = ws.device.type == "cpu"
        memory_format = torch.channels_last if channels_last else torch.contiguous_format

        x = img = None
        w_idx = n_idx = 0
        for block in self.blocks():
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            block_noise = None if noise is None else noise[n_idx : n_idx + block.num_conv]
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused=fused, noise=block_noise,
                           generator=generator, memory_format=memory_format,
                           dtype=block_dtypes[block.resolution])  # fmt: skip
            w_idx += block.num_conv
            n_idx += block.num_conv
            if block.resolution == until:
                break
        return img.contiguous()

    def resolve_dtype(self, dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
        """The activation dtype :meth:`forward` would run for ``dtype`` (as there) on ``device``; raises the
        ValueError it would (fp16 off CUDA, or on a model without fp16 layers) before any work is done."""
        dtype = activation_dtype(dtype, device)
        self.block_dtypes(dtype)
        return dtype

    def block_dtypes(self, dtype: torch.dtype) -> dict[int, torch.dtype]:
        """``{resolution: activation dtype}`` of each block when synthesis is asked for ``dtype``: every block
        in float32 or bfloat16; for float16, the blocks at or above :attr:`fp16_resolution` (NVIDIA's
        ``num_fp16_res``) and float32 below. Raises ValueError for float16 on a model with no fp16 layers."""
        if dtype != torch.float16:
            return {res: dtype for res in self.block_resolutions}
        if self.fp16_resolution is None:
            raise ValueError("float16 synthesis needs a model trained with fp16 layers (num_fp16_res > 0, as "
                             "NVIDIA's configs with conv_clamp); this one has num_fp16_res=0, so its activations "
                             "may overflow fp16's range: use bf16 (float32's range) instead")  # fmt: skip
        return {res: torch.float16 if res >= self.fp16_resolution else torch.float32
                for res in self.block_resolutions}  # fmt: skip


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def activation_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """The synthesis' activation type for ``dtype`` (a torch dtype, ``"fp32"``, ``"bf16"``, ``"fp16"`` or None =
    float32) on ``device``; float16 only on CUDA (CPU kernels for it are slow or missing)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        if dtype not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {dtype!r:.40}")
        dtype = PRECISIONS[dtype]
    if dtype not in PRECISIONS.values():
        raise ValueError(f"synthesis dtype must be float32, bfloat16 or float16, got {dtype!r:.40}")
    if dtype == torch.float16 and device.type != "cuda":
        raise ValueError(f"float16 synthesis needs a CUDA device (got {device.type}); use bfloat16 on CPUs")
    return dtype


def use_fused_modconv(batch: int, device: torch.device, needs_grad: bool) -> bool:
    """Which modulated-convolution form is faster for this call (measured on CPU, see docs/performance.md).

    * When autograd records (projection, training), non-fused: per-sample grouped weights make the backward
      pass slow. On CPU this was 1.6x faster at batch 1 and 1.9x at batch 8 (forward + backward to ws).
    * Inference on CPU: fused only for a batch of one, where it is one ordinary convolution with the bias
      folded in (a tie at 64x64, 1.25x faster at 1024x1024); larger batches run non-fused, 1.5-1.75x faster
      with channels-last activations.
    * Inference on CUDA: fused, NVIDIA's choice (not yet measured by latentlab).
    """
    if needs_grad:
        return False
    if device.type == "cuda":
        return True
    return batch == 1
