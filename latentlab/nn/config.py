"""Frozen network configs and named presets.

A config fully determines a network's parameters; it is stored inside every checkpoint so that a model
is always rebuilt from its file, never re-typed by a script. Field names follow NVIDIA's keyword
arguments where one exists, so that their pickles' ``init_kwargs`` translate field by field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..validate import InvalidInput, number

ARCHITECTURES = ("orig", "skip", "resnet")
GENERATOR_ARCHS = ("stylegan2", "stylegan1")  # the generator families (StyleGAN2; StyleGAN v1, nn/stylegan1.py)
MAX_PARAMS = 2_000_000_000  # 8 GB of float32 weights: far above any StyleGAN, far below an accidental 1e9-wide layer
MAX_WIDTH = 16_384  # latent, feature and channel widths
LIMITS: dict[str, tuple[float, float]] = {  # (low, high) of each numeric config field; checked before building
    "resolution": (4, 16_384), "z_dim": (0, MAX_WIDTH), "w_dim": (1, MAX_WIDTH), "c_dim": (0, 100_000),
    "img_channels": (1, 16), "mapping_layers": (0, 64), "mapping_layer_features": (1, MAX_WIDTH),
    "embed_features": (1, MAX_WIDTH), "channel_base": (1, 2**30), "channel_max": (1, MAX_WIDTH),
    "mbstd_group_size": (1, 4096), "mbstd_num_channels": (0, 64), "cmap_dim": (1, MAX_WIDTH),
    "mapping_lr_multiplier": (1e-8, 1e3), "w_avg_beta": (0.0, 1.0), "conv_clamp": (1e-6, 1e9),
}  # fmt: skip


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution!r}")


def _check_filter(taps) -> tuple[int, ...]:
    taps = tuple(taps)
    if len(taps) < 2 or len(taps) % 2 or taps != taps[::-1] or sum(taps) <= 0:
        raise ValueError(
            f"resample_filter must be symmetric with an even number of taps and a positive sum, e.g. (1, 3, 3, 1); "
            f"got {taps}"
        )
    return taps


def num_ws_for(resolution: int) -> int:
    """Number of per-layer W codes of a StyleGAN2 skip/resnet generator: ``2 * log2(resolution) - 2``."""
    _check_resolution(resolution)
    return 2 * int(math.log2(resolution)) - 2


class _Config:
    """What both network configs share: channel rule and JSON round trip (fields in ``dataclasses.asdict``)."""

    resolution: int
    img_channels: int
    architecture: str
    channel_base: int
    channel_max: int
    resample_filter: tuple[int, ...]

    def _check_types(self) -> None:
        """Every field of the right JSON type and within :data:`LIMITS`, before anything is sized from it.

        Values are checked, not converted (a config's JSON, and so a model's fingerprint, stays as written),
        except integral floats in integer fields (``64.0`` -> ``64``).
        """
        where = type(self).__name__
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = str(f.type)
            if value is None and "None" in kind:
                continue
            if f.name == "resample_filter":
                if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                    raise InvalidInput(f"{where}.resample_filter must be a list of numbers, got {value!r:.60}")
                taps = list(value)
                if not 2 <= len(taps) <= 16:
                    raise InvalidInput(f"{where}.resample_filter must have 2 to 16 taps, got {len(taps)}")
                for i, t in enumerate(taps):
                    number(t, f"resample_filter[{i}]", where=where, low=-1e6, high=1e6)
                object.__setattr__(self, f.name, tuple(t.item() if hasattr(t, "item") else t for t in taps))
            elif kind.startswith("int"):
                lo, hi = LIMITS.get(f.name, (0, 2**31))
                object.__setattr__(self, f.name, number(value, f.name, where=where, integer=True, low=lo, high=hi))
            elif kind.startswith("float"):
                number(value, f.name, where=where, low=LIMITS[f.name][0], high=LIMITS[f.name][1])
            elif kind == "bool" and not isinstance(value, bool):
                raise InvalidInput(f"{where}.{f.name} must be true or false, got {value!r:.60}")
            elif kind == "str" and not isinstance(value, str):
                raise InvalidInput(f"{where}.{f.name} must be a string, got {value!r:.60}")

    def _check_common(self) -> None:
        """Checks both configs need; normalises ``resample_filter`` to a tuple."""
        self._check_types()
        _check_resolution(self.resolution)
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        for name in ("img_channels", "channel_base", "channel_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "resample_filter", _check_filter(self.resample_filter))
        if self.channel_base < self.resolution:
            raise InvalidInput(f"channel_base must be >= resolution ({self.resolution}) so that every resolution has "
                               f"at least one channel, got {self.channel_base}")  # fmt: skip

    def _check_size(self) -> None:
        """Refuse a network whose parameters would not fit in :data:`MAX_PARAMS` (checked before building it)."""
        n = self.estimated_params()
        if n > MAX_PARAMS:
            raise InvalidInput(f"{type(self).__name__} describes a network of about {n:.3g} parameters, more than "
                               f"latentlab builds ({MAX_PARAMS:.0e}); check resolution, channel_base, channel_max "
                               f"and the widths")  # fmt: skip

    def _synthesis_params(self, style_dim: int) -> int:
        """An upper bound on the conv (3x3) and style-affine weights over all resolutions."""
        total, res, prev = 0, 4, self.channels(4)
        while res <= self.resolution:
            ch = self.channels(res)
            total += 2 * (9 * prev * ch + style_dim * max(prev, ch) + ch) + ch * (self.img_channels + style_dim)
            prev, res = ch, res * 2
        return total

    def channels(self, res: int) -> int:
        """Feature maps at resolution ``res``: ``min(channel_base // res, channel_max)``."""
        return min(self.channel_base // res, self.channel_max)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (what checkpoints store). A StyleGAN2 generator's has no ``arch``, and
        one trained in float32 no ``num_fp16_res``, as before those fields existed, so files and fingerprints
        are unchanged."""
        d = dataclasses.asdict(self)
        d["resample_filter"] = list(self.resample_filter)
        if d.get("arch") == "stylegan2":
            del d["arch"]
        if d.get("num_fp16_res", 1) == 0:
            del d["num_fp16_res"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Build from :meth:`to_dict`'s output; unknown fields are an error naming them."""
        if not isinstance(d, dict):
            raise ValueError(f"{cls.__name__} must be built from a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class GeneratorConfig(_Config):
    """Everything that determines a StyleGAN2 generator's parameters."""

    resolution: int = 64  # output side in pixels, a power of two >= 4
    z_dim: int = 512  # input latent size; 0 = no z input (labels only)
    w_dim: int = 512  # intermediate latent size
    c_dim: int = 0  # conditioning label size; 0 = unconditional
    img_channels: int = 3  # 3 = RGB, 1 = grey
    mapping_layers: int = 8  # depth of the z -> w MLP (the paper's 8)
    mapping_lr_multiplier: float = 0.01  # the mapping MLP learns 100x slower (StyleGAN, Sec. C)
    mapping_layer_features: int | None = None  # width of the hidden mapping layers; None = w_dim
    embed_features: int | None = None  # label embedding width; None = w_dim (ignored when c_dim = 0)
    w_avg_beta: float = 0.995  # decay of the tracked W mean used for truncation
    channel_base: int = 32768  # channels at resolution r are min(channel_base // r, channel_max)
    channel_max: int = 512  # upper bound on channels at every resolution
    architecture: str = "skip"  # how RGB is produced: "skip" (StyleGAN2 default), "orig", "resnet"
    conv_clamp: float | None = None  # clamp conv outputs to +-conv_clamp; None = no clamping
    use_noise: bool = True  # per-pixel noise inputs with learned strength
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)  # taps of the separable low-pass FIR filter
    arch: str = "stylegan2"  # "stylegan2", or "stylegan1" (AdaIN, blur, a ToRGB per level; see nn/stylegan1.py)
    # NVIDIA's mixed precision: the N highest resolutions run in float16 when synthesis is asked for "fp16" (on
    # CUDA; the rest stays float32). 0 = trained in float32, no fp16 layers. It changes no parameter. As in NVIDIA's
    # code, a value above the number of resolutions means all of them from 8x8 up.
    num_fp16_res: int = 0

    def __post_init__(self) -> None:
        self._check_common()
        if self.arch not in GENERATOR_ARCHS:
            raise ValueError(f"arch must be one of {GENERATOR_ARCHS}, got {self.arch!r}")
        if self.arch == "stylegan1" and self.num_fp16_res:
            raise ValueError("a StyleGAN v1 generator has no fp16 layers (num_fp16_res must be 0)")
        if self.arch == "stylegan1" and (self.architecture != "skip" or self.conv_clamp is not None
                                         or self.resample_filter != (1, 3, 3, 1)):  # fmt: skip
            raise ValueError("a StyleGAN v1 generator has no architecture, conv_clamp or resample_filter option "
                             "(its blur is fixed); leave them at their defaults")  # fmt: skip
        for name in ("z_dim", "c_dim"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.z_dim == 0 and self.c_dim == 0:
            raise ValueError("a generator needs z_dim > 0 or c_dim > 0")
        for name in ("w_dim", "mapping_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self._check_size()

    def estimated_params(self) -> int:
        """Roughly the generator's parameter count (an upper bound within 25%), from the config alone."""
        feats = self.mapping_layer_features or self.w_dim
        embed = (self.embed_features or self.w_dim) if self.c_dim else 0
        width = max(self.z_dim + embed, feats, self.w_dim)
        return self.c_dim * embed + self.mapping_layers * width * width + self._synthesis_params(self.w_dim)

    @property
    def num_ws(self) -> int:
        """Number of W codes the synthesis network consumes (one per conv layer plus the last ToRGB)."""
        return num_ws_for(self.resolution)


@dataclass(frozen=True)
class DiscriminatorConfig(_Config):
    """Everything that determines a StyleGAN2 (residual) discriminator's parameters."""

    resolution: int = 64  # input side in pixels, a power of two >= 4
    img_channels: int = 3  # 3 = RGB, 1 = grey
    c_dim: int = 0  # conditioning label size; 0 = unconditional (no projection head)
    channel_base: int = 32768  # channels at resolution r are min(channel_base // r, channel_max)
    channel_max: int = 512  # upper bound on channels at every resolution
    architecture: str = "resnet"  # "resnet" (StyleGAN2 default), "skip" or "orig"
    mbstd_group_size: int | None = 4  # minibatch-stddev group size; None = the whole minibatch
    mbstd_num_channels: int = 1  # minibatch-stddev feature maps; 0 = no minibatch-stddev layer
    cmap_dim: int | None = None  # width of the mapped label; None = channels at 4x4 (ignored if c_dim=0)
    mapping_layers: int = 8  # depth of the label -> cmap MLP (conditional only)
    conv_clamp: float | None = None  # clamp conv outputs to +-conv_clamp; None = no clamping
    resample_filter: tuple[int, ...] = (1, 3, 3, 1)  # taps of the separable low-pass FIR filter
    arch: str = "stylegan2"  # "stylegan2", or "stylegan1" (D_basic: blur, average-pool down, FromRGB per level)

    def __post_init__(self) -> None:
        self._check_common()
        if self.arch not in GENERATOR_ARCHS:
            raise ValueError(f"arch must be one of {GENERATOR_ARCHS}, got {self.arch!r}")
        if self.arch == "stylegan1" and (self.architecture != "resnet" or self.conv_clamp is not None or self.c_dim
                                         or self.resample_filter != (1, 3, 3, 1)):  # fmt: skip
            raise ValueError("a StyleGAN v1 discriminator has no architecture, conv_clamp, resample_filter or label "
                             "option; leave them at their defaults")  # fmt: skip
        if self.resolution < 8:
            raise ValueError(f"discriminator resolution must be >= 8, got {self.resolution}")
        if self.c_dim < 0:
            raise ValueError(f"c_dim must be >= 0, got {self.c_dim}")
        if self.mbstd_group_size is not None and self.mbstd_group_size < 1:
            raise ValueError(f"mbstd_group_size must be >= 1 or None, got {self.mbstd_group_size}")
        if self.mbstd_num_channels < 0:
            raise ValueError(f"mbstd_num_channels must be >= 0, got {self.mbstd_num_channels}")
        self._check_size()

    def estimated_params(self) -> int:
        """Roughly the discriminator's parameter count (an upper bound within 25%), from the config alone."""
        ch4 = self.channels(4)
        cmap = (self.cmap_dim or ch4) if self.c_dim else 0
        head = (ch4 + self.mbstd_num_channels) * ch4 * 9 + ch4 * 16 * ch4 + ch4 * max(cmap, 1)
        return self._synthesis_params(0) + head + self.mapping_layers * max(self.c_dim, cmap) * cmap

    @property
    def block_resolutions(self) -> list[int]:
        """Discriminator block resolutions, descending: ``[resolution, ..., 8]`` (4x4 is the epilogue)."""
        return [2**i for i in range(int(math.log2(self.resolution)), 2, -1)]


@dataclass(frozen=True)
class Preset:
    """A named pair of configs with a one-line description."""

    name: str
    description: str
    G: GeneratorConfig
    D: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


def _preset(name: str, description: str, **g: Any) -> Preset:
    d_keys = {"resolution", "img_channels", "c_dim", "channel_base", "channel_max", "conv_clamp", "arch"}
    d = {k: v for k, v in g.items() if k in d_keys}
    return Preset(name, description, GeneratorConfig(**g), DiscriminatorConfig(**d))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        _preset(
            "bench-a",
            "Benchmark config A: 64x64, z=w=512, 8 mapping layers, 128 channels up to 32x32 and 64 at 64x64.",
            resolution=64, z_dim=512, w_dim=512, channel_base=4096, channel_max=128,
        ),
        _preset(
            "bench-b",
            "Benchmark config B (training): 32x32, z=w=512, 8 mapping layers, 128 channels up to 16x16, 64 at 32x32.",
            resolution=32, z_dim=512, w_dim=512, channel_base=2048, channel_max=128,
        ),
        _preset(
            "stylegan2-1024",
            "The StyleGAN2 paper's config F at 1024x1024 (NVIDIA's FFHQ model): 512 channels up to 32x32.",
            resolution=1024, z_dim=512, w_dim=512, channel_base=32768, channel_max=512,
        ),
        _preset(
            "paper256",
            "stylegan2-ada's paper256 config: 256x256, half the channels of config F.",
            resolution=256, z_dim=512, w_dim=512, channel_base=16384, channel_max=512,
        ),
        _preset(
            "small-64",
            "A small 64x64 model for CPU training: w=256, 4 mapping layers, at most 128 channels.",
            resolution=64, z_dim=256, w_dim=256, mapping_layers=4, channel_base=4096, channel_max=128,
        ),
        _preset(
            "synthfaces-64",
            "The embedded SynthFaces model: 64x64, z=w=256, 8 mapping layers, 128 channels up to 16x16, 64, 32.",
            resolution=64, z_dim=256, w_dim=256, channel_base=2048, channel_max=128,
        ),
        _preset(
            "tiny",
            "A tiny 16x16 test network (w=32, 2 mapping layers, 16-32 channels); fast on any CPU.",
            resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32,
        ),
        _preset(
            "stylegan1-1024",
            "StyleGAN v1 as NVIDIA trained it on FFHQ (AdaIN, 1024x1024): 512 channels up to 32x32, 16 at 1024x1024.",
            resolution=1024, z_dim=512, w_dim=512, channel_base=16384, channel_max=512, arch="stylegan1",
        ),
        _preset(
            "stylegan1-64",
            "A small 64x64 StyleGAN v1 for CPU: as small-64 (w=256, 4 mapping layers, at most 128 channels).",
            resolution=64, z_dim=256, w_dim=256, mapping_layers=4, channel_base=4096, channel_max=128,
            arch="stylegan1",
        ),
        _preset(
            "stylegan1-tiny",
            "A tiny 16x16 StyleGAN v1 test network (w=32, 2 mapping layers, 16-32 channels).",
            resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32, arch="stylegan1",
        ),
        _preset(
            "tiny-32",
            "A tiny 32x32 test network (w=32, 2 mapping layers, 8-32 channels).",
            resolution=32, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32,
        ),
    ]
}  # fmt: skip


def get_preset(name: str) -> Preset:
    """The named preset; unknown names raise ``KeyError`` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None
