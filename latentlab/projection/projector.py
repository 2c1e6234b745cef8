"""Projection by optimization: find W or W+ codes (and noise maps) whose rendering matches target images.

The schedule is the StyleGAN2 paper's (Karras et al. 2020, appendix D) as NVIDIA's ``projector.py`` sets it:

* start at the mean of W over 10,000 mapped samples; ``w_std`` is the root mean square distance of those
  samples from the mean;
* Adam (betas 0.9, 0.999), learning rate 0.1 ramped up over the first 5% of the steps and cosine-ramped down
  over the last 25% (:func:`learning_rate`);
* Gaussian noise of std ``0.05 * w_std * max(0, 1 - t / 0.75)^2`` added to the code each step
  (:func:`w_noise_scale`), t = step / steps;
* the per-layer noise maps are optimized too, from N(0, 1), with the multi-scale autocorrelation penalty
  (:func:`noise_regularization`, weight 1e5) and re-normalised to zero mean and unit variance after every
  step (:func:`normalize_noise_`).

In W one code per image is broadcast to every layer; in W+ (Abdal et al. 2019) each layer has its own code,
all starting at the mean. With ``init="encoder"`` the search starts instead at an encoder's code
(:mod:`.encoder`; row 0 of its W+ code in W) with G's constant noise maps, the maps the encoder was trained
to be rendered with; ``steps=0`` is the encoder alone.

Images are optimized together but independently: every loss term is a per-image sum, Adam works per element,
and every random draw comes from the image's own generator seeded with ``seed``, so an image's result does not
depend on its batch mates.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..io.images import to_uint8
from ..nn.generator import Generator
from ..nn.synthesis import PRECISIONS
from ..render import class_labels, render_codes
from ..utils import bar_disable
from ..validate import InvalidInput, count, image_batch, number_fields, optional_number, string

SPACES = ("w", "w+")
INITS = ("w_avg", "encoder")  # where the search starts
SHORT_REFINEMENT = 100  # from an encoder, runs of fewer steps than this default to lr 0.03 (ProjectConfig.lr)


@dataclass(frozen=True)
class ProjectConfig:
    """Everything that determines a projection besides the generator, the images and the loss module."""

    space: str = "w"  # "w": one code broadcast to all layers; "w+": one code per layer
    steps: int = 1000  # optimization steps (0: the start itself, e.g. the encoder's code)
    # peak Adam learning rate; None: 0.1 (NVIDIA's), but 0.03 for a run of under 100 steps from an encoder's code
    # (0.1 then undoes the encoder's start; benchmarks/RESULTS.md, "Encoders", the refinement's schedule)
    lr: float | None = None
    lr_rampup: float = 0.05  # fraction of the steps over which the lr ramps up linearly
    lr_rampdown: float = 0.25  # fraction of the steps over which it ramps down (cosine) at the end
    # initial code-noise std, in units of w_std; None: 0.05 from w_avg (NVIDIA's), 0 from an encoder's code (it
    # only shakes a start that is already close)
    noise_factor: float | None = None
    noise_ramp: float = 0.75  # fraction of the steps after which the code noise is zero
    noise_weight: float = 1e5  # weight of the noise-map autocorrelation penalty
    optimize_noise: bool = True  # False = keep G's stored noise maps fixed
    mse_weight: float = 0.0  # weight of an extra pixel MSE term (on [-1, 1] images)
    w_avg_samples: int = 10000  # samples for the mean and spread of W
    seed: int = 0  # seeds the W statistics and every image's own random draws
    class_idx: int | None = None  # conditional generators: the class whose W statistics start the search
    loss: str = "auto"  # the distance's name, recorded in the outputs
    init: str = "w_avg"  # "w_avg": the mean of W; "encoder": an encoder's code (project_batch's ``init``)
    # from an encoder: the corrections after its first pass (Encoder.invert); None = the encoder's own default
    # (0 for a single-pass encoder, whose correction is the fixed-point step E(x) - E(G(w)))
    encoder_iterations: int | None = None
    # the synthesis' arithmetic during the search: "fp32", "bf16" (CPUs with AVX-512 BF16 or AMX, CUDA) or "fp16"
    # (CUDA); the codes, the loss and the final rendering stay float32, so the result re-renders exactly in fp32
    precision: str = "fp32"

    def __post_init__(self) -> None:
        string(self.space, "space", where="ProjectConfig", choices=SPACES)
        string(self.init, "init", where="ProjectConfig", choices=INITS)
        string(self.precision, "precision", where="ProjectConfig", choices=tuple(PRECISIONS))
        from_encoder = self.init == "encoder"
        if self.lr is None:
            object.__setattr__(self, "lr", 0.03 if from_encoder and self.steps < SHORT_REFINEMENT else 0.1)
        if self.noise_factor is None:
            object.__setattr__(self, "noise_factor", 0.0 if from_encoder else 0.05)
        number_fields(self, _BOUNDS, "ProjectConfig")
        if not isinstance(self.optimize_noise, bool):
            raise InvalidInput(f"ProjectConfig: optimize_noise must be True or False, got {self.optimize_noise!r:.40}")
        optional_number(self.class_idx, "class_idx", where="ProjectConfig", integer=True, low=0)
        optional_number(self.encoder_iterations, "encoder_iterations", where="ProjectConfig", integer=True, low=0,
                        high=100)  # fmt: skip
        if self.encoder_iterations is not None and not from_encoder:
            raise InvalidInput("ProjectConfig: encoder_iterations is for init='encoder'")
        string(self.loss, "loss", where="ProjectConfig")
        if self.steps == 0 and self.init == "w_avg":
            raise InvalidInput("ProjectConfig: steps=0 from w_avg projects nothing; 0 steps is for init='encoder' "
                               "(the encoder's codes alone)")  # fmt: skip


_BOUNDS = {  # (low, high, integer, low_open) of ProjectConfig's numbers; NaN and Inf are refused
    "steps": (0, 10_000_000, True), "lr": (0, 10, False, True), "lr_rampup": (0, 1, False, True),
    "lr_rampdown": (0, 1, False, True), "noise_factor": (0, 100), "noise_ramp": (0, 1, False, True),
    "noise_weight": (0, 1e12), "mse_weight": (0, 1e12), "w_avg_samples": (2, 100_000_000, True),
    "seed": (0, 2**32 - 1, True),
}  # fmt: skip


def learning_rate(step: int, steps: int, lr: float = 0.1, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """NVIDIA's projector schedule: ``lr * min(1, t/rampup) * (0.5 - 0.5 cos(pi * min(1, (1-t)/rampdown)))``.

    ``t = step / steps`` in [0, 1); the rate is 0 at step 0, ``lr`` in the middle, falling to near 0 at the end.
    """
    t = step / max(steps, 1)
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * min(1.0, t / rampup)


def w_noise_scale(step: int, steps: int, w_std: float, factor: float = 0.05, ramp: float = 0.75) -> float:
    """Std of the noise added to the code at ``step``: ``w_std * factor * max(0, 1 - t/ramp)^2``."""
    t = step / max(steps, 1)
    return w_std * factor * max(0.0, 1.0 - t / ramp) ** 2


def noise_regularization(noise: list[Tensor]) -> Tensor:
    """The StyleGAN2 projector's noise penalty, per image: ``[N]``.

    For every map ``[N, L, r, r]`` (L layers of one resolution) and every scale from r down to 8 (2x average
    pooling), the squared mean of the map times itself shifted by one pixel (with wrap-around), horizontally
    and vertically, summed over layers and scales. Zero for uncorrelated maps; it keeps the maps from
    carrying image content.
    """
    total = 0
    for x in noise:
        while True:
            total = total + (x * x.roll(1, dims=3)).mean(dim=(2, 3)).square().sum(dim=1)
            total = total + (x * x.roll(1, dims=2)).mean(dim=(2, 3)).square().sum(dim=1)
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


@torch.no_grad()
def normalize_noise_(noise: list[Tensor]) -> None:
    """Re-normalise every map ``[N, L, r, r]`` in place to zero mean and unit variance per image and layer."""
    for x in noise:
        x -= x.mean(dim=(2, 3), keepdim=True)
        x *= x.square().mean(dim=(2, 3), keepdim=True).rsqrt()


@torch.no_grad()
def w_statistics(
    G: Generator, samples: int = 10000, seed: int = 0, batch: int = 1000, class_idx: int | None = None
) -> tuple[Tensor, float]:
    """Mean ``[w_dim]`` of ``G.mapping(z)`` over ``samples`` seeded z, and ``w_std``: the RMS distance from it.

    ``w_std = sqrt(sum ||w_i - mean||^2 / samples)``, NVIDIA's definition (a length, not a per-dim std).
    A conditional G needs ``class_idx``: the statistics are those of that class.
    """
    class_labels(G, 1, class_idx)  # checks the class index before any work
    device = G.w_avg.device
    g = torch.Generator().manual_seed(int(seed))
    ws = []
    for start in range(0, samples, batch):
        z = torch.randn([min(batch, samples - start), G.z_dim], generator=g).to(device)
        ws.append(G.mapping(z, class_labels(G, z.shape[0], class_idx))[:, 0].double())
    w = torch.cat(ws)
    mean = w.mean(dim=0)
    std = ((w - mean).square().sum() / samples).sqrt().item()
    return mean.float(), std


@dataclass
class Projection:
    """The result for a batch of images, in input order (all tensors on the CPU).

    ``ws`` is ``[N, num_ws, w_dim]`` whatever the space (in W its rows are equal); ``noise`` holds one map
    ``[N, 1, r, r]`` per synthesis layer (G's order, see ``G.synthesis.noise_layers()``), None for layers
    without noise; ``images`` is the final rendering ``[N, C, R, R]`` in [-1, 1] with that noise; ``losses``
    ``[N]`` is the final distance; ``frames`` (``[F, N, R, R, C]`` uint8, only with ``frames > 0``) holds
    the rendering at evenly spaced steps, for videos.
    """

    ws: Tensor
    noise: list[Tensor | None]
    images: Tensor
    losses: Tensor
    config: ProjectConfig
    loss_name: str
    frames: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.ws.shape[0]


def _noise_groups(G: Generator) -> list[tuple[int, list[int]]]:
    """``[(resolution, [layer indices])]``: the synthesis layers with noise, grouped by resolution."""
    groups: dict[int, list[int]] = {}
    for i, (_, layer) in enumerate(G.synthesis.noise_layers()):
        if layer.use_noise:
            groups.setdefault(layer.resolution, []).append(i)
    return sorted(groups.items())


def _layer_noise(G: Generator, params: list[Tensor], groups) -> list[Tensor | None]:
    out: list[Tensor | None] = [None] * len(G.synthesis.noise_layers())
    for p, (_, idx) in zip(params, groups, strict=True):
        for j, i in enumerate(idx):
            out[i] = p[:, j : j + 1]
    return out


def project_batch(
    G: Generator,
    targets: Tensor,
    loss: nn.Module,
    config: ProjectConfig = ProjectConfig(),
    w_stats: tuple[Tensor, float] | None = None,
    frames: int = 0,
    on_step: Callable[[int, Tensor], None] | None = None,
    init: Tensor | None = None,
) -> Projection:
    """Project one batch of images at once (see the module docstring for the schedule).

    Args:
        G: the generator; its parameters are not changed.
        targets: ``[N, C, R, R]`` in [-1, 1] at G's resolution, on G's device.
        loss: a loss module (:func:`~latentlab.perceptual.build_loss`).
        config: the schedule and options.
        w_stats: ``(w_avg [w_dim], w_std)`` from :func:`w_statistics`; None = compute them.
        frames: record this many evenly spaced renderings for a video (0 = none).
        on_step: called after every step with ``(step, per-image loss [N])``.
        init: ``[N, num_ws, w_dim]`` start codes (an encoder's, with ``config.init == "encoder"``); the noise
            maps then start at G's constant maps. None = start at ``w_avg`` with N(0, 1) noise maps.
    """
    c = G.config
    image_batch(targets, "targets", channels=c.img_channels, resolution=c.resolution)
    device = G.w_avg.device
    dtype = G.synthesis.resolve_dtype(config.precision, device)  # before any work: fp16 can be refused
    targets = targets.to(device=device, dtype=torch.float32)
    n, steps = targets.shape[0], config.steps
    if w_stats is None:
        w_stats = w_statistics(G, config.w_avg_samples, config.seed, class_idx=config.class_idx)
    w_avg, w_std = w_stats
    w_avg = w_avg.to(device)
    rows = 1 if config.space == "w" else G.num_ws
    if (init is None) != (config.init == "w_avg"):
        raise InvalidInput(f"ProjectConfig.init is {config.init!r} but start codes were "
                           f"{'not ' if init is None else ''}given")  # fmt: skip

    # Each image draws from its own generator, all seeded alike: its result cannot depend on its batch mates.
    gens = [torch.Generator().manual_seed(int(config.seed)) for _ in range(n)]
    groups = _noise_groups(G) if config.optimize_noise and steps > 0 else []
    if init is None:
        noise_params = [
            torch.stack([torch.randn([len(idx), r, r], generator=g) for g in gens]).to(device).requires_grad_(True)
            for r, idx in groups
        ]  # fmt: skip
        w_opt = w_avg.reshape(1, 1, -1).repeat(n, rows, 1).requires_grad_(True)
    else:
        init = _start_codes(G, init, n).to(device)
        layers = [layer for _, layer in G.synthesis.noise_layers()]
        consts = [torch.stack([layers[i].noise_const.reshape(r, r) for i in idx])[None] for r, idx in groups]
        noise_params = [c.repeat(n, 1, 1, 1).requires_grad_(True) for c in consts]
        w_opt = init[:, :rows].clone().requires_grad_(True)
    opt = torch.optim.Adam([w_opt, *noise_params], lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    prepared = loss.prepare(targets)

    record = set(np.linspace(0, steps - 1, frames).round().astype(int).tolist()) if frames > 0 else set()
    recorded: list[np.ndarray] = []
    params_grad = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    try:
        for step in range(steps):
            lr = learning_rate(step, steps, config.lr, config.lr_rampup, config.lr_rampdown)
            for group in opt.param_groups:
                group["lr"] = lr
            scale = w_noise_scale(step, steps, w_std, config.noise_factor, config.noise_ramp)
            w_noise = torch.stack([torch.randn([rows, c.w_dim], generator=g) for g in gens]).to(device)
            ws = (w_opt + w_noise * scale).expand(n, G.num_ws, c.w_dim)
            noise = _layer_noise(G, noise_params, groups) if groups else None
            synth = G.synthesis(ws, noise_mode="const", noise=noise, dtype=dtype)
            dist = loss(synth, prepared)
            total = dist
            if groups and config.noise_weight > 0:
                total = total + config.noise_weight * noise_regularization(noise_params)
            if config.mse_weight > 0:
                total = total + config.mse_weight * (synth - targets).square().mean(dim=(1, 2, 3))
            opt.zero_grad(set_to_none=True)
            total.sum().backward()
            opt.step()
            normalize_noise_(noise_params)
            if step in record:
                recorded.append(to_uint8(synth.detach()))
            if on_step is not None:
                on_step(step, dist.detach())
    finally:
        for p, flag in zip(G.parameters(), params_grad, strict=True):
            p.requires_grad_(flag)

    with torch.no_grad():
        ws = w_opt.detach().expand(n, G.num_ws, c.w_dim).contiguous()
        noise = _layer_noise(G, [p.detach() for p in noise_params], groups) if groups else None
        images = render_codes(G, ws, noise).to(device)  # exactly what `latentlab generate --latents` renders
        final = loss(images, prepared)
    if noise is None:  # fixed noise: G's stored maps, written out so that the codes re-render exactly
        noise = [
            layer.noise_const.reshape(1, 1, layer.resolution, layer.resolution).expand(n, 1, -1, -1)
            if layer.use_noise else None
            for _, layer in G.synthesis.noise_layers()
        ]  # fmt: skip
    return Projection(
        ws=ws.cpu(),
        noise=[None if x is None else x.detach().cpu().contiguous() for x in noise],
        images=images.cpu(),
        losses=final.cpu(),
        config=config,
        loss_name=getattr(loss, "name", type(loss).__name__),
        frames=np.stack(recorded) if recorded else None,
        meta={"w_std": w_std},
    )


def _start_codes(G: Generator, init: Tensor, n: int) -> Tensor:
    """``init`` checked as ``[n, num_ws, w_dim]`` finite codes."""
    init = torch.as_tensor(init).detach().float()
    if tuple(init.shape) != (n, G.num_ws, G.w_dim):
        raise InvalidInput(f"start codes must be [{n}, {G.num_ws}, {G.w_dim}] (one W+ code per image), "
                           f"got {list(init.shape)}")  # fmt: skip
    if not torch.isfinite(init).all():
        raise InvalidInput("the start codes hold NaN or Inf values")
    return init


def _report(bar: tqdm, images: str, steps: int, step: int, dist: Tensor) -> None:
    bar.update(dist.shape[0])
    if step % 10 == 0 or step == steps - 1:
        bar.set_postfix_str(f"{images} step {step + 1}/{steps} loss {dist.mean().item():.4f}", refresh=False)


def project_chunk(
    G: Generator,
    chunk: Tensor,
    loss: nn.Module,
    config: ProjectConfig,
    w_stats: tuple[Tensor, float],
    frames: int = 0,
    on_step: Callable[[int, Tensor], None] | None = None,
    encoder: nn.Module | None = None,
) -> Projection:
    """:func:`project_batch` of ``chunk`` ``[n, C, R, R]``, started at ``encoder``'s codes when one is given (run in
    ``config.precision``, with ``config.encoder_iterations`` corrections), else at ``w_avg``."""
    init = None
    if encoder is not None:
        with torch.no_grad():
            init = encoder.invert(chunk.to(G.w_avg.device, torch.float32), G, config.encoder_iterations,
                                  dtype=config.precision, space=config.space)  # fmt: skip
    return project_batch(G, chunk, loss, config, w_stats=w_stats, frames=frames, on_step=on_step, init=init)


def iter_projections(
    G: Generator,
    images: Tensor,
    loss: nn.Module,
    config: ProjectConfig = ProjectConfig(),
    batch_size: int = 8,
    frames: int = 0,
    progress: bool = True,
    desc: str = "project",
    encoder: nn.Module | None = None,
) -> Iterator[Projection]:
    """Project ``images`` ``[N, C, R, R]`` (in [-1, 1]) in chunks of ``batch_size``, one progress bar overall.

    With ``encoder`` (an :class:`~latentlab.projection.encoder.Encoder` for G, and ``config.init == "encoder"``)
    each chunk starts at the encoder's codes. Yields one :class:`Projection` per chunk, in order, so callers can
    write results as they come.
    """
    count(batch_size, "batch_size")
    count(frames, "frames", low=0)
    image_batch(images, "images", channels=G.config.img_channels, resolution=G.config.resolution)
    if (encoder is None) != (config.init == "w_avg"):
        raise InvalidInput(f"ProjectConfig.init is {config.init!r}, but an encoder was "
                           f"{'not ' if encoder is None else ''}given")  # fmt: skip
    if encoder is not None:
        encoder.check_generator(G)
    n = images.shape[0]
    w_stats = w_statistics(G, config.w_avg_samples, config.seed, class_idx=config.class_idx)
    bar = tqdm(total=n * max(config.steps, 1), desc=desc, unit="img-step", disable=bar_disable(progress),
               dynamic_ncols=True)  # fmt: skip
    try:
        for start in range(0, n, batch_size):
            chunk = images[start : start + batch_size]
            on_step = functools.partial(_report, bar, f"images {start + len(chunk)}/{n}", config.steps)
            proj = project_chunk(G, chunk, loss, config, w_stats, frames=frames, on_step=on_step, encoder=encoder)
            if config.steps == 0:
                bar.update(len(chunk))
            yield proj
    finally:
        bar.close()


def project(
    G: Generator,
    images: Tensor,
    space: str = "w",
    steps: int = 1000,
    loss: str | nn.Module = "auto",
    batch_size: int = 8,
    progress: bool = True,
    D: nn.Module | None = None,
    download: bool = True,
    encoder: nn.Module | None = None,
    **options: Any,
) -> Projection:
    """Project images into G's W or W+ space.

    Args:
        G: the generator (eval mode; its device is used).
        images: ``[N, C, R, R]`` float in [-1, 1] at G's resolution (see :func:`load_targets` for files).
        space: ``"w"`` or ``"w+"``.
        steps: optimization steps (1000 as in the StyleGAN2 paper).
        loss: a name from :data:`~latentlab.perceptual.LOSSES` or a loss module. ``"auto"`` = LPIPS-VGG
            when its weights are present or downloadable, else the documented offline loss (one line says so).
        batch_size: images optimized together; larger batches are faster per image.
        progress: show a progress bar.
        D: the discriminator, for ``loss="d-features"``.
        download: allow downloading the LPIPS backbone.
        encoder: start from this encoder's codes (:func:`~latentlab.projection.encoder.load_encoder`) instead of
            ``w_avg``; ``steps=0`` returns the encoder's codes rendered.
        **options: any other :class:`ProjectConfig` field (``lr``, ``seed``, ``mse_weight``,
            ``optimize_noise``, ``noise_weight``, ...).
    Returns:
        one :class:`Projection` for all images, in input order.
    """
    from ..perceptual.losses import build_loss

    if isinstance(loss, str):
        loss_name = loss
        loss = build_loss(loss, D=D, download=download, resolution=G.img_resolution).to(G.w_avg.device)
    else:
        loss_name = getattr(loss, "name", type(loss).__name__)
    init = "w_avg" if encoder is None else "encoder"
    config = ProjectConfig(space=space, steps=steps, loss=loss_name, init=init, **options)
    parts = list(iter_projections(G, images, loss, config, batch_size=batch_size, progress=progress, encoder=encoder))
    return concat_projections(parts)


def concat_projections(parts: list[Projection]) -> Projection:
    """One :class:`Projection` from chunks made with the same config."""
    if not parts:
        raise ValueError("nothing to concatenate")
    first = parts[0]
    noise = [None if x is None else torch.cat([p.noise[i] for p in parts]) for i, x in enumerate(first.noise)]
    frames = None
    if first.frames is not None:
        frames = np.concatenate([p.frames for p in parts], axis=1)
    return Projection(
        ws=torch.cat([p.ws for p in parts]), noise=noise, images=torch.cat([p.images for p in parts]),
        losses=torch.cat([p.losses for p in parts]), config=first.config, loss_name=first.loss_name,
        frames=frames, meta=dict(first.meta),
    )  # fmt: skip


def config_dict(config: ProjectConfig) -> dict[str, Any]:
    """The config as a JSON-ready dict."""
    return asdict(config)
