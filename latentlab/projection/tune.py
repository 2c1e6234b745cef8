"""Pivotal tuning (Roich et al. 2022, "Pivotal Tuning for Latent-based Editing of Real Images", PTI).

A W code found by the projector is the *pivot*; the synthesis network's weights are then tuned so that the
pivot renders the target exactly, while codes around it keep meaning what they meant, so edits of the pivot
keep working. PTI's defaults (its ``configs/hyperparameters.py``):

* Adam, learning rate 3e-4, at most 350 steps, on every synthesis weight;
* the loss ``1.0 * MSE + 1.0 * LPIPS-AlexNet`` between the pivot's rendering (constant noise) and the target,
  both in [-1, 1]; it stops as soon as LPIPS is at or under 0.06 (checked before each step, as PTI does);
* the locality regularization, off by default in PTI: each step, ``samples`` codes ``w_s`` mapped at psi 0.5
  are moved to radius 30 from the pivot (``pivot + 30 (w_s - pivot) / ||w_s - pivot||``) and the tuned
  synthesis must render them as the original did (no noise), weighted 0.1 MSE + 0.1 LPIPS.

PTI tunes ``G.parameters()``, the mapping network included, but nothing in its loss reaches the mapping
network (the pivot is a W code and the locality samples come from the original G), so tuning the synthesis
alone is the same optimization; only the synthesis is saved (:mod:`latentlab.io.tuned`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..nn.generator import Generator
from ..utils import bar_disable
from ..validate import InvalidInput, image_batch, number_fields

PTI_THRESHOLD = 0.06  # PTI's LPIPS_value_threshold, set for 1024-px FFHQ


def auto_lpips_threshold(resolution: int) -> float:
    """The early-stopping LPIPS for a model of this resolution: PTI's 0.06 from 256 px, 0 (every step) below.

    Measured on the embedded 64-px model (``benchmarks/bench_photos.py``, RESULTS.md): AlexNet sees a small image
    enlarged, its LPIPS falls under 0.06 after about 30 steps while PSNR and LPIPS-VGG are still worse than the W
    projection's, and all 350 steps give 4.7 dB more and edits as strong as W's. At 256 px and above PTI's own
    value is kept (not measured here).
    """
    return PTI_THRESHOLD if int(resolution) >= 256 else 0.0


@dataclass(frozen=True)
class TuneConfig:
    """PTI's hyperparameters (defaults = the paper's code)."""

    steps: int = 350  # max_pti_steps
    lr: float = 3e-4  # pti_learning_rate
    lpips_threshold: float = PTI_THRESHOLD  # stop when the pivot's LPIPS is at or under it (auto_lpips_threshold)
    l2_weight: float = 1.0  # pt_l2_lambda
    lpips_weight: float = 1.0  # pt_lpips_lambda
    locality: bool = False  # use_locality_regularization
    locality_l2: float = 0.1  # regulizer_l2_lambda
    locality_lpips: float = 0.1  # regulizer_lpips_lambda
    locality_radius: float = 30.0  # regulizer_alpha
    locality_psi: float = 0.5  # the truncation of the sampled codes
    locality_samples: int = 1  # latent_ball_num_of_samples
    locality_interval: int = 1  # locality_regularization_interval
    seed: int = 0  # seeds the locality samples
    loss: str = "lpips-alex"  # the LPIPS network's name (PTI: AlexNet)
    # the tuned synthesis' arithmetic while tuning: "fp32", "bf16" (CPUs with AVX-512 BF16 or AMX, CUDA) or "fp16"
    # (CUDA, models with fp16 layers). The weights, Adam and the losses stay fp32; the final distances are fp32.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        from ..nn.synthesis import PRECISIONS
        from ..validate import Bound, string

        string(self.precision, "precision", where="TuneConfig", choices=tuple(PRECISIONS))

        number_fields(self, {
            "steps": Bound(0, 10**6, integer=True), "lr": Bound(0, 1, low_open=True),
            "lpips_threshold": Bound(0, 10), "l2_weight": Bound(0, 1e6), "lpips_weight": Bound(0, 1e6),
            "locality_l2": Bound(0, 1e6), "locality_lpips": Bound(0, 1e6), "locality_radius": Bound(0, 1e4),
            "locality_psi": Bound(-2, 2), "locality_samples": Bound(1, 1024, integer=True),
            "locality_interval": Bound(1, 10**6, integer=True), "seed": Bound(0, 2**63 - 1, integer=True),
        }, "TuneConfig")  # fmt: skip


@dataclass
class Tuned:
    """One image's pivotal tuning.

    Attributes:
        G: the tuned generator (a copy; the base is unchanged), eval mode, gradients off.
        pivot: ``[1, num_ws, w_dim]`` the code it was tuned around.
        steps: the steps taken (fewer than ``config.steps`` when the LPIPS threshold stopped it).
        lpips, l2: the pivot's final distances to the target (LPIPS with the tuning's network; MSE on [-1, 1]),
            rendered in float32 whatever ``config.precision``.
        history: ``(step, lpips, l2)`` before each step taken, and the final state (rendered in float32).
        seconds: wall time of the tuning.
    """

    G: Generator
    pivot: Tensor
    steps: int
    lpips: float
    l2: float
    config: TuneConfig
    history: list[tuple[int, float, float]] = field(default_factory=list)
    seconds: float = 0.0

    def meta(self) -> dict[str, Any]:
        """JSON-ready: the config, steps, final distances and time."""
        return {"config": asdict(self.config), "steps": self.steps, "lpips": self.lpips, "l2": self.l2,
                "seconds": round(self.seconds, 3)}  # fmt: skip


def _pivot_ws(G: Generator, pivot: Tensor) -> Tensor:
    p = torch.as_tensor(pivot, dtype=torch.float32)
    if p.ndim == 1:
        p = p[None]
    if p.ndim == 2 and p.shape[-1] == G.w_dim and p.shape[0] in (1, G.num_ws):
        p = p[None] if p.shape[0] == G.num_ws else p[:, None].expand(1, G.num_ws, G.w_dim)
    if p.shape != (1, G.num_ws, G.w_dim):
        raise InvalidInput(f"the pivot must be one W code [w_dim] / [1, w_dim] or W+ code [num_ws, w_dim] / "
                           f"[1, num_ws, w_dim] with w_dim {G.w_dim}, num_ws {G.num_ws}; "
                           f"got {list(p.shape)}")  # fmt: skip
    if not torch.isfinite(p).all():
        raise InvalidInput("the pivot holds NaN or Inf values")
    return p.to(G.w_avg.device).contiguous()


def tune(
    G: Generator,
    target: Tensor,
    pivot: Tensor,
    lpips: nn.Module,
    config: TuneConfig = TuneConfig(),
    progress: bool = False,
    on_step: Callable[[int, float, float], None] | None = None,
) -> Tuned:
    """Tune a copy of ``G``'s synthesis network around ``pivot`` until it renders ``target`` (PTI).

    Args:
        G: the base generator (not changed).
        target: ``[1, C, R, R]`` in [-1, 1] at G's resolution.
        pivot: the W (``[1, w_dim]``) or W+ (``[1, num_ws, w_dim]``) code from the projector.
        lpips: an :class:`~latentlab.perceptual.LPIPSLoss` (PTI: ``LPIPSLoss("alex")``), on G's device.
        config: :class:`TuneConfig` (PTI's defaults).
        progress: show a progress bar.
        on_step: called with ``(step, lpips, l2)`` before each step.
    Returns:
        :class:`Tuned`.
    """
    image_batch(target, "target", channels=G.img_channels, resolution=G.img_resolution)
    if target.shape[0] != 1:
        raise InvalidInput(f"tune takes one target image [1, C, R, R], got {list(target.shape)}; tune each image")
    device = G.w_avg.device
    dtype = G.synthesis.resolve_dtype(config.precision, device)  # before any work: fp16 can be refused
    target = target.to(device, torch.float32)
    ws = _pivot_ws(G, pivot)
    t0 = time.perf_counter()
    base = G
    Gt = copy.deepcopy(G).eval()
    Gt.requires_grad_(False)
    params = [p for p in Gt.synthesis.parameters() if p.dtype.is_floating_point]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=config.lr)
    prepared = lpips.prepare(target)
    gen = torch.Generator().manual_seed(int(config.seed))
    history: list[tuple[int, float, float]] = []
    steps = 0
    bar = tqdm(total=config.steps, desc="tune", unit="step", disable=bar_disable(progress))
    d_lpips = d_l2 = float("nan")
    for step in range(config.steps + 1):
        img = Gt.synthesis(ws, noise_mode="const", dtype=dtype)
        l2 = F.mse_loss(img, target)
        dist = lpips(img, prepared).mean()
        d_lpips, d_l2 = float(dist.detach()), float(l2.detach())
        history.append((step, d_lpips, d_l2))
        if on_step is not None:
            on_step(step, d_lpips, d_l2)
        if step == config.steps or d_lpips <= config.lpips_threshold:
            break
        loss = config.l2_weight * l2 + config.lpips_weight * dist
        if config.locality and step % config.locality_interval == 0:
            loss = loss + _locality(base, Gt, ws, lpips, config, gen, dtype)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        bar.update(1)
        bar.set_postfix(lpips=f"{d_lpips:.4f}", refresh=False)
    bar.close()
    Gt.requires_grad_(False)
    if dtype != torch.float32:  # the result is used in float32: report its distances as float32 renders it
        with torch.no_grad():
            img = Gt.synthesis(ws, noise_mode="const")
            d_lpips, d_l2 = float(lpips(img, prepared).mean()), float(F.mse_loss(img, target))
        history[-1] = (steps, d_lpips, d_l2)
    return Tuned(Gt, ws.detach().cpu(), steps, d_lpips, d_l2, config, history, time.perf_counter() - t0)


def _locality(base: Generator, Gt: Generator, ws: Tensor, lpips: nn.Module, config: TuneConfig,
              gen: torch.Generator, dtype: torch.dtype = torch.float32) -> Tensor:  # fmt: skip
    """PTI's ``Space_Regulizer``: codes at ``radius`` from the pivot must render as the base G rendered them."""
    device = ws.device
    z = torch.randn([config.locality_samples, base.z_dim], generator=gen).to(device)
    with torch.no_grad():
        w = base.mapping(z, None, truncation_psi=config.locality_psi)  # [S, num_ws, w_dim]
        d = w - ws
        norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
        w_r = ws + config.locality_radius * d / norm
        old = base.synthesis(w_r, noise_mode="none", dtype=dtype)
    new = Gt.synthesis(w_r, noise_mode="none", dtype=dtype)
    loss = 0.0
    if config.locality_l2 > 0:
        loss = loss + config.locality_l2 * F.mse_loss(new, old)
    if config.locality_lpips > 0:
        loss = loss + config.locality_lpips * lpips(new, lpips.prepare(old)).mean()
    return loss


def pivot_config(seed: int = 0, steps: int = 450, lr: float = 5e-3, loss: str = "auto", init: str = "w_avg",
                 precision: str = "fp32", encoder_iterations: int | None = None) -> Any:  # fmt: skip
    """PTI's first inversion as a :class:`~latentlab.projection.ProjectConfig`: W, 450 steps, peak lr 5e-3, and
    G's constant noise kept (not optimized), as the tuning renders the pivot; ``init="encoder"`` starts it at an
    encoder's code (with ``encoder_iterations`` corrections; None = the encoder's own default); ``precision`` is
    the search's (``ProjectConfig.precision``)."""
    from .projector import ProjectConfig

    return ProjectConfig(space="w", steps=steps, lr=lr, optimize_noise=False, seed=seed, loss=loss, init=init,
                         precision=precision, encoder_iterations=encoder_iterations)  # fmt: skip


def project_pivots(G: Generator, targets: Tensor, pivot_loss: nn.Module, config: Any = None,
                   batch_size: int = 8, encoder: nn.Module | None = None) -> Tensor:  # fmt: skip
    """The pivots of several images, projected ``batch_size`` at a time (each image is independent).

    Args:
        G: the base generator.
        targets: ``[N, C, R, R]`` in [-1, 1].
        pivot_loss: the projector's distance.
        config: a :class:`~latentlab.projection.ProjectConfig` (default :func:`pivot_config`); with
            ``optimize_noise`` the optimized noise is dropped, since the tuning renders with G's constant noise.
        encoder: start from this encoder's codes (``config.init == "encoder"``; ``config.steps`` 0 = the encoder's
            code is the pivot).
    Returns:
        ``[N, num_ws, w_dim]`` on G's device.
    """
    from .projector import iter_projections

    config = pivot_config() if config is None else config
    parts = iter_projections(G, targets, pivot_loss, config, batch_size=batch_size, progress=False, encoder=encoder)
    return torch.cat([proj.ws.to(G.w_avg.device) for proj in parts])


def tune_to_folder(
    G: Generator,
    targets: Any,
    outdir: Any,
    base_ref: str,
    *,
    lpips: nn.Module,
    pivot_loss: nn.Module,
    config: TuneConfig = TuneConfig(),
    pivot: Any = None,
    batch_size: int = 8,
    progress: bool = True,
    encoder: nn.Module | None = None,
    world: Any = None,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """``latentlab tune`` (and ``project --tune``): pivots from the projector, then :func:`tune` per image.

    Per target ``<name>``: ``<name>.safetensors`` (the tuned generator, :func:`latentlab.io.tuned.save_tuned`),
    ``<name>.npz`` (the pivot, NVIDIA's ``--projected-w`` layout), ``<name>.png`` (the tuned model's rendering of
    the pivot) and ``<name>-compare.png`` (target | pivot before tuning | after); ``summary.json`` lists, per image,
    the pivot's and the tuned model's LPIPS and MSE, the steps and the seconds.

    Args:
        G: the base generator.
        targets: :class:`~latentlab.data.targets.Targets` (from :func:`~latentlab.data.targets.load_targets`).
        outdir: the output folder.
        base_ref: the base model's registry name or path, recorded in every tuned file.
        lpips: the tuning's LPIPS module (PTI: AlexNet).
        pivot_loss: the projector's distance for the pivot.
        config: :class:`TuneConfig`.
        pivot: the pivots' :class:`~latentlab.projection.ProjectConfig` (default :func:`pivot_config`: PTI's
            450 W steps at lr 5e-3 with G's constant noise); a W+ config makes W+ pivots.
        batch_size: pivots projected together (the tunings run one after another: each is its own copy of G).
        encoder: the pivots' projection starts from this encoder's codes (``pivot.init == "encoder"``).
        world: the processes of a ``torchrun`` job (:class:`latentlab.parallel.World`); None = this one. Chunk
            ``k`` of ``batch_size`` images (its pivots, then its tunings) is made and written by process
            ``k % size``; rank 0 rewrites ``summary.json`` after every round. Results are bit-identical to a
            one-process run with the same ``batch_size`` and threads (the ``seconds`` column aside).
        resume: skip the targets whose four files are all in ``outdir`` (:func:`completed_tunings`); their rows
            come from their tuned files. Chunks are cut from all the targets and one with an unfinished image is
            redone whole, so a resumed job with the same ``batch_size`` writes what an uninterrupted one would.
    Returns:
        The summary rows, in target order.
    Raises:
        ShardFailed: with several processes, when one failed (naming its images); finished files are kept.
        InvalidInput: with ``resume``, a target's tuned file made with other settings, base or pivot.
    """
    import json
    from pathlib import Path

    from tqdm.auto import tqdm

    from ..io.atomic import atomic_path
    from ..io.images import make_grid, save_image, to_uint8
    from ..io.latents import save_latents
    from ..io.tuned import save_tuned
    from ..parallel import World, chunked, map_tasks
    from ..validate import count

    count(batch_size, "batch_size")
    world = world if world is not None else World()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    device = G.w_avg.device
    pconfig = pivot_config(loss=getattr(pivot_loss, "name", "loss")) if pivot is None else pivot
    names = _unique_stems(targets.paths)
    # rank 0 reads the folder (the others wait for it, so nothing is written before every process has the plan)
    found = world.from_main(lambda: completed_tunings(outdir, names, targets.paths, base_ref, config, pconfig)) \
        if resume else {}  # fmt: skip
    # chunks cut from all the targets; one a kill left unfinished is redone whole (the same batch mates, the same
    # pivots bit for bit)
    chunks = [c for c in chunked(len(names), batch_size) if any(i not in found for i in c)]
    todo = {i for c in chunks for i in c}
    found = {i: r for i, r in found.items() if i not in todo}
    bar = tqdm(total=len(todo), desc="tune", unit="img", disable=world.bar_disable(progress and world.size > 1))

    def run(k: int) -> list[dict[str, Any]]:
        idx = chunks[k]
        t0 = time.perf_counter()
        pivots = project_pivots(G, targets.images[idx], pivot_loss, pconfig, batch_size, encoder=encoder)
        pivot_seconds = (time.perf_counter() - t0) / len(idx)
        out = []
        for i, ws in zip(idx, pivots, strict=True):
            path, name = targets.paths[i], names[i]
            target = targets.images[i][None].to(device, torch.float32)
            t0 = time.perf_counter()
            ws = ws[None]
            with torch.no_grad():
                before = G.synthesis(ws, noise_mode="const")
                lp_before = float(lpips(before, lpips.prepare(target)).mean())
                l2_before = float(F.mse_loss(before, target))
            result = tune(G, target, ws, lpips, config, progress=progress and world.size == 1)
            with torch.no_grad():
                after = result.G.synthesis(ws, noise_mode="const")
            meta = {**result.meta(), "pivot": {"space": pconfig.space, "steps": pconfig.steps, "lr": pconfig.lr,
                                               "lpips": lp_before, "l2": l2_before, "loss": pconfig.loss,
                                               "init": pconfig.init, "encoder_iterations": pconfig.encoder_iterations,
                                               "seconds": round(pivot_seconds, 3)}}  # fmt: skip
            save_tuned(outdir / f"{name}.safetensors", result.G, G, base_ref, ws, meta, image=str(path))
            code_meta = {"network": base_ref, "space": pconfig.space, "pivot": True, "tuned": f"{name}.safetensors"}
            save_latents(outdir / f"{name}.npz", ws[0].cpu(), meta=code_meta)
            save_image(outdir / f"{name}.png", to_uint8(after)[0])
            strip = np.concatenate([to_uint8(target), to_uint8(before), to_uint8(after)])
            save_image(outdir / f"{name}-compare.png", make_grid(strip, cols=3))
            out.append({"image": str(path), "tuned": f"{name}.safetensors", "pivot_lpips": lp_before,
                        "pivot_l2": l2_before, "lpips": result.lpips, "l2": result.l2, "steps": result.steps,
                        "seconds": round(time.perf_counter() - t0 + pivot_seconds, 3)})  # fmt: skip
        return out

    def rows_so_far(done: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        rows = dict(found)
        for k, part in done.items():
            rows.update(zip(chunks[k], part, strict=True))
        return [rows[i] for i in sorted(rows)]

    def write_summary(finished: list[dict[str, Any]]) -> None:
        if world.is_main:  # rewritten after every round: an interrupted job keeps the summary of what it made
            summary = {"network": base_ref, "config": asdict(config), "pivot": asdict(pconfig), "rows": finished}
            if resume:
                summary["resumed"] = len(found)  # images not tuned again
            if world.size > 1:
                summary["processes"] = world.size
            with atomic_path(outdir / "summary.json") as tmp:
                tmp.write_text(json.dumps(summary, indent=1) + "\n")

    def on_round(done: dict[int, list[dict[str, Any]]], fresh: list[int]) -> None:
        bar.update(sum(len(chunks[k]) for k in fresh))
        write_summary(rows_so_far(done))

    def describe(k: int) -> str:
        return "images " + ", ".join(str(targets.paths[i]) for i in chunks[k])

    try:
        parts = map_tasks(world, len(chunks), run, on_round=on_round, describe=describe)
    finally:
        bar.close()
    rows = rows_so_far(dict(enumerate(parts)))
    if not chunks:
        write_summary(rows)
    return rows


def completed_tunings(outdir: Any, names: list[str], paths: list[Any], base_ref: str, config: TuneConfig,
                      pivot: Any) -> dict[int, dict[str, Any]]:  # fmt: skip
    """The summary rows of the targets whose tuning outputs in ``outdir`` are complete, by target index.

    Complete: ``<name>.safetensors``, ``.npz``, ``.png`` and ``-compare.png`` are there, and the tuned file records
    this image, this base model, this :class:`TuneConfig` and these pivot settings. Each file is written atomically
    and the tuned model first, so a killed job leaves every target complete or redone.

    Raises:
        InvalidInput: a tuned file of one of these images made with other settings (resuming would mix two
            experiments in one folder).
    """
    from pathlib import Path

    from ..io.checkpoint import CheckpointError
    from ..io.tuned import read_tuned
    from ..validate import InvalidInput

    outdir = Path(outdir)
    want = asdict(config)
    want_pivot = {"space": pivot.space, "steps": pivot.steps, "lr": pivot.lr, "loss": pivot.loss, "init": pivot.init,
                  "encoder_iterations": pivot.encoder_iterations}  # files from before it existed read as None
    done: dict[int, dict[str, Any]] = {}
    for i, (name, path) in enumerate(zip(names, paths, strict=True)):
        files = [outdir / f"{name}{suffix}" for suffix in (".safetensors", ".npz", ".png", "-compare.png")]
        if not files[0].is_file():
            continue
        try:
            info, _ = read_tuned(files[0], tensors=False)
        except CheckpointError:
            continue  # unreadable: tuned again (the new file replaces it atomically)
        if info["image"] != str(path):
            continue  # another input with the same name: redone and overwritten
        tune = info["tune"] if isinstance(info["tune"], dict) else {}
        had = {"precision": "fp32", **(tune.get("config") or {})}  # files from before precision existed
        had_pivot = tune.get("pivot") if isinstance(tune.get("pivot"), dict) else {}
        differ = [] if info["base"].get("network") == base_ref else [
            f"base {info['base'].get('network')!r:.80} (now {base_ref!r:.80})"]  # fmt: skip
        differ += [f"{k} {had.get(k)!r:.40} (now {v!r:.40})" for k, v in want.items() if had.get(k) != v]
        differ += [f"pivot {k} {had_pivot.get(k)!r:.40} (now {v!r:.40})" for k, v in want_pivot.items()
                   if had_pivot.get(k) != v]  # fmt: skip
        if differ:
            raise InvalidInput(f"{files[0]}: tuned with other settings than this run: {', '.join(differ)}; use a new "
                               f"--outdir, or the same options to resume")  # fmt: skip
        if not all(f.is_file() for f in files):
            continue
        done[i] = {"image": str(path), "tuned": files[0].name, "pivot_lpips": had_pivot.get("lpips"),
                   "pivot_l2": had_pivot.get("l2"), "lpips": tune.get("lpips"), "l2": tune.get("l2"),
                   "steps": tune.get("steps"),
                   "seconds": round(float(tune.get("seconds", 0)) + float(had_pivot.get("seconds", 0)), 3)}  # fmt: skip
    return done


def _unique_stems(paths: list[Any]) -> list[str]:
    """Output names per input: the file's stem, with ``-1``, ``-2``, ... for repeated stems (a/x.png, b/x.png)."""
    from pathlib import Path

    used: dict[str, int] = {}
    out = []
    for p in paths:
        stem = Path(p).stem
        n = used.get(stem, 0)
        used[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}-{n}")
    return out
