"""Training an encoder for a generator (``latentlab encoder train``): pSp's losses plus a latent loss, e4e's
editability terms as options, seeded batches and exact resume.

Each step draws a batch from its own generator, seeded by ``(seed, step)`` alone:

* **generated samples** (all of the batch without ``--data``): ``z ~ N(0, I)``, mapped and truncated towards
  ``w_avg`` by a psi drawn uniformly from ``[psi_min, 1]``, optionally style-mixed, rendered with random noise
  or, with probability ``const_noise``, with G's constant maps. Their true W+ code is known;
* **real images** (``real_fraction`` of the batch with ``--data``), in the dataset's seeded order.

The encoder's code is rendered with G's constant noise (as every latentlab render of a code is) and the loss is
pSp's ``l2_weight * MSE + lpips_weight * LPIPS`` between rendering and input (pSp: 1.0, 0.8), plus for the
generated samples ``latent_weight * ||ws - ws_true||^2 / (num_ws * w_std^2)`` (the code error in units of W's
spread; ``w_std`` as the projector defines it). e4e's terms (Tov et al. 2021), off unless asked for:

* ``delta_weight``: the sum over rows of ``||ws_i - ws_0||_2`` (e4e: 2e-4), keeping W+ near one W code;
* ``progressive_every``: rows get their delta one at a time, one more every that many steps after
  ``progressive_start`` (e4e: 2000 after 20000; here counts are smaller because the models are);
* ``latent_d_weight``: a latent discriminator (an MLP on single W codes, e4e's 4 layers) told real ``mapping(z)``
  from the encoder's rows, non-saturating loss, lazy R1 of ``latent_d_r1`` every 16 steps (e4e: 0.1, 2e-5, 10).

``iterations > 0`` trains an iterative encoder (ReStyle, Alaluf et al. 2021; :class:`~.encoder.Encoder`): each step
makes the first pass and then that many corrections of the batch's codes, each from the previous pass's code and
rendering held fixed (ReStyle's detached iterations), and every pass's loss (the whole loss above) adds its
gradients before the one optimizer step. ReStyle trains 5 passes per batch; ``--init`` a single-pass encoder to
start from it (:meth:`EncoderTrainer.warm_start`).

Every ``snap`` steps the encoder file and a training state are written atomically (``<out>`` and
``<out stem>.state.pt``, ``torch.load(weights_only=True)``-safe, holding the encoder too, so there is never a
mismatched pair), and the held-out figures are appended to ``<out stem>.stats.jsonl``. A run killed at any
moment (kill -9 included) continues with ``resume=True`` and ends bit-identical to an uninterrupted one. The
step count may grow on resume: the learning rate's ramp-down then follows the new count, so a run extended
before its ramp-down began is the same as one started with the larger count.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..io.atomic import atomic_path, remove_temporaries
from ..io.checkpoint import load_state_file
from ..nn.generator import Generator, model_fingerprint
from ..nn.synthesis import PRECISIONS
from ..parallel import World
from ..validate import Bound, InvalidInput, number_fields, string
from .encoder import new_encoder, save_encoder
from .projector import w_statistics

STATE_FORMAT = "latentlab-encoder-state"
STATE_VERSION = 1
LOSS_CHOICES = ("lpips-vgg", "lpips-alex", "mse")  # the image distance; "mse" = pixels only (tests, ablations)


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Everything that determines an encoder training besides the generator and the data (defaults: pSp's
    losses at latentlab's scale; e4e's terms off)."""

    steps: int = 6000  # optimizer steps
    batch: int = 8  # images per step (pSp: 8)
    lr: float = 3e-4  # Adam learning rate (pSp: 1e-4 with Ranger over 500k steps; 1e-3 diverged here)
    lr_rampdown: float = 0.25  # the last fraction of the steps, over which the rate falls to 0 (cosine)
    loss: str = "lpips-alex"  # the perceptual distance (LOSS_CHOICES; pSp: AlexNet; measured best per second)
    lpips_weight: float = 0.8  # pSp's lpips_lambda
    l2_weight: float = 1.0  # pSp's l2_lambda
    latent_weight: float = 1.0  # the code error on generated samples
    psi_min: float = 0.6  # truncation psi drawn uniformly from [psi_min, 1]
    const_noise: float = 0.5  # probability that a sample is rendered with G's constant noise (else random)
    mixing: float = 0.0  # probability that a sample is style-mixed at a random layer
    real_fraction: float = 0.5  # share of each batch from the data, when there is data
    delta_weight: float = 0.0  # e4e's delta regularization (e4e: 2e-4)
    progressive_start: int = 0  # e4e: steps before the first delta is trained (with progressive_every)
    progressive_every: int = 0  # e4e: one more row's delta every this many steps (0 = all rows from the start)
    latent_d_weight: float = 0.0  # e4e's latent discriminator loss weight (e4e: 0.1)
    latent_d_lr: float = 2e-5  # its Adam learning rate
    latent_d_r1: float = 10.0  # its R1 gamma (lazy, every 16 steps)
    held_out: int = 64  # generated images held out (their own seed) for the snapshot figures
    seed: int = 0  # seeds the encoder's initialisation, every batch and the held-out set
    snap: int = 500  # steps between snapshots (encoder file, state, figures)
    channel_base: int = 2048  # the encoder's size (EncoderConfig)
    channel_max: int = 256
    iterations: int = 0  # ReStyle's corrections per step after the first pass (0 = a single-pass encoder)
    # the synthesis' and the encoder's arithmetic (autocast) in training: "fp32", "bf16" (CPUs with AVX-512 BF16
    # or AMX, CUDA) or "fp16" (CUDA, generators with fp16 layers); weights, Adam and the losses stay fp32
    precision: str = "fp32"

    def __post_init__(self) -> None:
        string(self.loss, "loss", where="EncoderTrainConfig", choices=LOSS_CHOICES)
        string(self.precision, "precision", where="EncoderTrainConfig", choices=tuple(PRECISIONS))
        big = Bound(0, 1e6)
        number_fields(self, {
            "steps": Bound(1, 10**9, integer=True), "batch": Bound(1, 65536, integer=True),
            "lr": Bound(0, 1, low_open=True), "lr_rampdown": Bound(0, 1), "lpips_weight": big, "l2_weight": big,
            "latent_weight": big,
            "psi_min": Bound(0, 1), "const_noise": Bound(0, 1), "mixing": Bound(0, 1), "real_fraction": Bound(0, 1),
            "delta_weight": big, "progressive_start": Bound(0, 10**9, integer=True),
            "progressive_every": Bound(0, 10**9, integer=True), "latent_d_weight": big,
            "latent_d_lr": Bound(0, 1, low_open=True), "latent_d_r1": big, "held_out": Bound(1, 100000, integer=True),
            "seed": Bound(0, 2**32 - 1, integer=True), "snap": Bound(1, 10**9, integer=True),
            "channel_base": Bound(16, 2**20, integer=True), "channel_max": Bound(4, 4096, integer=True),
            "iterations": Bound(0, 100, integer=True),
        }, "EncoderTrainConfig")  # fmt: skip

    def learning_rate(self, step: int) -> float:
        """``lr``, then a cosine fall to 0 over the last ``lr_rampdown`` of the steps (as the projector's)."""
        if self.lr_rampdown == 0:
            return self.lr
        ramp = min(1.0, (1.0 - step / self.steps) / self.lr_rampdown)
        return self.lr * (0.5 - 0.5 * math.cos(math.pi * ramp))

    def active_rows(self, step: int, num_ws: int) -> int | None:
        """How many W+ rows have their delta at ``step`` (None = all): e4e's progressive schedule."""
        if self.progressive_every == 0:
            return None
        if step < self.progressive_start:
            return 1
        return min(num_ws, 2 + (step - self.progressive_start) // self.progressive_every)


E4E = {"delta_weight": 2e-4, "latent_d_weight": 0.1, "progressive_start": 1000, "progressive_every": 200}


class LatentDiscriminator(nn.Module):
    """e4e's latent-code discriminator: ``[N, w_dim]`` -> logits ``[N]`` (4 linear layers, LeakyReLU 0.2)."""

    def __init__(self, w_dim: int, layers: int = 4):
        super().__init__()
        mods: list[nn.Module] = []
        for _ in range(layers - 1):
            mods += [nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2)]
        mods.append(nn.Linear(w_dim, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, w: Tensor) -> Tensor:
        return self.net(w).squeeze(1)


def batch_generator(seed: int, step: int, salt: int = 0) -> torch.Generator:
    """The random generator of one step: seeded by ``(seed, step, salt)`` alone, so any step can be redrawn."""
    s = np.random.SeedSequence([int(seed), int(step), int(salt)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(s[0]) << 32 | int(s[1]))


@torch.no_grad()
def sample_training_images(G: Generator, n: int, gen: torch.Generator, config: EncoderTrainConfig,
                           psi: tuple[float, float] | None = None, dtype: torch.dtype = torch.float32,
                           rows: slice | None = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """``n`` generated training images ``[n, C, R, R]`` and their true codes ``[n, num_ws, w_dim]``.

    psi is drawn from ``psi`` (default ``[config.psi_min, 1]``); noise is random or, with probability
    ``config.const_noise``, G's constant maps; with probability ``config.mixing`` rows from a random layer on come
    from a second z. All draws come from ``gen``. ``dtype``: the synthesis' (the images are float32). ``rows``:
    render only these of the ``n`` samples (one process's share of a batch; every draw is still made for all
    ``n``, so a sample is the same whichever process renders it).
    """
    device = G.w_avg.device
    lo, hi = (config.psi_min, 1.0) if psi is None else psi
    keep = slice(0, n) if rows is None else rows
    z = torch.randn([n, G.z_dim], generator=gen)
    psis = lo + (hi - lo) * torch.rand([n, 1, 1], generator=gen)
    mixed = None
    if config.mixing > 0:
        z2 = torch.randn([n, G.z_dim], generator=gen)
        mix = torch.rand([n], generator=gen) < config.mixing
        cut = torch.randint(1, G.num_ws, [n], generator=gen)
        mixed = z2[keep], (mix[:, None] & (torch.arange(G.num_ws)[None] >= cut[:, None]))[keep]
    const = (torch.rand([n], generator=gen) < config.const_noise)[keep].to(device)
    layers = [layer for _, layer in G.synthesis.noise_layers()]
    rand = [torch.randn([n, 1, layer.resolution, layer.resolution], generator=gen)[keep].to(device) for layer in layers]
    w = G.mapping(z[keep].to(device), None)
    if mixed is not None:
        w2 = G.mapping(mixed[0].to(device), None)
        w = torch.where(mixed[1][..., None].to(device), w2, w)
    w = G.w_avg + psis[keep].to(device) * (w - G.w_avg)
    noise = []
    for layer, r in zip(layers, rand, strict=True):
        if not getattr(layer, "use_noise", True):
            noise.append(None)
            continue
        res = layer.resolution
        noise.append(torch.where(const[:, None, None, None], layer.noise_const.reshape(1, 1, res, res), r))
    return G.synthesis(w, noise=noise, dtype=dtype), w


class EncoderTrainer:
    """The state of one encoder training; :meth:`step` trains one step, :meth:`state_dict` / :meth:`load_state_dict`
    resume exactly.

    Args:
        G: the generator (not changed; eval mode).
        config: :class:`EncoderTrainConfig`.
        network: G's name or path, recorded in the encoder.
        dataset: real images (:class:`~latentlab.data.datasets.ImageDataset` at G's resolution) or None.
        distance: the perceptual module (``loss(x, prepared)`` per image); None = built from ``config.loss``.
        world: the processes of a ``torchrun`` job (data parallel); None = this one. Every process draws the whole
            batch of a step, renders and encodes its own block of ``batch / size`` rows, and the gradients are
            averaged, so a run on ``P`` processes trains on exactly the samples a one-process run does (equal up
            to float summation order). ``config.batch`` must be divisible by ``size``.
    """

    def __init__(self, G: Generator, config: EncoderTrainConfig = EncoderTrainConfig(), network: str = "",
                 dataset: Any = None, distance: nn.Module | None = None, world: World | None = None):  # fmt: skip
        from ..train.sampling import IndexStream

        self.world = world if world is not None else World()
        if config.batch % self.world.size:
            raise InvalidInput(f"the batch ({config.batch}) must be divisible by the number of processes "
                               f"({self.world.size})")  # fmt: skip
        self.G, self.config, self.network = G.eval(), config, str(network)
        self.device = G.w_avg.device
        self.dtype = G.synthesis.resolve_dtype(config.precision, self.device)  # the training's; figures are fp32
        self.G.requires_grad_(False)
        if dataset is not None and (dataset.resolution != G.img_resolution or dataset.channels != G.img_channels):
            raise InvalidInput(f"{dataset.path}: the data is {dataset.resolution}-px with {dataset.channels} "
                               f"channels, the generator makes {G.img_resolution}-px {G.img_channels}-channel "
                               f"images")  # fmt: skip
        self.dataset = dataset
        self.stream = None if dataset is None else IndexStream(len(dataset), config.seed)
        self.encoder = new_encoder(G, network, config.seed, channel_base=config.channel_base,
                                   channel_max=config.channel_max, iterations=config.iterations).train()  # fmt: skip
        self.encoder.requires_grad_(True)
        self.world.broadcast_([*self.encoder.parameters(), *self.encoder.buffers()])
        self.init_sha256 = ""  # the SHA-256 of the encoder file it started from (warm_start), "" = from scratch
        self.opt = torch.optim.Adam(self.encoder.parameters(), lr=config.lr, betas=(0.9, 0.999))
        self.latent_d = self.opt_d = None
        if config.latent_d_weight > 0:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed + 1)
                self.latent_d = LatentDiscriminator(G.w_dim).to(self.device)
            self.world.broadcast_(list(self.latent_d.parameters()))
            self.opt_d = torch.optim.Adam(self.latent_d.parameters(), lr=config.latent_d_lr, betas=(0.9, 0.999))
        self.distance = distance if distance is not None else build_distance(config.loss, G.img_resolution)
        if self.distance is not None:
            self.distance = self.distance.to(self.device)
        _, w_std = w_statistics(G, seed=config.seed)
        self.w_var = w_std**2  # the mean squared distance of a W code from w_avg
        self.step_idx = 0
        self.history: list[dict[str, Any]] = []
        self.fingerprint = model_fingerprint(G)
        gen = batch_generator(config.seed, 0, salt=1)  # the held-out set: its own draws, psi 1
        self.held_out = sample_training_images(G, config.held_out, gen, config, psi=(1.0, 1.0))

    # ------------------------------------------------------------------------------------------ one step
    def _batch(self, step: int) -> tuple[Tensor, Tensor | None, int, int]:
        """This process's rows of step ``step``'s batch: ``(images, true codes of its generated rows, its number
        of generated rows, the batch's)``; generated rows come first, as in the whole batch."""
        cfg = self.config
        gen = batch_generator(cfg.seed, step)
        n_real = 0 if self.dataset is None else int(round(cfg.batch * cfg.real_fraction))
        n_fake = cfg.batch - n_real
        mine = self.world.rows(cfg.batch)
        fake_rows = slice(min(mine.start, n_fake), min(mine.stop, n_fake))
        parts, w_true = [], None
        if n_fake:
            img, w_true = sample_training_images(self.G, n_fake, gen, cfg, dtype=self.dtype, rows=fake_rows)
            parts.append(img)
        if n_real:
            indices = self.stream.take(n_real)  # every process takes the batch's indices: the stream stays in step
            real_rows = slice(max(mine.start - n_fake, 0), max(mine.stop - n_fake, 0))
            if real_rows.stop > real_rows.start:
                real, _ = self.dataset.batch(indices[real_rows])
                parts.append(real.to(self.device))
        return torch.cat(parts), w_true, fake_rows.stop - fake_rows.start, n_fake

    def image_loss(self, recon: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Per-image ``(MSE, LPIPS)`` ``[N]`` between a rendering and its input (LPIPS 0 with ``loss="mse"``)."""
        mse = (recon - target).square().mean(dim=(1, 2, 3))
        if self.distance is None:
            return mse, torch.zeros_like(mse)
        return mse, self.distance(recon, self.distance.prepare(target))

    def step(self) -> dict[str, float]:
        """Train one step; returns its losses."""
        cfg, G, enc = self.config, self.G, self.encoder
        step = self.step_idx
        target, w_true, n_fake, n_fake_all = self._batch(step)
        active = cfg.active_rows(step, G.num_ws)
        for group in self.opt.param_groups:
            group["lr"] = cfg.learning_rate(step)
        self.opt.zero_grad(set_to_none=True)
        ws = recon = None
        first = {}
        for t in range(cfg.iterations + 1):  # the first pass, then ReStyle's corrections (each pass backward alone)
            if t == 0:
                ws = enc(target, active=active, check=False, dtype=self.dtype)
            else:
                ws = ws.detach() + enc.correction(target, recon.detach(), active=active, check=False, dtype=self.dtype)
            recon = G.synthesis(ws, noise_mode="const", dtype=self.dtype)
            loss, stats, rows = self._loss(ws, recon, target, w_true, n_fake, n_fake_all, active)
            loss.backward()
            if t == 0 and cfg.iterations:
                first = {"lpips_first": stats["lpips"]}
        stats.update(first)
        self.world.sync_grads(list(enc.parameters()))
        self.opt.step()
        if self.latent_d is not None:
            stats["latent_d"] = self._latent_d_step(rows.detach(), step)
        stats["loss"] = float(loss.detach())
        self.step_idx += 1
        if self.world.size > 1:  # the batch's figures: every process's averaged (each has as many rows)
            values = self.world.all_reduce_mean_(torch.tensor(list(stats.values()), dtype=torch.float64))
            stats = dict(zip(stats, values.tolist(), strict=True))
        return stats

    def _loss(self, ws: Tensor, recon: Tensor, target: Tensor, w_true: Tensor | None, n_fake: int, n_fake_all: int,
              active: int | None) -> tuple[Tensor, dict[str, float], Tensor]:  # fmt: skip
        """One pass's loss, its figures and its W rows (for the latent discriminator)."""
        cfg, G = self.config, self.G
        mse, lp = self.image_loss(recon, target)
        loss = cfg.l2_weight * mse.mean() + cfg.lpips_weight * lp.mean()
        stats = {"mse": float(mse.detach().mean()), "lpips": float(lp.detach().mean())}
        if n_fake_all and cfg.latent_weight > 0:
            # the mean over the batch's generated rows; a process sums its own and the average over processes
            # (times their number) is the whole batch's mean
            err = (ws[:n_fake] - w_true).square().sum(dim=2).sum() if n_fake else ws.sum() * 0
            lat = err / (n_fake_all * G.num_ws) / self.w_var * self.world.size
            loss = loss + cfg.latent_weight * lat
            stats["latent"] = float(lat.detach())
        if cfg.delta_weight > 0:  # e4e's deltas: each row's offset from row 0
            loss = loss + cfg.delta_weight * (ws[:, 1:] - ws[:, :1]).norm(dim=2).sum(dim=1).mean()
        rows = ws[:, : (active or G.num_ws)].reshape(-1, G.w_dim)
        if self.latent_d is not None:
            self.latent_d.requires_grad_(False)
            adv = F.softplus(-self.latent_d(rows)).mean()
            loss = loss + cfg.latent_d_weight * adv
            stats["latent_g"] = float(adv.detach())
        return loss, stats, rows

    def _latent_d_step(self, fake: Tensor, step: int) -> float:
        D, gen = self.latent_d, batch_generator(self.config.seed, step, salt=2)
        D.requires_grad_(True)
        per = fake.shape[0]  # this process's rows; the batch has `size` times as many, drawn alike everywhere
        z = torch.randn([per * self.world.size, self.G.z_dim], generator=gen)
        z = z[self.world.rank * per : (self.world.rank + 1) * per]
        with torch.no_grad():
            real = self.G.mapping(z.to(self.device), None)[:, 0]
        loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        if step % 16 == 0 and self.config.latent_d_r1 > 0:  # lazy R1, scaled by the interval (StyleGAN2)
            real = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
            loss = loss + self.config.latent_d_r1 / 2 * grad.square().sum(dim=1).mean() * 16
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.world.sync_grads(list(D.parameters()))
        self.opt_d.step()
        D.requires_grad_(False)
        return float(loss.detach())

    # ------------------------------------------------------------------------------------------ figures
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Held-out figures: code error (RMS over rows, in units of ``w_std``), MSE, PSNR and LPIPS."""
        self.encoder.eval()
        images, w_true = self.held_out
        ws = torch.cat([self.encoder.invert(images[i : i + 64], self.G, check=False)
                        for i in range(0, len(images), 64)])  # fmt: skip
        recon = torch.cat([self.G.synthesis(ws[i : i + 64], noise_mode="const") for i in range(0, len(ws), 64)])
        mse, lp = self.image_loss(recon, images)
        self.encoder.train()
        w_err = ((ws - w_true).square().sum(dim=2).mean() / self.w_var).sqrt()
        psnr = (10 * torch.log10(4 / mse.clamp_min(1e-12))).mean()
        return {"w_error": float(w_err), "mse": float(mse.mean()), "psnr": float(psnr), "lpips": float(lp.mean())}

    # ------------------------------------------------------------------------------------------ state
    def warm_start(self, path: str | Path) -> None:
        """Start from an encoder file's weights (``--init``: fine-tuning, e.g. on new ``--data``), before step 1.

        Raises:
            InvalidInput: after the first step, another generator's encoder, or another architecture.
        """
        from ..io.foreign import file_sha256
        from .encoder import load_encoder

        if self.step_idx != 0:
            raise InvalidInput("an encoder's weights can only start a training, not join one at step "
                               f"{self.step_idx}")  # fmt: skip
        start = load_encoder(path, device=self.device, G=self.G, name=self.network or None)
        mine, theirs = asdict(self.encoder.config), asdict(start.config)
        k = next((k for k in mine if k != "iterations" and mine[k] != theirs[k]), None)
        if k is not None:
            raise InvalidInput(f"{path}: that encoder has {k}={theirs[k]!r}, this training builds {mine[k]!r}")
        if start.config.iterative and not self.encoder.config.iterative:
            raise InvalidInput(f"{path}: that encoder is iterative (iterations={start.config.iterations}); it cannot "
                               f"start a single-pass one (iterations=0)")  # fmt: skip
        weights = start.state_dict()
        if self.encoder.config.iterative and not start.config.iterative:
            # a single-pass encoder starts an iterative one: the rendering's input weights start at zero, so the
            # first pass is the old encoder and a correction is the fixed-point step E(x) - E(G(ws))
            w = weights["fromrgb.weight"]
            weights["fromrgb.weight"] = torch.cat([w, torch.zeros_like(w)], dim=1)
        self.encoder.load_state_dict(weights)
        self.init_sha256 = file_sha256(path)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (the encoder included), ``weights_only``-loadable."""
        return {
            "format": STATE_FORMAT, "format_version": STATE_VERSION, "step": self.step_idx,
            "config": asdict(self.config), "generator": self.fingerprint, "network": self.network,
            "encoder": self.encoder.state_dict(), "opt": self.opt.state_dict(),
            "latent_d": None if self.latent_d is None else self.latent_d.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
            "data": None if self.stream is None else self.stream.state_dict(),
            "history": json.dumps(self.history), "init": self.init_sha256,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any], where: str = "the training state") -> None:
        """Continue from :meth:`state_dict`'s output: same generator, same settings (``steps`` may grow)."""
        if state.get("generator") != self.fingerprint:
            raise InvalidInput(f"{where} belongs to another generator (fingerprint {state.get('generator')}, this one "
                               f"is {self.fingerprint})")  # fmt: skip
        saved = {"precision": "fp32", "iterations": 0, **(state.get("config") or {})}  # states from before these
        mine = asdict(self.config)
        diff = sorted(k for k in mine if k != "steps" and saved.get(k) != mine[k])
        if diff:
            k = diff[0]
            raise InvalidInput(f"{where} was trained with {k}={saved.get(k)!r}, not {mine[k]!r}; resume with the "
                               f"same settings (only the step count may change)")  # fmt: skip
        if (state.get("init") or "") != self.init_sha256:
            raise InvalidInput(f"{where} was started from {'no --init' if not state.get('init') else 'another --init'}"
                               f" than this run's; resume with the same --init")  # fmt: skip
        if (state.get("data") is None) != (self.stream is None):
            raise InvalidInput(f"{where} was trained {'without' if state.get('data') is None else 'with'} real "
                               f"images; resume with the same --data")  # fmt: skip
        self.encoder.load_state_dict(state["encoder"])
        self.opt.load_state_dict(state["opt"])
        if self.latent_d is not None:
            self.latent_d.load_state_dict(state["latent_d"])
            self.opt_d.load_state_dict(state["opt_d"])
        if self.stream is not None:
            self.stream.load_state_dict(state["data"])
        self.step_idx = int(state["step"])
        self.history = json.loads(state["history"])


def build_distance(name: str, resolution: int) -> nn.Module | None:
    """The training's perceptual module: LPIPS-VGG or -AlexNet (smaller models seen at 64 px), None for mse."""
    from ..perceptual import LPIPSLoss

    if name == "mse":
        return None
    net = name.split("-", 1)[1]
    return LPIPSLoss(net, min_side=64 if resolution < 64 else None)


def state_path(out: str | Path) -> Path:
    """The training state beside an encoder file: ``enc.safetensors`` -> ``enc.state.pt``."""
    out = Path(out)
    return out.with_name(out.stem + ".state.pt")


def stats_path(out: str | Path) -> Path:
    """The held-out figures beside an encoder file: ``enc.safetensors`` -> ``enc.stats.jsonl``."""
    out = Path(out)
    return out.with_name(out.stem + ".stats.jsonl")


def read_encoder_state(path: Path) -> dict[str, Any]:
    """Load and check a training state written by :func:`train_encoder`; raises CheckpointError."""
    return load_state_file(path, STATE_FORMAT, STATE_VERSION, "encoder training state", "encoder-state")


def _write_state(state: dict[str, Any], path: Path) -> None:
    torch.save(state, path)


def _save(trainer: EncoderTrainer, out: Path, figures: dict[str, float]) -> None:
    """The encoder file, then the state (which holds the encoder too), then the figures: each atomically."""
    cfg = trainer.config
    # The data by its file name (a path on the training machine says nothing elsewhere), and the encoder it was
    # fine-tuned from by its SHA-256.
    meta = {"step": trainer.step_idx, "images": trainer.step_idx * cfg.batch, "train": asdict(cfg),
            "held_out": figures, "data": None if trainer.dataset is None else Path(trainer.dataset.path).name,
            "init": trainer.init_sha256 or None}  # fmt: skip
    save_encoder(out, trainer.encoder, meta)
    with atomic_path(state_path(out)) as tmp:
        _write_state(trainer.state_dict(), tmp)
    with atomic_path(stats_path(out)) as tmp:
        tmp.write_text("".join(json.dumps(h) + "\n" for h in trainer.history))


def train_encoder(
    G: Generator,
    out: str | Path,
    config: EncoderTrainConfig = EncoderTrainConfig(),
    network: str = "",
    dataset: Any = None,
    resume: bool = False,
    progress: bool = True,
    distance: nn.Module | None = None,
    log: Callable[[str], None] | None = None,
    init: str | Path | None = None,
    world: World | None = None,
) -> EncoderTrainer:
    """Train an encoder for ``G`` and write it to ``out`` (see the module docstring for the files).

    Args:
        G: the generator (its device is used).
        out: the encoder's ``.safetensors`` file.
        config: :class:`EncoderTrainConfig`.
        network: G's registry name or path, recorded in the encoder.
        dataset: real images at G's resolution, or None (generated samples only).
        resume: continue from ``<out stem>.state.pt`` when it exists. Without it an existing state is an error.
        progress: a progress bar.
        distance: the perceptual module (default: ``config.loss``'s).
        log: receives one line per snapshot.
        init: start from this encoder file's weights (:meth:`EncoderTrainer.warm_start`); a resumed run must
            name the same file (its SHA-256 is in the state).
        world: a ``torchrun`` job's processes (see :class:`EncoderTrainer`); rank 0 writes the files, logs and
            shows the bar. The files do not depend on the number of processes beyond float summation order, and a
            state resumes on any number of them.
    Returns:
        The trainer, after the last step.
    """
    out = Path(out)
    if out.suffix != ".safetensors":
        raise InvalidInput(f"--out must name a .safetensors file, got {str(out)!r}")
    world = world if world is not None else World()
    trainer = EncoderTrainer(G, config, network, dataset, distance, world=world)
    if init is not None:
        if Path(init).resolve() == out.resolve():
            raise InvalidInput(f"--init and --out are the same file ({out}); the training would overwrite its start")
        trainer.warm_start(init)
    sp = state_path(out)
    if sp.exists():
        if not resume:
            raise InvalidInput(f"{sp} exists: a training of {out.name} was started; continue it with --resume or "
                               f"remove {sp.name} (and {out.name}) to start anew")  # fmt: skip
        trainer.load_state_dict(read_encoder_state(sp), str(sp))
    world.barrier()  # every process has read the state before rank 0 tidies the folder and writes into it
    if world.is_main:
        remove_temporaries(out.parent, (out.name, state_path(out).name, stats_path(out).name))  # kill -9 leftovers
    bar = tqdm(total=config.steps, initial=min(trainer.step_idx, config.steps), desc="encoder", unit="step",
               disable=world.bar_disable(progress), dynamic_ncols=True)  # fmt: skip
    t0, done0 = time.perf_counter(), trainer.step_idx
    try:
        while trainer.step_idx < config.steps:
            stats = trainer.step()
            bar.update(1)
            bar.set_postfix_str(" ".join(f"{k} {v:.4f}" for k, v in stats.items()), refresh=False)
            if trainer.step_idx % config.snap == 0 or trainer.step_idx == config.steps:
                figures = trainer.evaluate()
                _check_diverged(trainer, figures, out)
                rate = (trainer.step_idx - done0) / max(time.perf_counter() - t0, 1e-9)
                trainer.history.append({"step": trainer.step_idx, **figures, "train": stats,
                                        "steps_per_s": round(rate, 3)})  # fmt: skip
                if world.is_main:
                    _save(trainer, out, figures)
                if log is not None and world.is_main:
                    log(f"step {trainer.step_idx}: held-out w error {figures['w_error']:.4f} w_std, PSNR "
                        f"{figures['psnr']:.2f} dB, LPIPS {figures['lpips']:.4f}; wrote {out}")  # fmt: skip
    finally:
        bar.close()
    if world.is_main and not out.exists():  # resumed a finished run: nothing to do, but make sure the file is there
        _save(trainer, out, trainer.history[-1] if trainer.history else trainer.evaluate())
    return trainer


DIVERGED = 10.0  # a held-out code error this many times the best so far (or not finite) stops the training


def _check_diverged(trainer: EncoderTrainer, figures: dict[str, float], out: Path) -> None:
    """Stop before a diverged encoder overwrites the last good snapshot."""
    best = min((h["w_error"] for h in trainer.history), default=None)
    w = figures["w_error"]
    if math.isfinite(w) and (best is None or w <= DIVERGED * best):
        return
    raise InvalidInput(f"the encoder training diverged at step {trainer.step_idx}: held-out code error {w:.4g} w_std "
                       f"against {best:.4g} at best; {out.name} and its state keep the last good snapshot (step "
                       f"{trainer.history[-1]['step'] if trainer.history else 0}). Train anew with a lower --lr "
                       f"(now {trainer.config.lr:g})")  # fmt: skip


