"""The StyleGAN (v1) synthesis network (Karras et al., CVPR 2019, Fig. 1b), with NVIDIA's choices.

A learned 4x4 constant (initialized to ones) goes through two layers per resolution. Every layer ends with
the same *epilogue*: per-pixel noise times a learned per-channel weight, a bias, leaky ReLU (0.2), instance
normalization (eps 1e-8), and the style: ``x * (s[:, :C] + 1) + s[:, C:]`` with ``s = A(w_i)`` a dense layer
of gain 1 (AdaIN). The first layer at 4x4 is the constant itself; every other is a 3x3 convolution with gain
sqrt(2) (equalized learning rate), the first of each resolution up-sampling by nearest neighbour and blurring
with ``[1, 2, 1] x [1, 2, 1] / 16`` after the convolution. NVIDIA fuses the up-sampling and the convolution
into one transposed convolution from 128 px (``fused_scale``): the same function, so latentlab computes one
form and the tests check that the other gives the same output.

One ToRGB (1x1, gain 1, no style) per resolution; the output is the last one's, blended with the up-sampled
image of the previous resolution by the level of detail ``lod`` during progressive growing:
``img = lerp(img_r, upsample(img_{r/2}), clip(lod - (log2 R - log2 r), 0, 1))``, so ``lod = 0`` is the full
network.

W+ layout as StyleGAN2's: code ``i`` drives layer ``i``, two per resolution from 4x4, ``num_ws = 2 log2(R) - 2``.
Unlike StyleGAN2 the ToRGB layers take no code, and every layer (the constant's too) has its own noise input,
so ``noise_layers()`` lists ``num_ws`` layers.

The mapping network is StyleGAN2's :class:`~latentlab.nn.mapping.MappingNetwork` (pixel norm, 8 dense layers
with lrmul 0.01 and leaky ReLU): v1 adds each dense bias *before* the sqrt(2) gain, v2 after, so a v1 bias ``b``
is stored as ``b / sqrt(2)`` (the converter does this); the function is the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import LRELU_SLOPE, FullyConnectedLayer
from .synthesis import activation_dtype, check_synthesis_args, noise_map

FUSED_FROM = 128  # NVIDIA's fused_scale="auto": the transposed-convolution form from this resolution
BLUR = (1.0, 2.0, 1.0)
IN_EPS = 1e-8


def blur_filter(device=None) -> Tensor:
    """``[3, 3]`` the normalized ``[1, 2, 1] x [1, 2, 1]`` blur."""
    f = torch.tensor(BLUR, device=device)
    f = f[:, None] * f[None, :]
    return f / f.sum()


def blur2d(x: Tensor, f: Tensor) -> Tensor:
    """Depthwise 3x3 blur of ``x [N, C, H, W]`` with zero padding ("SAME")."""
    c = x.shape[1]
    return F.conv2d(x, f.to(x.dtype)[None, None].expand(c, 1, 3, 3), padding=1, groups=c)


def upscale_conv_fused(x: Tensor, weight: Tensor) -> Tensor:
    """Nearest x2 up-sampling and a 3x3 convolution as one stride-2 transposed convolution: the kernel padded to
    5x5 and summed over its four 4x4 shifts (no x0.25), turned 180 degrees because a transposed convolution
    scatters where a convolution gathers. Equals ``conv2d(upsample_nearest(x), weight, padding=1)``.

    NVIDIA's ``upscale2d_conv2d(fused_scale=True)`` builds the same 4x4 kernel without turning it, so its
    variable is this function's ``weight`` turned 180 degrees (the TensorFlow reader does that, from 128 px).

    Args:
        x: ``[N, I, H, W]``; weight: ``[O, I, 3, 3]`` already scaled.
    Returns:
        ``[N, O, 2H, 2W]``.
    """
    w = F.pad(weight, (1, 1, 1, 1))
    w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]  # [O, I, 4, 4]
    return F.conv_transpose2d(x, w.transpose(0, 1).flip(2, 3), stride=2, padding=1)


class StyleLayer(nn.Module):
    """[constant | (up-sampling) 3x3 conv (+ blur)] -> noise -> bias -> lrelu -> instance norm -> AdaIN style."""

    def __init__(
        self,
        in_channels: int,  # 0 = the 4x4 constant
        out_channels: int,
        w_dim: int,
        resolution: int,  # output resolution (the noise map's side)
        up: bool = False,  # nearest x2 before the conv, blur after it
        use_noise: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones([out_channels, resolution, resolution]))
        else:
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
            self.weight_gain = math.sqrt(2) / math.sqrt(in_channels * 9)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.affine = FullyConnectedLayer(w_dim, 2 * out_channels, bias_init=0)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("blur", blur_filter(), persistent=False)
        # The activations before instance normalization pass through here: a hook point (no parameters) for
        # measuring what the normalization sees, where v1's droplet artifacts live (metrics/droplets.py).
        self.pre_norm = nn.Identity()

    def scaled_noise(self, batch: int, device: torch.device, noise_mode: str, noise: Tensor | None = None,
                     generator: torch.Generator | None = None) -> Tensor | None:  # fmt: skip
        """The noise this layer adds, ``[N or 1, C, R, R]`` (the map times the per-channel weight), or None."""
        if not self.use_noise:
            return None
        n = noise_map(self.resolution, batch, device, noise_mode, noise, generator, self.noise_const)
        return None if n is None else n * self.noise_strength.reshape(1, -1, 1, 1)

    def conv(self, x: Tensor, fused: bool = False) -> Tensor:
        """The layer's convolution (with the up-sampling and blur of the first layer of a resolution), in
        ``x``'s dtype."""
        w = (self.weight * self.weight_gain).to(x.dtype)
        if not self.up:
            return F.conv2d(x, w, padding=1)
        if fused:
            x = upscale_conv_fused(x, w)
        else:
            x = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, padding=1)
        return blur2d(x, self.blur)

    def forward(self, x: Tensor | None, w: Tensor, noise_mode: str = "random", noise: Tensor | None = None,
                generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:  # fmt: skip
        """``x [N, I, r, r]`` (None for the constant), ``w [N, w_dim]`` -> ``[N, O, R, R]`` float32. The
        convolution runs in ``dtype``; the noise, the instance normalization and the style stay float32."""
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(w.shape[0], -1, -1, -1)
        else:
            x = self.conv(x.to(dtype), fused=self.up and self.resolution >= FUSED_FROM).float()
        n = self.scaled_noise(x.shape[0], x.device, noise_mode, noise, generator)
        if n is not None:
            x = x + n
        x = self.pre_norm(F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), LRELU_SLOPE))
        x = x - x.mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + IN_EPS)
        s = self.affine(w)
        c = self.out_channels
        return x * (s[:, :c, None, None] + 1) + s[:, c:, None, None]


class ToRGBv1(nn.Module):
    """A 1x1 convolution of gain 1 with a bias, no style (``ToRGB_lod*``)."""

    def __init__(self, in_channels: int, img_channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([img_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([img_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, C, R, R]`` -> ``[N, img_channels, R, R]``."""
        return F.conv2d(x, self.weight * self.weight_gain, self.bias)


class SynthesisBlockV1(nn.Module):
    """One resolution: two style layers and its ToRGB."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 use_noise: bool = True):  # fmt: skip
        super().__init__()
        self.resolution = resolution
        self.conv0 = StyleLayer(in_channels, out_channels, w_dim, resolution, up=in_channels != 0, use_noise=use_noise)
        self.conv1 = StyleLayer(out_channels, out_channels, w_dim, resolution, use_noise=use_noise)
        self.torgb = ToRGBv1(out_channels, img_channels)
        self.num_conv = 2
        self.num_torgb = 0  # the ToRGB layers take no W code


class SynthesisNetworkV1(nn.Module):
    """``ws [N, num_ws, w_dim]`` -> images ``[N, img_channels, R, R]``, StyleGAN v1 (module docstring)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 16384,
                 channel_max: int = 512, use_noise: bool = True):  # fmt: skip
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        for res in self.block_resolutions:
            block = SynthesisBlockV1(channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels,
                                     use_noise)  # fmt: skip
            setattr(self, f"b{res}", block)
        self.num_ws = 2 * len(self.block_resolutions)
        # Progressive growing's level of detail: 0 = every resolution (a trained network), log2(R) - 2 = 4x4 only.
        self.register_buffer("lod", torch.zeros([]))

    def blocks(self) -> list[SynthesisBlockV1]:
        """The blocks from 4x4 up to the output resolution."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def noise_layers(self) -> list[tuple[str, StyleLayer]]:
        """Every layer in W+ order as ``(name, layer)`` (``b4.conv0`` is the constant); ws[i] drives layer i."""
        return [(f"b{b.resolution}.{n}", getattr(b, n)) for b in self.blocks() for n in ("conv0", "conv1")]

    def resolve_dtype(self, dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
        """The convolutions' dtype for ``dtype`` (as in :meth:`forward`) on ``device``; float16 is refused."""
        dtype = activation_dtype(dtype, device)
        if dtype == torch.float16:
            raise ValueError("float16 synthesis needs a model trained with fp16 layers (StyleGAN2's num_fp16_res "
                             "> 0); a StyleGAN v1 generator has none: use bf16 (float32's range) instead")
        return dtype

    def forward(
        self,
        ws: Tensor,
        noise_mode: str = "random",
        fused: bool | None = None,
        noise: Sequence[Tensor | None] | None = None,
        generator: torch.Generator | None = None,
        channels_last: bool | None = None,
        dtype: torch.dtype | str | None = None,
    ) -> Tensor:
        """Render W+ codes (the arguments of :meth:`latentlab.nn.synthesis.SynthesisNetwork.forward`).

        ``noise`` lists ``num_ws`` maps here (one per layer); ``fused`` and ``channels_last`` are accepted for
        the same interface and change nothing. ``dtype`` is the convolutions' type (float32 by default, or
        bfloat16); v1's instance normalization and styles run in float32 whatever it is. float16 is refused: v1
        was never trained with fp16 layers (NVIDIA's scheme is StyleGAN2's).
        """
        check_synthesis_args(ws, self.num_ws, self.w_dim, noise_mode, noise, self.num_ws)
        ws = ws.to(torch.float32)
        dtype = self.resolve_dtype(dtype, ws.device)
        lod = float(self.lod)
        top = len(self.block_resolutions) - 1
        # Blocks above top - floor(lod) reach the image with weight 0 (their blend picks the up-sampled image
        # exactly), so they are not run: the same image, and no gradients for layers not yet grown.
        last = top - min(int(math.floor(lod)), top)
        x = img = None
        for k, block in enumerate(self.blocks()[: last + 1]):
            for j, name in enumerate(("conv0", "conv1")):
                i = 2 * k + j
                x = getattr(block, name)(x, ws[:, i], noise_mode=noise_mode, dtype=dtype,
                                         noise=None if noise is None else noise[i], generator=generator)  # fmt: skip
            if lod == 0 and k < top:
                continue  # a trained network: only the last RGB counts (every blend below would pick it)
            y = block.torgb(x)
            if img is None or lod == 0:
                img = y
            else:  # NVIDIA's "linear" structure: lerp_clip(rgb_r, upscale(img), lod - lod_r)
                t = min(max(lod - (top - k), 0.0), 1.0)
                img = F.interpolate(img, scale_factor=2.0, mode="nearest")
                img = torch.lerp(y, img, t)  # exactly the up-sampled image at t = 1, exactly y at t = 0
        if last < top:
            img = F.interpolate(img, scale_factor=float(2 ** (top - last)), mode="nearest")
        return img.contiguous()


# --- The discriminator (D_basic) ---------------------------------------------------------------------------


class ConvV1(nn.Module):
    """v1's ``act(apply_bias(conv2d(x)))``: equalized learning rate, the bias added before the leaky ReLU; with
    ``down`` a 2x2 average pool after the convolution (NVIDIA's ``conv2d_downscale2d``, fused or not: the same)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, act: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = math.sqrt(2) / math.sqrt(in_channels * kernel_size**2)
        self.act, self.down, self.padding = act, down, kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        """``[N, I, H, W]`` -> ``[N, O, H, W]`` (``H / 2`` with ``down``)."""
        x = F.conv2d(x, self.weight * self.weight_gain, padding=self.padding)
        if self.down:
            x = F.avg_pool2d(x, 2)
        x = x + self.bias.reshape(1, -1, 1, 1)
        return F.leaky_relu(x, LRELU_SLOPE) if self.act else x


class DenseV1(nn.Module):
    """v1's ``dense`` + ``apply_bias`` (+ leaky ReLU), gain sqrt(2) with the activation, 1 without."""

    def __init__(self, in_features: int, out_features: int, act: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([out_features, in_features]))
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.weight_gain = (math.sqrt(2) if act else 1.0) / math.sqrt(in_features)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        """``[N, in]`` -> ``[N, out]``."""
        x = torch.addmm(self.bias.unsqueeze(0), x, self.weight.t(), alpha=self.weight_gain)
        return F.leaky_relu(x, LRELU_SLOPE) if self.act else x


class DiscriminatorBlockV1(nn.Module):
    """One resolution of D_basic: its FromRGB, and from 8 px ``Conv0`` then blur then ``Conv1_down``."""

    def __init__(self, res: int, channels, img_channels: int, mbstd_channels: int = 0):
        super().__init__()
        self.resolution = res
        self.fromrgb = ConvV1(img_channels, channels(res), 1)
        if res > 4:
            self.conv0 = ConvV1(channels(res), channels(res), 3)
            self.conv1 = ConvV1(channels(res), channels(res // 2), 3, down=True)
            self.register_buffer("blur", blur_filter(), persistent=False)
        else:
            self.conv = ConvV1(channels(4) + mbstd_channels, channels(4), 3)
            self.fc = DenseV1(channels(4) * 16, channels(2))
            self.out = DenseV1(channels(2), 1, act=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, C, r, r]`` -> ``[N, C', r/2, r/2]`` (a block above 4x4)."""
        return self.conv1(blur2d(self.conv0(x), self.blur))


def make_discriminator_v1(module: nn.Module, config) -> None:
    """Build D_basic's layers on ``module`` (a :class:`~latentlab.nn.discriminator.Discriminator` whose config has
    ``arch="stylegan1"``): ``b{r}`` for every resolution from R down to 4, and the ``lod`` buffer."""
    module.block_resolutions = config.block_resolutions
    mb = config.mbstd_num_channels
    for res in [*config.block_resolutions, 4]:
        setattr(module, f"b{res}", DiscriminatorBlockV1(res, config.channels, config.img_channels, mb))
    module.register_buffer("lod", torch.zeros([]))


def discriminator_v1_forward(module: nn.Module, img: Tensor) -> Tensor:
    """D_basic's forward (NVIDIA's linear structure): ``img [N, C, R, R]`` -> logits ``[N, 1]``.

    ``x = lerp(block_r(x), fromrgb_{r/2}(avgpool(img)), clip(lod - lod_r, 0, 1))`` at each resolution, so
    ``lod = 0`` is the full network and the lower FromRGB layers are read only while growing.
    """
    from .discriminator import minibatch_stddev

    c = module.config
    lod = float(module.lod)
    # Where clip(lod - k, 0, 1) = 1 the blend keeps only the FromRGB of the pooled image, so the blocks above
    # resolution R / 2**floor(lod) are not run (the same logits; no gradients for layers not yet grown).
    first = min(int(math.floor(lod)), len(module.block_resolutions))
    for _ in range(first):
        img = F.avg_pool2d(img, 2)
    x = getattr(module, f"b{c.resolution >> first}").fromrgb(img)
    for k, res in enumerate(module.block_resolutions):  # R, ..., 8: lod_r = k
        if k < first:
            continue
        x = getattr(module, f"b{res}")(x)
        if lod > 0:
            img = F.avg_pool2d(img, 2)
            t = min(max(lod - k, 0.0), 1.0)
            if t > 0:
                x = torch.lerp(x, getattr(module, f"b{res // 2}").fromrgb(img), t)
    head = module.b4
    if c.mbstd_num_channels > 0:
        x = minibatch_stddev(x, c.mbstd_group_size, c.mbstd_num_channels)
    x = head.conv(x)
    return head.out(head.fc(x.flatten(1)))
