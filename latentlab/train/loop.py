"""The StyleGAN2 training loop: phases, G_ema, snapshots, statistics, resume, many processes.

One iteration (one minibatch of ``batch`` real images) runs the phases of NVIDIA's loop in their order:
``Gmain``, ``Greg`` (every ``pl_interval``), ``Dmain``, ``Dreg`` (every ``r1_interval``), each with its own
latents and its own optimizer step, then updates G_ema. Every ``snap`` kimg the run folder gets:

* ``network-snapshot-<kimg>.safetensors``: G, G_ema and D (the native checkpoint);
* ``training-state-<kimg>.pt``: optimizers, counters, random-generator states, data position, running
  path-length mean (``torch.load(weights_only=True)``-safe), naming the network file it belongs with;
* ``samples-<kimg>.png``: G_ema on fixed seeds.

Files are written atomically, the network before the state, and old pairs are deleted only after a new pair
is complete; resuming picks the newest complete pair. So killing the process at any moment leaves a run
that resumes, and a resumed CPU run computes bit for bit what an uninterrupted one does.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.datasets import ImageDataset
from ..io.atomic import atomic_path, remove_temporaries
from ..io.checkpoint import Checkpoint, CheckpointError, load_checkpoint, load_state_file, save_checkpoint
from ..io.images import make_grid, save_image, to_uint8
from ..nn.config import DiscriminatorConfig, get_preset
from ..nn.discriminator import Discriminator
from ..nn.generator import Generator, seed_to_z
from ..utils import resolve_device
from ..validate import InvalidInput
from .augment import AdaptiveP, AugmentPipe
from .config import TrainConfig, check_growing_arch, ema_beta, lazy_adam_hparams
from .distributed import World, init_world
from .growing import Phase, lod_changed, process_reals
from .loss import Inputs, StyleGAN2Loss
from .sampling import IndexStream

STATE_FORMAT = "latentlab-training-state"
STATE_VERSION = 1
_SNAPSHOT_RE = re.compile(r"^training-state-(\d{6}\.\d{3})\.pt$")


def kimg_tag(nimg: int) -> str:
    """``"000010.008"`` for 10008 images: snapshot names sort by progress and read as kimg."""
    return f"{nimg // 1000:06d}.{nimg % 1000:03d}"


@dataclass
class TrainResult:
    """Where a finished run left its files."""

    outdir: Path
    snapshot: Path  # the last network snapshot
    state: Path  # its training state
    cur_nimg: int
    stats: list[dict[str, Any]]  # the stats.jsonl rows written by this call


class Trainer:
    """Holds the networks, optimizers, data stream and random state of one run; :meth:`step` trains.

    Args:
        config: the run's :class:`TrainConfig`.
        world: this process's place in a data-parallel group (default: from the environment).
        dataset: an opened dataset (default: ``config.data`` at the network's resolution).
    """

    def __init__(self, config: TrainConfig, world: World | None = None, dataset: ImageDataset | None = None):
        self.config = cfg = config
        device = resolve_device(cfg.device)
        self.world = world if world is not None else init_world(device)
        # every process must train the same run (threads and the bar may differ per machine)
        self.world.agree("latentlab train", {k: v for k, v in cfg.to_dict().items()
                                             if k not in ("threads", "progress")})  # fmt: skip
        device = self.world.device(device)  # cuda: this process's GPU (shared when there are fewer GPUs)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        self.device = device
        for batch in [cfg.batch, *(b for _, b in cfg.batch_dict or ())]:
            if batch % self.world.size:
                raise ValueError(f"batch ({batch}) must be divisible by the number of processes ({self.world.size})")
        if (cfg.batch // cfg.pl_batch_shrink) % self.world.size:
            raise ValueError(f"the path-length batch ({cfg.batch // cfg.pl_batch_shrink}) must be divisible by "
                             f"the number of processes ({self.world.size})")  # fmt: skip
        init = _load_init(cfg.init) if cfg.init is not None else None
        if init is not None and (cfg.channel_base is not None or cfg.channel_max is not None):
            init = _widen_init(init, cfg)
        g_cfg, d_cfg = cfg.networks(c_dim=0) if init is None else (init.G.config, _d_config(init))
        if g_cfg.arch != d_cfg.arch:
            raise InvalidInput(f"{cfg.init}: its G is {g_cfg.arch} but its D is {d_cfg.arch}")
        check_growing_arch(cfg, g_cfg.arch)
        self.growing = cfg.lod_initial_resolution is not None
        if self.growing:
            cfg.phase(0, g_cfg.resolution)  # the schedule fits the network (an init file's resolution)
        if dataset is None:
            dataset = ImageDataset(cfg.data, resolution=g_cfg.resolution, crop=cfg.crop,
                                   channels=g_cfg.img_channels, xflip=cfg.xflip, use_labels=cfg.cond)  # fmt: skip
        self.dataset = dataset
        if cfg.cond and dataset.c_dim == 0:
            raise ValueError(f"cond=True, but {dataset.path} has no labels (dataset.json)")
        if init is None:
            g_cfg, d_cfg = cfg.networks(c_dim=dataset.c_dim)
        elif g_cfg.c_dim != (dataset.c_dim if cfg.cond else 0):
            raise ValueError(f"{cfg.init} is conditioned on {g_cfg.c_dim} labels, but this run has "
                             f"{dataset.c_dim if cfg.cond else 0} (cond={cfg.cond})")  # fmt: skip

        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            self.G = Generator(g_cfg).train().requires_grad_(False).to(self.device)
            self.D = Discriminator(d_cfg).train().requires_grad_(False).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval()
        if init is not None:
            self.G.load_state_dict(init.G.state_dict())
            self.G_ema.load_state_dict(init.G_ema.state_dict())
            if init.D is not None:  # else the seeded fresh D above
                self.D.load_state_dict(init.D.state_dict())
        self.world.broadcast_([*self.G.parameters(), *self.G.buffers(), *self.D.parameters(), *self.D.buffers()])

        # The fused Adam kernel (CPU and CUDA) updates all parameters in one pass: 4% of a CPU iteration.
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        lr, betas = lazy_adam_hparams(cfg.lr_G, cfg.betas, cfg.pl_interval if cfg.pl_weight > 0 else None)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas, eps=cfg.eps, **fused)
        self.r1_gamma = cfg.r1_gamma(g_cfg.resolution)
        lr, betas = lazy_adam_hparams(cfg.lr_D, cfg.betas, cfg.r1_interval if self.r1_gamma > 0 else None)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas, eps=cfg.eps, **fused)
        self.loss = StyleGAN2Loss(self.G, self.D, self.world, r1_gamma=self.r1_gamma, pl_weight=cfg.pl_weight,
                                  pl_decay=cfg.pl_decay,
                                  dtype=self.G.synthesis.resolve_dtype(cfg.precision, self.device))  # fmt: skip

        # All draws are for the global batch and identical in every process (see distributed.py).
        self.rng = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.stream = IndexStream(len(dataset), seed=cfg.seed)
        # A latentlab training snapshot as init continues its image count (NVIDIA's resume_kimg), so the
        # G_ema ramp-up does not start over; other files start at 0.
        self.cur_nimg = int(init.meta.get("cur_nimg", 0)) if init is not None else 0
        self.batch_idx = 0
        self.lod: float | None = None  # growing: the level of detail of the last minibatch (None = none yet)
        self.mbstd_group = d_cfg.mbstd_group_size if d_cfg.mbstd_num_channels > 0 else None
        self._noise_shapes = [layer.resolution for _, layer in self.G.synthesis.noise_layers()]
        self.augment_pipe = AugmentPipe(p=cfg.aug_p) if cfg.augment != "none" else None
        self.ada = AdaptiveP(self.augment_pipe, target=cfg.ada_target, interval=cfg.ada_interval,
                             ada_kimg=cfg.ada_kimg) if cfg.augment == "ada" else None  # fmt: skip
        # Decoding threads: Pillow and NumPy release the GIL, and the order of the batch does not depend on
        # which thread finishes first, so results stay exact.
        self._pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="decode") if cfg.workers > 0 else None

    # ---------------------------------------------------------------------------------------------
    # Random inputs.

    def _draw(self, n: int, rows: slice | torch.Tensor, layers: int | None = None) -> Inputs:
        """Latents, labels, mixing and noise for a global batch of ``n``; returns this process's ``rows``.

        The style-mixing cut-off is drawn in ``[1, layers)``: the layers that reach the image (default all).
        """
        G, dev, rng = self.G, self.device, self.rng
        z = torch.randn([n, max(G.z_dim, 1)], device=dev, generator=rng)[:, : G.z_dim]
        mix_z = torch.randn([n, max(G.z_dim, 1)], device=dev, generator=rng)[:, : G.z_dim]
        cutoff = G.num_ws
        layers = G.num_ws if layers is None else layers
        if self.config.style_mixing > 0:
            draw = torch.randint(1, layers, [], device=dev, generator=rng) if layers > 1 else None
            if torch.rand([], device=dev, generator=rng) < self.config.style_mixing and draw is not None:
                cutoff = int(draw)
        if self.dataset.c_dim and G.c_dim:
            idx = torch.randint(len(self.dataset), [n], device=dev, generator=rng).cpu()
            c = torch.from_numpy(self.dataset.labels[idx.numpy() % self.dataset.num_images]).to(dev)
        else:
            c = torch.zeros([n, 0], device=dev)
        noise = [torch.randn([n, 1, r, r], device=dev, generator=rng) for r in self._noise_shapes]
        return Inputs(z[rows], c[rows], mix_z[rows], cutoff, [t[rows] for t in noise])

    def _rand(self, n: int, rows: slice | torch.Tensor) -> Callable[..., torch.Tensor]:
        """``rand(kind, *shape)``: this process's rows of a ``[n, *shape]`` uniform/normal global draw."""

        def rand(kind: str, *shape: int) -> torch.Tensor:
            draw = torch.rand if kind == "uniform" else torch.randn
            return draw([n, *shape], device=self.device, generator=self.rng)[rows]

        return rand

    def _reals(self, batch: int, lod: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's rows of the next global minibatch of ``batch`` real images (as seen at ``lod``) and
        their labels."""
        indices = self.stream.take(batch)
        rows = self.world.rows(batch, self.mbstd_group)
        local = indices[rows.numpy() if isinstance(rows, torch.Tensor) else rows]
        img, c = self.dataset.batch(local, pool=self._pool)
        return process_reals(img.to(self.device), lod), c.to(self.device)

    def _enter_phase(self, phase: Phase) -> None:
        """Set the level of detail and learning rates of a growing run; fresh optimizers at a new level."""
        cfg = self.config
        for net in (self.G.synthesis, self.G_ema.synthesis, self.D):
            net.lod.fill_(phase.lod)
        if lod_changed(self.lod, phase.lod):
            self.opt_G.state.clear()
            self.opt_D.state.clear()
        self.lod = phase.lod
        lr_G, _ = lazy_adam_hparams(phase.lr_G, cfg.betas, cfg.pl_interval if cfg.pl_weight > 0 else None)
        lr_D, _ = lazy_adam_hparams(phase.lr_D, cfg.betas, cfg.r1_interval if self.r1_gamma > 0 else None)
        for opt, lr in ((self.opt_G, lr_G), (self.opt_D, lr_D)):
            for group in opt.param_groups:
                group["lr"] = lr

    def close(self) -> None:
        """Stop the image-decoding threads (if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # ---------------------------------------------------------------------------------------------
    # One iteration.

    def _run_phase(self, module: torch.nn.Module, opt: torch.optim.Optimizer, fn: Callable[[], dict]) -> dict:
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        stats = fn()
        module.requires_grad_(False)
        params = [p for p in module.parameters()]
        self.world.sync_grads(params)
        for p in params:
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        return stats

    def step(self) -> dict[str, torch.Tensor]:
        """Train on one minibatch (all due phases and the G_ema update); returns per-sample statistics."""
        cfg, world, loss = self.config, self.world, self.loss
        stats: dict[str, torch.Tensor] = {}
        phase = cfg.phase(self.cur_nimg, self.G.img_resolution) if self.growing else None
        batch, lod, layers = cfg.batch, 0.0, None
        if phase is not None:
            self._enter_phase(phase)
            batch, lod, layers = phase.batch, phase.lod, phase.layers_in_use(self.G.num_ws)
        real, real_c = self._reals(batch, lod)
        d_rows = world.rows(batch, self.mbstd_group)
        if self.augment_pipe is not None:
            pipe, rand = self.augment_pipe, self._rand(batch, d_rows)
            loss.augment = lambda img: pipe(img, rand)

        inp = self._draw(batch, d_rows, layers)
        stats |= self._run_phase(self.G, self.opt_G, lambda: loss.G_main(inp))
        if cfg.pl_weight > 0 and self.batch_idx % cfg.pl_interval == 0:
            n = batch // cfg.pl_batch_shrink
            inp = self._draw(n, world.rows(n), layers)
            res = self.G.img_resolution
            pl_noise = torch.randn([n, self.G.img_channels, res, res], device=self.device, generator=self.rng)
            pl_noise = pl_noise[world.rows(n)] / math.sqrt(res * res)
            stats |= self._run_phase(self.G, self.opt_G, lambda: loss.G_reg(inp, pl_noise, gain=cfg.pl_interval))

        inp = self._draw(batch, d_rows, layers)
        due_r1 = self.r1_gamma > 0 and self.batch_idx % cfg.r1_interval == 0
        if cfg.r1_interval == 1 and due_r1:  # no lazy regularization: one step with both terms
            stats |= self._run_phase(self.D, self.opt_D, lambda: loss.D_main(inp, real, real_c)
                                     | loss.D_reg(real, real_c, gain=1))  # fmt: skip
        else:
            stats |= self._run_phase(self.D, self.opt_D, lambda: loss.D_main(inp, real, real_c))
            if due_r1:
                stats |= self._run_phase(self.D, self.opt_D, lambda: loss.D_reg(real, real_c, gain=cfg.r1_interval))

        self._update_ema(batch)
        self.cur_nimg += batch
        self.batch_idx += 1
        if self.ada is not None:
            signs = stats["Loss/signs/real"]
            total = torch.stack([signs.sum(), torch.tensor(float(signs.numel()), device=signs.device)]).double()
            if world.size > 1:
                torch.distributed.all_reduce(total)
            self.ada.observe(float(total[0]), int(total[1]))
            self.ada.maybe_adjust(self.batch_idx, batch)
        return stats

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        beta = ema_beta(batch, self.cur_nimg, self.config.ema_half_life_kimg, self.config.ema_rampup)
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # ---------------------------------------------------------------------------------------------
    # State.

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the network weights needed to continue exactly (weights_only-loadable)."""
        return {
            "format": STATE_FORMAT,
            "format_version": STATE_VERSION,
            "config": json.dumps(self.config.to_dict()),
            "cur_nimg": self.cur_nimg,
            "batch_idx": self.batch_idx,
            "world_size": self.world.size,
            "threads": torch.get_num_threads(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "pl_mean": self.loss.pl_mean.detach().cpu().clone(),
            "rng": self.rng.get_state(),
            "data": self.stream.state_dict(),
            "augment": self._augment_state(),
            "lod": self.lod,
        }

    def _augment_state(self) -> dict[str, float]:
        if self.ada is not None:
            return self.ada.state_dict()
        return {"p": self.augment_pipe.p if self.augment_pipe is not None else 0.0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (the networks are loaded separately)."""
        if self.ada is not None:
            self.ada.load_state_dict(state["augment"])
        self.cur_nimg, self.batch_idx = int(state["cur_nimg"]), int(state["batch_idx"])
        self.lod = None if state.get("lod") is None else float(state["lod"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.loss.pl_mean.copy_(state["pl_mean"])
        self.rng.set_state(state["rng"])
        self.stream.load_state_dict(state["data"])

    def load_networks(self, path: Path) -> None:
        """Copy G, G_ema and D from a native checkpoint into this trainer's networks (strictly)."""
        ck = load_checkpoint(path, networks=("G_ema", "G", "D"))
        for name in ("G", "G_ema", "D"):
            src, dst = getattr(ck, name), getattr(self, name)
            if src is None:
                raise CheckpointError(f"{path}: has no {name}, so it cannot resume training")
            if src.config != dst.config:
                raise CheckpointError(f"{path}: {name} has a different architecture than this run's config")
            dst.load_state_dict(src.state_dict())

    # ---------------------------------------------------------------------------------------------
    # Files.

    def sample_grid(self) -> torch.Tensor:
        """G_ema on seeds ``0..grid-1`` with the stored noise maps: ``[grid, C, R, R]`` in [-1, 1].

        Seed ``s`` gives the z of ``latentlab generate --seeds s`` (NVIDIA's rule), so a grid cell can be
        re-rendered from a snapshot with ``--noise-mode const``.
        """
        n, G = self.config.grid, self.G_ema
        z = torch.cat([seed_to_z(max(G.z_dim, 1), s) for s in range(n)])[:, : G.z_dim].to(self.device)
        c = torch.from_numpy(self.dataset.labels[np.arange(n) % self.dataset.num_images]).to(self.device)
        out = []
        with torch.no_grad():
            for i in range(0, n, 16):
                ws = G.mapping(z[i : i + 16] if G.z_dim else None, c[i : i + 16] if G.c_dim else None)
                out.append(G.synthesis(ws, noise_mode="const").cpu())
        return torch.cat(out)

    def write_snapshot(self, outdir: Path, keep: int) -> tuple[Path, Path]:
        """Write the network, the training state and the sample grid for ``cur_nimg``; prune old pairs."""
        tag = kimg_tag(self.cur_nimg)
        net_path = outdir / f"network-snapshot-{tag}.safetensors"
        state_path = outdir / f"training-state-{tag}.pt"
        meta = {"cur_nimg": self.cur_nimg, "kimg": self.cur_nimg / 1000, "dataset": self.dataset.describe(),
                "train": self.config.to_dict(), "trained": True}  # fmt: skip
        save_checkpoint(net_path, G_ema=self.G_ema, G=self.G, D=self.D, meta=meta)
        state = self.state_dict()
        state["network_file"] = net_path.name
        state["network_size"] = net_path.stat().st_size
        with atomic_path(state_path) as tmp:
            _write_state(state, tmp)
        save_image(outdir / f"samples-{tag}.png", _grid_image(self.sample_grid()))
        if keep > 0:
            for old in list_snapshots(outdir)[:-keep]:
                old.unlink(missing_ok=True)
                (outdir / _network_name(old)).unlink(missing_ok=True)
        return net_path, state_path


def _load_init(source: str) -> Checkpoint:
    """The networks a run starts from (``TrainConfig.init``): G and G_ema, each filled in from the other if
    absent, and D when the file has one.

    A file with only G_ema (a released model) trains G from G_ema's weights; a file without D leaves ``D``
    None, and the run initialises a residual D from its seed (see :func:`_d_config`).
    """
    from ..io.foreign import load_any
    from ..registry import resolve

    ck = load_any(resolve(source))
    if ck.G is None and ck.G_ema is None:
        raise CheckpointError(f"{source}: has no generator to start training from")
    ck.G = ck.G if ck.G is not None else copy.deepcopy(ck.G_ema)
    ck.G_ema = ck.G_ema if ck.G_ema is not None else copy.deepcopy(ck.G)
    return ck


def _widen_init(init: Checkpoint, cfg: TrainConfig) -> Checkpoint:
    """The init networks widened to ``cfg``'s channel rule; G and G_ema get the same new channels (one seed)."""
    from ..nn.widen import widen

    try:
        for name in ("G", "G_ema", "D"):
            net = getattr(init, name)
            if net is not None:
                setattr(init, name, widen(net, cfg.channel_base, cfg.channel_max, seed=cfg.seed))
    except ValueError as e:
        raise InvalidInput(f"{cfg.init}: {e}") from None
    return init


def _d_config(init: Checkpoint) -> DiscriminatorConfig:
    """The start file's D config, or for a file without D a residual D at the generator's resolution (channel
    rule from the generator)."""
    if init.D is not None:
        return init.D.config
    g = init.G.config
    return DiscriminatorConfig(resolution=g.resolution, img_channels=g.img_channels, c_dim=g.c_dim,
                               channel_base=g.channel_base, channel_max=g.channel_max)  # fmt: skip


def _write_state(state: dict[str, Any], path: Path) -> None:
    torch.save(state, path)


def _grid_image(images: torch.Tensor):
    return make_grid(to_uint8(images), cols=min(8, images.shape[0]))


def _network_name(state_path: Path) -> str:
    return state_path.name.replace("training-state-", "network-snapshot-").replace(".pt", ".safetensors")


def list_snapshots(run: Path) -> list[Path]:
    """The training-state files of a run folder, oldest first."""
    if not run.is_dir():
        return []
    return sorted(p for p in run.iterdir() if _SNAPSHOT_RE.match(p.name))


def read_state(path: Path) -> dict[str, Any]:
    """Load and check one training-state file and the network file it names; raises CheckpointError."""
    state = load_state_file(path, STATE_FORMAT, STATE_VERSION, "training state", "training-state")
    net = path.parent / str(state.get("network_file"))
    if not net.is_file():
        raise CheckpointError(f"{path}: its network file {net.name} is missing")
    if net.stat().st_size != state.get("network_size"):
        raise CheckpointError(f"{path}: its network file {net.name} has a different size than when it was saved")
    return state


def find_resume_point(target: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete (state, network) pair of a run folder, or the given state file.

    Incomplete or unreadable pairs (a crash mid-save) are skipped with a warning. Returns None for a folder
    with no snapshot at all; raises CheckpointError when there are snapshots but none is usable.
    """
    target = Path(target)
    if target.is_file():
        return target, read_state(target)
    candidates = list_snapshots(target)
    problems = []
    for path in reversed(candidates):
        try:
            return path, read_state(path)
        except CheckpointError as e:
            problems.append(str(e))
            warnings.warn(f"skipping snapshot: {e}", stacklevel=2)
    if problems:
        raise CheckpointError(f"{target}: no usable snapshot to resume from ({problems[0]})")
    return None


# --------------------------------------------------------------------------------------------------
# The public entry point.


def train(config: TrainConfig, *, world: World | None = None, dataset: ImageDataset | None = None,
          log: Callable[[str], None] | None = print) -> TrainResult:  # fmt: skip
    """Train (or resume) a StyleGAN2 run as ``config`` describes; returns where it left its files.

    Launch under ``torchrun --nproc_per_node P`` for data-parallel training: rank 0 writes the files,
    every rank trains on its share of each global minibatch.

    Args:
        config: the run.
        world: the process group (default: from ``torchrun``'s environment, or a single process).
        dataset: an opened dataset to use instead of opening ``config.data``.
        log: where rank 0 prints one-line messages (None = silent).
    Returns:
        A :class:`TrainResult`.
    Raises:
        ValueError: a bad config, or a resume whose saved config differs in a non-runtime field.
        CheckpointError: nothing usable to resume from.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    outdir = Path(config.outdir)
    resume_from = _resume_target(config, outdir)
    trainer = Trainer(config, world=world, dataset=dataset)
    w = trainer.world
    say = log if (log is not None and w.is_main) else (lambda _msg: None)

    if resume_from is not None:
        state_path, state = resume_from
        saved = TrainConfig.from_dict(json.loads(state["config"]))
        diffs = config.differences(saved)
        if diffs:
            raise ValueError(f"cannot resume {state_path}: the config differs from the saved run in "
                             f"{'; '.join(diffs)}")  # fmt: skip
        trainer.load_networks(state_path.parent / state["network_file"])
        trainer.load_state_dict(state)
        if state.get("threads") != torch.get_num_threads():
            say(f"note: the saved run used {state.get('threads')} threads, this one {torch.get_num_threads()}; "
                "results will match to float rounding, not bit for bit")  # fmt: skip
        say(f"resuming from {state_path} at {trainer.cur_nimg / 1000:.3f} kimg")
    if w.is_main:
        outdir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(outdir)
        _write_json(outdir / "config.json", config.to_dict())
        _truncate_stats(outdir / "stats.jsonl", trainer.cur_nimg)
        if trainer.cur_nimg == 0:
            reals = np.stack([trainer.dataset.image(i % len(trainer.dataset)) for i in range(config.grid)])
            save_image(outdir / "reals.png", make_grid(reals.transpose(0, 2, 3, 1), cols=min(8, config.grid)))
        what = f"the networks of {config.init}" if config.init else config.preset if config.G is None else "custom"
        channels = "-".join(str(trainer.G.config.channels(r)) for r in trainer.G.synthesis.block_resolutions)
        say(f"training {what} (channels {channels}) at {trainer.G.img_resolution}px on "
            f"{trainer.dataset.num_images} images ({w.size} process{'es' if w.size > 1 else ''}, {trainer.device}); "
            f"R1 gamma {trainer.r1_gamma:g}, G_ema half-life {config.ema_half_life_kimg:g} kimg"
            + (f"; growing from {config.lod_initial_resolution}px, {config.lod_training_kimg:g} + "
               f"{config.lod_transition_kimg:g} kimg per resolution" if trainer.growing else ""))  # fmt: skip
    try:
        return _loop(trainer, outdir, say)
    finally:
        trainer.close()


def _resume_target(config: TrainConfig, outdir: Path) -> tuple[Path, dict[str, Any]] | None:
    if config.resume is None:
        if list_snapshots(outdir):
            raise ValueError(f"{outdir} already holds a run; pass resume='auto' (--resume auto) to continue it, "
                             "or choose another outdir")  # fmt: skip
        return None
    if config.resume == "auto":
        return find_resume_point(outdir)
    found = find_resume_point(config.resume)
    if found is None:
        raise CheckpointError(f"{config.resume}: no snapshot to resume from")
    return found


def _loop(trainer: Trainer, outdir: Path, say: Callable[[str], None]) -> TrainResult:
    cfg, w = trainer.config, trainer.world
    total = int(math.ceil(cfg.kimg * 1000))
    snap_every, tick_every = int(cfg.snap * 1000), int(cfg.tick * 1000)
    rows: list[dict[str, Any]] = []
    bar = _progress(cfg, w, trainer.cur_nimg, total)
    acc: dict[str, list[float]] = {}
    tick_start_nimg, tick_start_time = trainer.cur_nimg, time.perf_counter()
    last = None
    while trainer.cur_nimg < total:
        before = trainer.cur_nimg
        for name, v in trainer.step().items():
            s = acc.setdefault(name, [0.0, 0.0])
            s[0] += float(v.float().sum())
            s[1] += v.numel()
        done = trainer.cur_nimg >= total
        if bar is not None:
            bar.update((trainer.cur_nimg - before) / 1000)
        if done or trainer.cur_nimg // tick_every > before // tick_every:
            row = _tick_row(trainer, acc, tick_start_nimg, tick_start_time)
            rows.append(row)
            if w.is_main:
                _append_jsonl(outdir / "stats.jsonl", row)
                if bar is not None:
                    bar.set_postfix_str(_postfix(row), refresh=False)
            acc, tick_start_nimg, tick_start_time = {}, trainer.cur_nimg, time.perf_counter()
        if done or trainer.cur_nimg // snap_every > before // snap_every:
            if w.is_main:
                last = trainer.write_snapshot(outdir, cfg.keep)
            w.barrier()
    if bar is not None:
        bar.close()
    if last is None:  # nothing left to train (resumed at or past kimg): point at the newest snapshot
        found = find_resume_point(outdir)
        if found is None:
            raise ValueError(f"kimg={cfg.kimg} leaves nothing to train")
        last = (outdir / found[1]["network_file"], found[0])
    say(f"done at {trainer.cur_nimg / 1000:.3f} kimg: {last[0]}")
    return TrainResult(outdir=outdir, snapshot=last[0], state=last[1], cur_nimg=trainer.cur_nimg, stats=rows)


def _tick_row(trainer: Trainer, acc: dict[str, list[float]], start_nimg: int, start_time: float) -> dict[str, Any]:
    """Means of the tick's statistics over every process, timing and memory."""
    w = trainer.world
    names = sorted(acc)
    sums = torch.tensor([[acc[n][0], acc[n][1]] for n in names], dtype=torch.float64).reshape(-1, 2)
    if w.size > 1:
        torch.distributed.all_reduce(sums)
    seconds = time.perf_counter() - start_time
    kimg = (trainer.cur_nimg - start_nimg) / 1000
    row: dict[str, Any] = {
        "kimg": round(trainer.cur_nimg / 1000, 3),
        "cur_nimg": trainer.cur_nimg,
        "batch_idx": trainer.batch_idx,
        "sec_per_kimg": round(seconds / kimg, 3) if kimg > 0 else None,
        "pl_mean": float(trainer.loss.pl_mean),
        "augment_p": trainer.augment_pipe.p if trainer.augment_pipe is not None else 0.0,
        **({"lod": trainer.lod} if trainer.growing else {}),
        "peak_rss_mb": _peak_rss_mb(),
        "time": round(time.time(), 3),
    }
    for n, (s, c) in zip(names, sums.tolist(), strict=True):
        row[n] = s / c if c else None
    return row


def _postfix(row: dict[str, Any]) -> str:
    parts = [f"{row['sec_per_kimg']:.1f}s/kimg" if row["sec_per_kimg"] else ""]
    for key, short in (("Loss/G/loss", "G"), ("Loss/D/loss", "D"), ("Loss/r1_penalty", "r1"),
                       ("Loss/pl_penalty", "pl")):  # fmt: skip
        if row.get(key) is not None:
            parts.append(f"{short} {row[key]:.3f}")
    return " ".join(p for p in parts if p)


def _progress(cfg: TrainConfig, w: World, cur_nimg: int, total: int):
    if not (cfg.progress and w.is_main):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total / 1000, initial=cur_nimg / 1000, unit="kimg", desc="train", disable=None,  # a terminal
                bar_format="{desc} {n:.3f}/{total:.3f} kimg |{bar}| {elapsed}<{remaining} {postfix}")  # fmt: skip


def _peak_rss_mb() -> float | None:
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB
    except (ImportError, OSError):
        return None


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _truncate_stats(path: Path, cur_nimg: int) -> None:
    """Drop stats rows past ``cur_nimg`` (written after the snapshot a run resumes from) and torn lines."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("cur_nimg", 0) <= cur_nimg:
            keep.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(k + "\n" for k in keep))


def config_for_run(options: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from command-line style options (None = not given).

    Without ``resume`` (or when ``resume="auto"`` finds nothing) unspecified options take the defaults (StyleGAN
    v1's recipe, :meth:`TrainConfig.stylegan1`, for ``arch="stylegan1"`` or a v1 preset); ``data`` and ``outdir``
    are required. When resuming, unspecified options come from the saved run, so
    ``latentlab train --outdir RUN --resume auto`` continues a run without re-typing it; options given
    must agree with the saved run except the runtime ones (kimg, snap, keep, ...).
    """
    given = {k: v for k, v in options.items() if v is not None}
    arch = given.pop("arch", None)
    if "outdir" not in given:
        raise ValueError("an output folder (--outdir) is required")
    found = None
    if given.get("resume") == "auto":
        found = find_resume_point(given["outdir"])
    elif given.get("resume") is not None:
        found = find_resume_point(given["resume"])
        if found is None:
            raise CheckpointError(f"{given['resume']}: no snapshot to resume from")
    if found is None:
        if "data" not in given:
            raise ValueError("training data (--data FOLDER or ZIP) is required for a new run")
        preset_arch = get_preset(given["preset"]).G.arch if "preset" in given else None
        if arch is not None and preset_arch is not None and arch != preset_arch:
            raise ValueError(f"--arch {arch} does not match preset {given['preset']!r}, a {preset_arch} network")
        if (arch or preset_arch) == "stylegan1":
            return TrainConfig.stylegan1(**given)
        return TrainConfig(**given)
    saved = TrainConfig.from_dict(json.loads(found[1]["config"]))
    if arch is not None and saved.G is None and get_preset(saved.preset).G.arch != arch:
        raise ValueError(f"--arch {arch} does not match the saved run's preset {saved.preset!r}")
    if "preset" in given and saved.G is not None:
        raise ValueError("the saved run uses explicit network configs; do not pass --preset when resuming it")
    return TrainConfig.from_dict({**saved.to_dict(), **given})
