"""The training configuration: one frozen dataclass, stored in every run folder and training state."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..nn.config import PRESETS, DiscriminatorConfig, GeneratorConfig, get_preset
from ..validate import InvalidInput, number, number_fields
from .growing import Phase, growing_lod

# Fields that may change when a run is resumed: they do not change what is computed, only how long, where,
# how often it is saved and shown. Every other field must match the saved run.
RUNTIME_FIELDS = ("data", "outdir", "kimg", "snap", "keep", "tick", "resume", "progress", "device", "threads",
                  "workers", "precision")  # fmt: skip


# (low, high, integer) of every numeric field; NaN and Inf are refused everywhere (latentlab.validate.number).
NUMBER_BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    "kimg": (1e-6, 1e9, False), "batch": (1, 65_536, True), "seed": (0, 2**63 - 1, True), "gamma": (0, 1e6, False),
    "r1_interval": (1, 1e6, True), "pl_weight": (0, 1e6, False), "pl_interval": (1, 1e6, True),
    "pl_decay": (0, 1, False), "pl_batch_shrink": (1, 65_536, True), "style_mixing": (0, 1, False),
    "lr_G": (0, 10, False), "lr_D": (0, 10, False), "eps": (0, 1, False), "ema_kimg": (0, 1e9, False),
    "ema_rampup": (0, 1e3, False), "aug_p": (0, 1, False), "ada_target": (0, 1, False), "ada_kimg": (1e-6, 1e9, False),
    "ada_interval": (1, 1e6, True), "snap": (1e-6, 1e9, False), "keep": (0, 1e6, True), "tick": (1e-6, 1e9, False),
    "grid": (1, 1024, True), "threads": (1, 4096, True), "workers": (0, 256, True),
    "lod_initial_resolution": (4, 65_536, True), "lod_training_kimg": (0, 1e9, False),
    "lod_transition_kimg": (0, 1e9, False), "channel_base": (1, 2**20, True), "channel_max": (1, 2**16, True),
}  # fmt: skip

# StyleGAN v1's recipe (NVlabs/stylegan train.py, one GPU; training_loop.py): R1 gamma 10 on every minibatch, no
# path-length term, Adam lr 0.001 (raised from 128 px), G smoothing half-life 10 kimg without ramp-up, mixing 0.9,
# progressive growing from 8x8 with 600 kimg stable + 600 kimg fade per resolution, minibatch by resolution.
STYLEGAN1_RECIPE: dict[str, Any] = {
    "gamma": 10.0, "r1_interval": 1, "pl_weight": 0.0, "lr_G": 0.001, "lr_D": 0.001, "ema_kimg": 10.0,
    "ema_rampup": None, "style_mixing": 0.9, "lod_initial_resolution": 8, "lod_training_kimg": 600.0,
    "lod_transition_kimg": 600.0, "batch": 4,
    "batch_dict": ((4, 128), (8, 128), (16, 128), (32, 64), (64, 32), (128, 16), (256, 8), (512, 4)),
    "lr_dict": ((128, 0.0015), (256, 0.002), (512, 0.003), (1024, 0.003)),
}  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (defaults: StyleGAN2's paper and NVIDIA's code; StyleGAN v1's recipe
    with :meth:`stylegan1`)."""

    data: str  # folder or zip of images (see latentlab.data.datasets), resized to the network's resolution
    outdir: str  # run folder: snapshots, training states, sample grids, stats.jsonl, config.json
    preset: str = "small-64"  # network architecture (see `latentlab presets`); G / D below override it
    G: GeneratorConfig | None = None  # explicit generator config; None = the preset's
    D: DiscriminatorConfig | None = None  # explicit discriminator config; None = the preset's
    cond: bool = False  # condition G and D on the dataset's labels (dataset.json)
    init: str | None = None  # start from this checkpoint's G, G_ema, D (any format); None = random init
    # The networks' channel rule, min(channel_base // res, channel_max) maps at resolution res; None = the
    # preset's (or the init file's). With ``init``, its networks are widened to it (latentlab.nn.widen: the
    # new channels start so that G and D compute what they computed).
    channel_base: int | None = None
    channel_max: int | None = None
    kimg: float = 1000.0  # train until this many thousand real images have been shown
    batch: int = 16  # global minibatch (split over processes)
    seed: int = 0  # seeds the initialisation, the latents, the noise and the data order
    gamma: float | None = None  # R1 weight; None = NVIDIA's heuristic 0.0002 * resolution^2 / batch
    r1_interval: int = 16  # lazy R1: every this many minibatches (1 = every minibatch)
    pl_weight: float = 2.0  # path-length regularization weight; 0 = off
    pl_interval: int = 4  # lazy path-length regularization interval
    pl_decay: float = 0.01  # decay of the running mean path length
    pl_batch_shrink: int = 2  # the path-length phase runs on batch // pl_batch_shrink samples
    style_mixing: float = 0.9  # probability of style mixing per minibatch; 0 = off
    lr_G: float = 0.0025  # Adam learning rate of G (before the lazy-regularization correction)
    lr_D: float = 0.0025  # Adam learning rate of D (before the lazy-regularization correction)
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas (before the correction)
    eps: float = 1e-8  # Adam epsilon
    ema_kimg: float | None = None  # G_ema half-life in kimg; None = batch * 10 / 32 (NVIDIA's auto config)
    ema_rampup: float | None = 0.05  # half-life at most cur_kimg * ema_rampup early on; None = no ramp-up
    xflip: bool = False  # also train on left-right mirrored images
    augment: str = "none"  # "ada" = adaptive discriminator augmentation, "fixed" = constant aug_p, "none"
    aug_p: float = 0.0  # augmentation probability: the starting value for "ada", the constant for "fixed"
    ada_target: float = 0.6  # ADA raises p while E[sign(D(real))] is above this (the paper's 0.6)
    ada_kimg: float = 500.0  # ADA can move p from 0 to 1 in this many kimg
    ada_interval: int = 4  # ADA adjusts p every this many minibatches
    crop: str = "none"  # "center" crops non-square images; "none" skips them
    snap: float = 10.0  # write a snapshot every this many kimg (and at the end)
    keep: int = 5  # keep the last this many snapshots (network + training state); 0 = keep all
    tick: float = 1.0  # one stats.jsonl row every this many kimg
    grid: int = 32  # samples in each snapshot's grid (fixed seeds 0..grid-1)
    resume: str | None = None  # None, "auto" (continue outdir if it has a snapshot) or a run folder / state file
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    threads: int | None = None  # CPU threads per process; None = PyTorch's default
    workers: int = 0  # threads that decode training images in parallel; 0 = decode in the training thread
    # the networks' arithmetic: "fp32", or "bf16" (CPUs with AVX-512 BF16 or AMX, CUDA): G's synthesis and D's
    # blocks run in it; the mapping, D's epilogue, weights, Adam, losses and regularizers' reductions stay fp32.
    # A runtime choice: a run may be resumed in another precision.
    precision: str = "fp32"
    progress: bool = True  # show a progress bar (rank 0 only)
    # Progressive growing (StyleGAN v1 only; see train/growing.py). None = the full network from the start.
    lod_initial_resolution: int | None = None  # the resolution training starts at (StyleGAN: 8)
    lod_training_kimg: float = 600.0  # kimg at each resolution before the next one fades in
    lod_transition_kimg: float = 600.0  # kimg fading in each new resolution
    batch_dict: tuple[tuple[int, int], ...] | None = None  # (resolution, global batch) pairs overriding ``batch``
    lr_dict: tuple[tuple[int, float], ...] | None = None  # (resolution, lr) pairs overriding ``lr_G`` and ``lr_D``

    @classmethod
    def stylegan1(cls, **fields: Any) -> TrainConfig:
        """A StyleGAN v1 run with the paper's recipe (:data:`STYLEGAN1_RECIPE`), ``fields`` overriding it.

        The preset defaults to ``stylegan1-64``. Giving ``batch`` (or ``lr_G``/``lr_D``) without ``batch_dict``
        (``lr_dict``) uses it at every resolution instead of the per-resolution table.
        """
        recipe = dict(STYLEGAN1_RECIPE)
        if "batch" in fields:
            recipe["batch_dict"] = None
        if "lr_G" in fields or "lr_D" in fields:
            recipe["lr_dict"] = None
        if "preset" not in fields and fields.get("G") is None and fields.get("init") is None:
            recipe["preset"] = "stylegan1-64"
        return cls(**{**recipe, **fields})

    def __post_init__(self) -> None:
        number_fields(self, NUMBER_BOUNDS, "TrainConfig", allow_none=True)
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise InvalidInput(f"TrainConfig: betas must be two numbers in [0, 1), got {self.betas!r:.60}")
        for b in self.betas:
            number(b, "betas", where="TrainConfig", low=0, high=1, high_open=True)
        if self.G is None and self.preset not in PRESETS:
            get_preset(self.preset)  # raises with the list of known presets
        if isinstance(self.G, dict):
            object.__setattr__(self, "G", GeneratorConfig.from_dict(self.G))
        if isinstance(self.D, dict):
            object.__setattr__(self, "D", DiscriminatorConfig.from_dict(self.D))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        positive = ("kimg", "batch", "r1_interval", "pl_interval", "pl_batch_shrink", "snap", "tick", "grid")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("pl_weight", "lr_G", "lr_D", "eps", "keep", "workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.gamma is not None and self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")
        if not 0 <= self.style_mixing <= 1 or not 0 <= self.pl_decay <= 1:
            raise ValueError("style_mixing and pl_decay must be in [0, 1]")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.augment not in ("none", "ada", "fixed"):
            raise ValueError(f"augment must be 'none', 'ada' or 'fixed', got {self.augment!r}")
        if self.precision not in ("fp32", "bf16"):
            raise InvalidInput(f"TrainConfig.precision must be 'fp32' or 'bf16' (fp16 training is not "
                               f"implemented), got {self.precision!r:.40}")
        if not 0 <= self.aug_p <= 1 or self.ada_kimg <= 0 or self.ada_interval < 1:
            raise ValueError("aug_p must be in [0, 1], ada_kimg > 0 and ada_interval >= 1")
        if self.crop not in ("none", "center"):
            raise ValueError(f"crop must be 'none' or 'center', got {self.crop!r}")
        self._check_growing()
        if self.batch % self.pl_batch_shrink:
            raise ValueError(f"batch ({self.batch}) must be divisible by pl_batch_shrink ({self.pl_batch_shrink})")
        if self.init is not None:
            return  # the architecture comes from the init checkpoint
        g, d = self.networks(c_dim=0)
        if g.resolution != d.resolution or g.img_channels != d.img_channels:
            raise ValueError(f"G ({g.resolution}px, {g.img_channels} ch) and D ({d.resolution}px, {d.img_channels} ch) "
                             "must agree on resolution and channels")  # fmt: skip
        self.phase(0, g.resolution)  # checks the growing schedule against the resolution

    def _check_growing(self) -> None:
        for name, integer in (("batch_dict", True), ("lr_dict", False)):
            table = getattr(self, name)
            if table is None:
                continue
            if self.lod_initial_resolution is None:
                raise InvalidInput(f"TrainConfig: {name} sets values per resolution, which needs progressive growing "
                                   "(lod_initial_resolution)")  # fmt: skip
            pairs = table.items() if isinstance(table, dict) else table
            try:
                pairs = [(k, v) for k, v in pairs]
            except (TypeError, ValueError):
                raise InvalidInput(f"TrainConfig: {name} must be (resolution, value) pairs, "
                                   f"got {table!r:.80}") from None
            out = []
            for res, value in pairs:
                res = int(number(int(res) if isinstance(res, str) and res.isdigit() else res, f"{name} resolution",
                                 where="TrainConfig", low=4, high=65_536, integer=True))  # fmt: skip
                if res & (res - 1):
                    raise InvalidInput(f"TrainConfig: {name} resolution {res} is not a power of two")
                if integer:
                    value = int(number(value, f"{name}[{res}]", where="TrainConfig", low=1, high=65_536, integer=True))
                else:
                    value = float(number(value, f"{name}[{res}]", where="TrainConfig", low=0, high=10, low_open=True))
                out.append((res, value))
            if len({r for r, _ in out}) != len(out):
                raise InvalidInput(f"TrainConfig: {name} names a resolution twice")
            object.__setattr__(self, name, tuple(sorted(out)))
        r0 = self.lod_initial_resolution
        if r0 is not None:
            if r0 & (r0 - 1):
                raise InvalidInput(f"TrainConfig: lod_initial_resolution must be a power of two, got {r0}")
            if not self.lod_training_kimg + self.lod_transition_kimg > 0:
                raise InvalidInput("TrainConfig: progressive growing needs lod_training_kimg + lod_transition_kimg > 0")
            batches = [b for _, b in self.batch_dict or ()] + [self.batch]
            if any(b % self.pl_batch_shrink for b in batches) and self.pl_weight > 0:
                raise InvalidInput(f"TrainConfig: every batch must be divisible by pl_batch_shrink "
                                   f"({self.pl_batch_shrink})")  # fmt: skip

    def phase(self, cur_nimg: int, resolution: int | None = None) -> Phase:
        """The level of detail, resolution, batch and learning rates of the minibatch after ``cur_nimg`` images.

        Without progressive growing: ``lod = 0`` at the network's resolution with ``batch``, ``lr_G``, ``lr_D``.
        ``resolution`` defaults to the preset's (pass the network's when it comes from ``init``).
        """
        res = self.resolution if resolution is None else resolution
        if self.lod_initial_resolution is None:
            return Phase(0.0, res, self.batch, self.lr_G, self.lr_D)
        if self.lod_initial_resolution > res:
            raise InvalidInput(f"TrainConfig: lod_initial_resolution {self.lod_initial_resolution} is above the "
                               f"network's resolution {res}")  # fmt: skip
        lod = growing_lod(cur_nimg, res, self.lod_initial_resolution, self.lod_training_kimg, self.lod_transition_kimg)
        level_res = res >> int(math.floor(lod))
        batch = dict(self.batch_dict or ()).get(level_res, self.batch)
        lrs = dict(self.lr_dict or ())
        return Phase(lod, level_res, batch, lrs.get(level_res, self.lr_G), lrs.get(level_res, self.lr_D))

    # ---------------------------------------------------------------------------------------------

    def networks(self, c_dim: int) -> tuple[GeneratorConfig, DiscriminatorConfig]:
        """The G and D configs to build, with ``c_dim`` labels when ``cond`` is set."""
        preset = get_preset(self.preset) if self.G is None or self.D is None else None
        g = self.G if self.G is not None else preset.G
        d = self.D if self.D is not None else preset.D
        if g.arch != d.arch:
            raise InvalidInput(f"TrainConfig: G is {g.arch} but D is {d.arch}; train a generator with its own "
                               f"family's discriminator")  # fmt: skip
        check_growing_arch(self, g.arch)
        channels = {k: v for k, v in (("channel_base", self.channel_base), ("channel_max", self.channel_max))
                    if v is not None}  # fmt: skip
        if channels:
            g, d = dataclasses.replace(g, **channels), dataclasses.replace(d, **channels)
        c = c_dim if self.cond else 0
        if g.c_dim != c:
            g = dataclasses.replace(g, c_dim=c)
        if d.c_dim != c:
            d = dataclasses.replace(d, c_dim=c)
        return g, d

    @property
    def resolution(self) -> int:
        """Training resolution (the generator's)."""
        return (self.G if self.G is not None else get_preset(self.preset).G).resolution

    def r1_gamma(self, resolution: int | None = None) -> float:
        """The R1 weight in use: ``gamma``, or NVIDIA's heuristic ``0.0002 * resolution^2 / batch``.

        ``resolution`` defaults to the preset's (pass the network's when it comes from ``init``).
        """
        res = self.resolution if resolution is None else resolution
        return self.gamma if self.gamma is not None else 0.0002 * res**2 / self.batch

    @property
    def ema_half_life_kimg(self) -> float:
        """The G_ema half-life in kimg: ``ema_kimg``, or ``batch * 10 / 32``."""
        return self.ema_kimg if self.ema_kimg is not None else self.batch * 10 / 32

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (network configs as dicts)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["G"] = self.G.to_dict() if self.G is not None else None
        d["D"] = self.D.to_dict() if self.D is not None else None
        d["betas"] = list(self.betas)
        for name in ("batch_dict", "lr_dict"):
            if d[name] is not None:
                d[name] = [list(pair) for pair in d[name]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict`; unknown fields are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**d)

    def differences(self, saved: TrainConfig) -> list[str]:
        """The non-runtime fields where this config differs from ``saved``, as ``"name: saved -> given"``."""
        out = []
        mine, theirs = self.to_dict(), saved.to_dict()
        for name in mine:
            if name not in RUNTIME_FIELDS and mine[name] != theirs[name]:
                out.append(f"{name}: {theirs[name]!r} -> {mine[name]!r}")
        return out


def check_growing_arch(config: TrainConfig, arch: str) -> None:
    """Progressive growing is StyleGAN v1's; a StyleGAN2 run with ``lod_initial_resolution`` is refused."""
    if config.lod_initial_resolution is not None and arch != "stylegan1":
        raise InvalidInput(f"TrainConfig: progressive growing (lod_initial_resolution) is StyleGAN v1's; a {arch} "
                           f"generator trains at its full resolution from the start")  # fmt: skip


def lazy_adam_hparams(lr: float, betas: tuple[float, float], reg_interval: int | None) -> tuple[float, tuple]:
    """Adam's lr and betas corrected for lazy regularization every ``reg_interval`` minibatches.

    With the regularizer in its own optimizer step every ``k`` minibatches, ``k + 1`` steps are taken where
    ``k`` would be; NVIDIA scales ``lr`` by ``c = k / (k + 1)`` and raises the betas to the power ``c`` so
    the optimizer's time constants are unchanged (StyleGAN2, App. B). ``None``/1 = no correction.
    """
    if reg_interval is None or reg_interval <= 1:
        return lr, tuple(betas)
    c = reg_interval / (reg_interval + 1)
    return lr * c, tuple(b**c for b in betas)


def ema_beta(batch: int, cur_nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """The G_ema decay for one minibatch: ``0.5 ** (batch / ema_nimg)``, the half-life ramping up early on."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))
