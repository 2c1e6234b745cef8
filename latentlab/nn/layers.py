"""Building blocks shared by the StyleGAN2 generator and discriminator.

Everything here is pure PyTorch and computes what NVIDIA's stylegan2-ada-pytorch computes for the same
parameters (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020):

* equalized learning rate: weights are stored as ``randn / lr_multiplier`` and multiplied by
  ``lr_multiplier / sqrt(fan_in)`` at run time, so that Adam sees every layer at the same scale (and the
  mapping network, with ``lr_multiplier = 0.01``, learns 100x slower);
* FIR resampling with the binomial ``[1, 3, 3, 1]`` filter, applied as a depthwise convolution;
* modulated convolution with weight demodulation (the paper's Eq. 1-3), in a fused (per-sample grouped
  convolution) and a non-fused (scale activations before and after a shared convolution) form.

Parameters keep NVIDIA's names and raw (unscaled) values so that a foreign checkpoint maps one-to-one.
The resampling filter is a non-persistent buffer: it is derived from the config, not stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # roughly keeps the second moment through leaky ReLU (x1.04 for slope 0.2)

ACTIVATIONS = ("linear", "lrelu")


def normalize_2nd_moment(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale ``x`` so that its mean square along ``dim`` is one (the mapping network's input norm)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(
    x: Tensor, bias: Tensor | None, act: str = "linear", gain: float = 1.0, clamp: float | None = None
) -> Tensor:
    """``clamp(act(x + bias) * gain)`` with a per-channel bias on dim 1.

    Args:
        x: activations ``[N, C, ...]``.
        bias: ``[C]`` or None.
        act: ``"linear"`` or ``"lrelu"`` (slope 0.2).
        gain: multiplier applied after the activation (for lrelu usually ``sqrt(2)``).
        clamp: clamp the result to ``[-clamp, clamp]``; None disables.
    """
    if bias is not None:
        x = x + bias.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}; expected one of {ACTIVATIONS}")
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


# --------------------------------------------------------------------------------------------------
# FIR resampling.


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> Tensor:
    """The separable 2-D low-pass filter ``outer(taps, taps)``, normalised to unit DC gain.

    Returns:
        ``[K, K]`` float32 tensor summing to 1.
    """
    f = torch.as_tensor(taps, dtype=torch.float32)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError(f"resample filter must be a non-empty 1-D list of taps, got {list(taps)!r}")
    f = torch.outer(f, f)
    return f / f.sum()


def fir_filter(x: Tensor, f: Tensor, pad: Sequence[int], gain: float = 1.0, stride: int = 1) -> Tensor:
    """Pad (negative = crop) then filter every channel of ``x`` with the 2-D FIR ``f``.

    The filter is applied as a convolution (flipped), as NVIDIA's ``upfirdn2d`` does; the binomial
    filters used here are symmetric so the flip does not change them. ``stride`` > 1 keeps every
    ``stride``-th output, i.e. filter-then-decimate in one depthwise convolution.

    Args:
        x: ``[N, C, H, W]``.
        f: ``[K, K]`` filter.
        pad: ``(left, right, top, bottom)``.
        gain: overall gain of the filter.
        stride: decimation factor.
    Returns:
        ``[N, C, (H + top + bottom - K) // stride + 1, ...]``.
    """
    channels = x.shape[1]
    left, right, top, bottom = pad
    conv_pad = 0
    if left == right == top == bottom and left >= 0:
        conv_pad = left  # the convolution pads internally, without materialising a padded copy
    elif any(pad):
        x = F.pad(x, [left, right, top, bottom])
    weight = (f * gain).to(x.dtype).flip([0, 1])
    weight = weight[None, None].expand(channels, 1, *f.shape)
    return F.conv2d(x, weight, stride=stride, padding=conv_pad, groups=channels)


def upsample2d(x: Tensor, f: Tensor) -> Tensor:
    """2x FIR up-sampling: ``[N, C, H, W] -> [N, C, 2H, 2W]`` (zero insertion, then filter with gain 4).

    Implemented as a stride-2 depthwise transposed convolution, which never materialises the zeros.
    """
    k = f.shape[-1]
    channels = x.shape[1]
    # Zero-insertion then padding ((k+1)//2, (k-2)//2) and a k-tap filter equals a stride-2 transposed
    # convolution with padding k//2 - 1 (for even k, as NVIDIA's [1,3,3,1]).
    if k % 2:
        raise ValueError(f"upsample2d wants an even number of filter taps, got {k}")
    weight = (f * 4).to(x.dtype)[None, None].expand(channels, 1, k, k)
    return F.conv_transpose2d(x, weight, stride=2, padding=k // 2 - 1, groups=channels)


def downsample2d(x: Tensor, f: Tensor) -> Tensor:
    """2x FIR down-sampling: ``[N, C, H, W] -> [N, C, H/2, W/2]`` (filter, then keep every 2nd pixel)."""
    k = f.shape[-1]
    p0, p1 = (k - 1) // 2, (k - 2) // 2
    return fir_filter(x, f, (p0, p1, p0, p1), stride=2)


# --------------------------------------------------------------------------------------------------
# Equalized-learning-rate layers.


class FullyConnectedLayer(nn.Module):
    """Dense layer with equalized learning rate: ``act(x @ (W * lr/sqrt(in)).T + b * lr)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,  # False = no additive bias
        activation: str = "linear",  # "linear" or "lrelu" (with gain sqrt(2))
        lr_multiplier: float = 1.0,  # scales the effective learning rate; the mapping network uses 0.01
        bias_init: float = 0.0,  # initial bias; style affines start at 1 so styles begin near identity
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, in_features]`` -> ``[N, out_features]``."""
        # The weight gain scales the [N, out] product rather than the [out, in] weight: one fewer copy.
        if self.bias is None:
            x = torch.mm(x, self.weight.t()) * self.weight_gain
        else:
            b = self.bias * self.bias_gain if self.bias_gain != 1 else self.bias
            x = torch.addmm(b.unsqueeze(0), x, self.weight.t(), alpha=self.weight_gain)
        if self.activation == "lrelu":
            x = F.leaky_relu(x, LRELU_SLOPE).mul_(LRELU_GAIN)
        return x

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Convolution with equalized learning rate and optional 2x FIR up/down-sampling (the discriminator's)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,  # False = no additive bias (the resnet skip convolutions)
        activation: str = "linear",  # "linear" or "lrelu"
        up: int = 1,  # 2 = FIR up-sample by 2 (transposed convolution, then blur)
        down: int = 1,  # 2 = FIR down-sample by 2 (blur, then strided convolution)
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # taps of the separable low-pass filter
        conv_clamp: float | None = None,  # clamp outputs to +-conv_clamp; None = no clamping
    ):
        super().__init__()
        if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
            raise ValueError(f"Conv2dLayer supports up=2 or down=2 (not both), got up={up}, down={down}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = LRELU_GAIN if activation == "lrelu" else 1.0
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        """``[N, C_in, H, W] -> [N, C_out, H*up/down, W*up/down]``; ``gain`` scales the output (and clamp)."""
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)


def conv2d_resample(
    x: Tensor, w: Tensor, f: Tensor, up: int = 1, down: int = 1, padding: int = 0, groups: int = 1
) -> Tensor:
    """Convolve ``x`` with ``w``, with optional 2x FIR up- or down-sampling.

    Matches NVIDIA's ``conv2d_resample`` as their layers call it, for ``up``/``down`` in {1, 2} and odd
    kernels ("same" padding). Without up-sampling ``w`` is correlated, as ``F.conv2d`` does. With
    up-sampling their layers pass ``flip_weight=False``, so ``w`` is applied as a true convolution, i.e.
    the result equals correlating the FIR-up-sampled ``x`` with ``w`` flipped (up to the borders).

    * up: transposed stride-2 convolution, then the blur with gain 4 (output ``2H``);
    * down, 1x1 kernel: blur-decimate, then the 1x1 convolution;
    * down, kxk kernel: blur, then a stride-2 convolution (output ``H/2``).

    Args:
        x: ``[N, C_in, H, W]``.
        w: ``[C_out, C_in // groups, k, k]``, already scaled.
        f: ``[K, K]`` resampling filter.
    """
    kh, kw = w.shape[-2:]
    fk = f.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    if down == 2:
        p0 = padding + (fk - 1) // 2
        p1 = padding + (fk - 2) // 2
        if kh == 1 and kw == 1:
            return F.conv2d(fir_filter(x, f, (p0, p1, p0, p1), stride=2), w, groups=groups)
        return F.conv2d(fir_filter(x, f, (p0, p1, p0, p1)), w, stride=2, groups=groups)
    # up == 2
    if kh == 1 and kw == 1:
        return upsample2d(F.conv2d(x, w, groups=groups), f)
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        out_ch, in_ch = w.shape[0], w.shape[1]
        wt = w.reshape(groups, out_ch // groups, in_ch, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_ch, out_ch // groups, kh, kw)
    # NVIDIA's padding bookkeeping for up=2, relative to a transposed convolution without padding
    # (output 2H + k - 2): the blur pads by p0/p1 (= 1/1 for k=3 and the 4-tap filter); a negative
    # pad is folded into the transposed convolution's own padding.
    p0 = padding + (fk + 1) // 2 - (kw - 1)
    p1 = padding + (fk - 2) // 2 - (kw - 2)
    pt = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, wt, stride=2, padding=pt, groups=groups)
    return fir_filter(x, f, (p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=4)


# --------------------------------------------------------------------------------------------------
# Modulated convolution.


def _is_channels_last(t: Tensor) -> bool:
    """True for a tensor laid out channels-last (and not also trivially NCHW-contiguous)."""
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _canonical_channels_last(x: Tensor) -> Tensor:
    """Give a channels-last batch of one its canonical strides (a view, no copy).

    oneDNN returns channels-last ``[1, C, H, W]`` tensors with batch stride ``C`` instead of ``C*H*W``. The
    memory is the same, but PyTorch's transposed convolution then falls back to NCHW, and every later op
    pays for layout copies (16% of the time of a 1024x1024 batch-1 forward pass).
    """
    n, c, h, w = x.shape
    if n == 1 and x.stride(0) != c * h * w and _is_channels_last(x):
        return x.as_strided(x.shape, (c * h * w, 1, w * c, c))
    return x


def demodulation_coefficients(weight: Tensor, styles: Tensor, eps: float = 1e-8) -> Tensor:
    """``1 / sqrt(sum_{i,k} (weight[o, i, k] * styles[n, i])^2 + eps)``, the paper's Eq. 3.

    Computed as ``styles^2 @ (sum_k weight^2)^T``, which never builds the ``[N, O, I, k, k]`` tensor.

    Args:
        weight: ``[O, I, kh, kw]``.
        styles: ``[N, I]``.
    Returns:
        ``[N, O]``.
    """
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + eps).rsqrt()


def modulated_conv2d(
    x: Tensor,
    weight: Tensor,
    styles: Tensor,
    *,
    demodulate: bool = True,
    up: int = 1,
    padding: int = 0,
    resample_filter: Tensor | None = None,
    fused: bool = False,
    noise: Tensor | None = None,
    bias: Tensor | None = None,
    gain: float = 1.0,
) -> Tensor:
    """StyleGAN2's modulated convolution: ``gain * (demod(conv(x, weight * styles)) + noise + bias)``.

    Both forms compute the same values (to float rounding):

    * ``fused=True``: per-sample weights ``weight * styles * dcoefs`` and one grouped convolution
      (one ordinary convolution for a batch of one); the bias rides in the convolution.
    * ``fused=False``: scale the input by the styles, run one shared convolution, then scale by the
      demodulation coefficients and add noise and bias in a single ``addcmul``. Faster on CPU for
      batches > 1, and it keeps channels-last activations channels-last.

    With float16 activations and demodulation, the weights and styles are first scaled to at most 1 (NVIDIA's
    overflow guard; demodulation makes it exact up to rounding).

    Args:
        x: ``[N, I, H, W]`` activations (any memory format).
        weight: ``[O, I, k, k]`` raw (unit-scale) weights.
        styles: ``[N, I]`` per-sample input-channel scales.
        demodulate: normalise each output channel to unit expected variance (Eq. 3).
        up: 1, or 2 for a FIR up-sampling convolution (needs ``resample_filter``).
        padding: spatial padding of the convolution (``k // 2`` = "same").
        resample_filter: ``[K, K]`` filter from :func:`setup_filter`.
        fused: use the grouped-convolution form.
        noise: ``[N or 1, 1, H', W']`` added after demodulation (already scaled by its strength).
        bias: ``[O]`` added after the noise.
        gain: multiplies everything (e.g. the activation gain, which commutes with leaky ReLU).
    Returns:
        ``[N, O, H * up, W * up]``.
    """
    batch, in_channels = x.shape[0], x.shape[1]
    out_channels, w_in, kh, kw = weight.shape
    if w_in != in_channels or styles.shape != (batch, in_channels):
        raise ValueError(
            f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and styles "
            f"{tuple(styles.shape)} disagree (want x [N, I, H, W], weight [O, I, k, k], styles [N, I])"
        )
    f = resample_filter
    x = _canonical_channels_last(x)
    if x.dtype == torch.float16 and demodulate:
        # NVIDIA's guard against fp16 overflow: demodulation undoes any per-output-channel scale of the weights
        # and any per-sample scale of the styles, so bring both to at most 1 (the weights to 1/sqrt(fan-in))
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)
    scale = demodulation_coefficients(weight, styles) * gain if demodulate else None  # [N, O]
    b = None if bias is None else (bias * gain if gain != 1 else bias).to(x.dtype)

    if fused:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_channels, 1, 1)
        w = w * scale.reshape(batch, out_channels, 1, 1, 1) if scale is not None else w * gain
        w = w.reshape(batch * out_channels, in_channels, kh, kw).to(x.dtype)
        channels_last = _is_channels_last(x)
        if batch == 1:
            xg, groups, bg = x, 1, b
        else:
            xg, groups = x.reshape(1, batch * in_channels, *x.shape[2:]), batch
            bg = None if b is None else b.repeat(batch)
        if channels_last:
            w = w.contiguous(memory_format=torch.channels_last)
        if up == 1:
            out = F.conv2d(xg, w, bg, padding=padding, groups=groups)
        else:
            out = conv2d_resample(xg, w, f, up=up, padding=padding, groups=groups)
            if bg is not None:
                out = out.add_(bg.reshape(1, -1, 1, 1))
        out = out.reshape(batch, out_channels, *out.shape[2:])
    else:
        xs = x * styles.to(x.dtype).reshape(batch, in_channels, 1, 1)
        w = weight.to(x.dtype)
        if _is_channels_last(xs):
            w = w.contiguous(memory_format=torch.channels_last)
        out = conv2d_resample(xs, w, f, up=up, padding=padding) if up > 1 else F.conv2d(xs, w, padding=padding)
        if scale is not None:
            scale = scale.to(x.dtype).reshape(batch, out_channels, 1, 1)
            out = torch.addcmul(b.reshape(1, -1, 1, 1), out, scale) if b is not None else out * scale
        else:
            if gain != 1:
                out = out * gain
            if b is not None:
                out = out.add_(b.reshape(1, -1, 1, 1))
    if noise is not None:
        out = out.add_(noise.to(x.dtype) * gain if gain != 1 else noise.to(x.dtype))
    return out
