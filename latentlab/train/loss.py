"""The StyleGAN2 losses (Karras et al., CVPR 2020, Sec. 2.2, 3.2 and App. B), as NVIDIA's implementation has them.

* Non-saturating logistic loss (Goodfellow et al. 2014): G minimises ``softplus(-D(G(z)))``, D minimises
  ``softplus(D(G(z))) + softplus(-D(x))``.
* R1 (Mescheder et al. 2018): ``gamma / 2 * ||grad_x D(x)||^2`` on reals, lazily every 16 minibatches.
* Path-length regularization (Sec. 3.2): ``w_pl * (||J_w^T y||_2 - a)^2`` with ``y ~ N(0, I) / sqrt(H W)``, the
  norm averaged over the W+ codes, and ``a`` a running mean (decay 0.01), lazily every 4 minibatches on half
  the batch.
* Style mixing regularization (StyleGAN, Sec. 3.1): with probability 0.9 the codes after a random cut-off come
  from a second latent.

A lazy term computed every ``k`` minibatches is multiplied by ``k`` (its "gain"), so that on average it weighs
what it would every minibatch; the optimizers' learning rate and betas are corrected for it (see loop.py).

The functions here are pure; :class:`StyleGAN2Loss` strings them into the four phases, one per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..nn.discriminator import Discriminator
from ..nn.generator import Generator
from .distributed import World


def r1_penalty(logits: Tensor, images: Tensor) -> Tensor:
    """``||d sum(logits) / d images||^2`` per sample, with a graph for the backward pass.

    Args:
        logits: ``[N, 1]`` discriminator outputs computed from ``images``.
        images: ``[N, C, H, W]`` with ``requires_grad``.
    Returns:
        ``[N]``.
    """
    (grads,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[images], create_graph=True)
    return grads.square().sum(dim=[1, 2, 3])


def path_lengths(images: Tensor, ws: Tensor, pl_noise: Tensor) -> Tensor:
    """``sqrt(mean_i ||J_{w_i}^T y||^2)``: the path length of each sample, with a graph for backward.

    Args:
        images: ``[N, C, H, W]`` rendered from ``ws``.
        ws: ``[N, num_ws, w_dim]`` with ``requires_grad`` (or part of the graph).
        pl_noise: ``[N, C, H, W]``, standard normal divided by ``sqrt(H * W)``.
    Returns:
        ``[N]``.
    """
    (grads,) = torch.autograd.grad(outputs=[(images * pl_noise).sum()], inputs=[ws], create_graph=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def mix_styles(ws: Tensor, ws2: Tensor, cutoff: int) -> Tensor:
    """Codes ``ws[:, :cutoff]`` followed by ``ws2[:, cutoff:]`` (``cutoff >= num_ws`` = no mixing)."""
    if cutoff >= ws.shape[1]:
        return ws
    return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)


@dataclass
class Inputs:
    """One phase's random inputs, already cut to this process's rows."""

    z: Tensor  # [n, z_dim]
    c: Tensor  # [n, c_dim]
    mix_z: Tensor  # [n, z_dim] second latents for style mixing
    cutoff: int  # first W+ index taken from mix_z; num_ws = no mixing this phase
    noise: list[Tensor]  # per-layer noise maps [n, 1, r, r]


class StyleGAN2Loss:
    """The four training phases of StyleGAN2 over one process's share of a minibatch.

    ``Gmain``/``Dmain`` run every minibatch; ``Greg`` (path length) and ``Dreg`` (R1) run every
    ``G_reg_interval``/``D_reg_interval`` minibatches with ``gain`` equal to that interval. Each phase call
    leaves gradients in the phase's network (the caller zeroes, syncs and steps) and returns detached
    per-sample values for the statistics.
    """

    def __init__(
        self,
        G: Generator,
        D: Discriminator,
        world: World,
        r1_gamma: float,  # R1 weight; 0 = no R1
        pl_weight: float = 2.0,  # path-length weight; 0 = no path-length regularization
        pl_decay: float = 0.01,  # decay of the running mean path length
        dtype: torch.dtype = torch.float32,  # G's synthesis and D's blocks (bf16: see TrainConfig.precision)
    ):
        self.G, self.D, self.world, self.dtype = G, D, world, dtype
        self.r1_gamma, self.pl_weight, self.pl_decay = r1_gamma, pl_weight, pl_decay
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        # Augments every image D sees (ADA); set by the trainer for each minibatch. None = no augmentation.
        self.augment: Callable[[Tensor], Tensor] | None = None

    def run_D(self, img: Tensor, c: Tensor, channels_last: bool | None = None) -> Tensor:
        """D's logits ``[n, 1]`` for ``img``, augmented first when augmentation is on."""
        if self.augment is not None:
            img = self.augment(img)
        return self.D(img, c if self.D.c_dim else None, channels_last=channels_last, dtype=self.dtype)

    # ---------------------------------------------------------------------------------------------

    def run_G(self, inp: Inputs, update_w_avg: bool = True) -> tuple[Tensor, Tensor]:
        """Render ``inp`` with style mixing: returns images ``[n, C, R, R]`` and the codes ``[n, num_ws, w_dim]``."""
        mapping = self.G.mapping
        ws = mapping(inp.z, inp.c, update_w_avg=False)
        if update_w_avg:
            self._track_w_avg(ws[:, 0])
        if inp.cutoff < ws.shape[1]:
            ws = mix_styles(ws, mapping(inp.mix_z, inp.c, update_w_avg=False), inp.cutoff)
        img = self.G.synthesis(ws, noise=inp.noise, dtype=self.dtype)
        return img, ws

    @torch.no_grad()
    def _track_w_avg(self, w: Tensor) -> None:
        """NVIDIA's running mean of W, over the global batch: ``w_avg = lerp(mean(w), w_avg, beta)``."""
        mapping = self.G.mapping
        if mapping.w_avg_beta is None or not hasattr(mapping, "w_avg"):
            return
        mean = self.world.all_reduce_mean_(w.detach().mean(dim=0))
        mapping.w_avg.copy_(mean.lerp(mapping.w_avg, mapping.w_avg_beta))

    # ---------------------------------------------------------------------------------------------

    def G_main(self, inp: Inputs, gain: float = 1.0) -> dict[str, Tensor]:
        """Non-saturating G loss on fakes; gradients into G (through a frozen D)."""
        img, _ = self.run_G(inp)
        logits = self.run_D(img, inp.c)
        loss = F.softplus(-logits)
        loss.mean().mul(gain).backward()
        return {"Loss/G/loss": loss.detach(), "Loss/scores/fake": logits.detach()}

    def G_reg(self, inp: Inputs, pl_noise: Tensor, gain: float) -> dict[str, Tensor]:
        """Path-length regularization on ``inp`` (already shrunk); updates the running mean."""
        if self.pl_weight == 0:
            return {}
        img, ws = self.run_G(inp)
        lengths = path_lengths(img, ws, pl_noise)
        # The running mean moves towards the global batch mean. As in NVIDIA's code the new mean stays in
        # the graph (through this process's batch mean), so the penalty's gradient includes its decay share.
        local_mean = lengths.mean()
        batch_mean = local_mean + (self.world.all_reduce_mean_(local_mean.detach().clone()) - local_mean.detach())
        pl_mean = self.pl_mean.lerp(batch_mean, self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square()
        loss = penalty * self.pl_weight
        # "img[:, 0, 0, 0] * 0" keeps every synthesis parameter in the graph (zero gradients, not None).
        (img[:, 0, 0, 0] * 0 + loss).mean().mul(gain).backward()
        return {"Loss/pl_penalty": penalty.detach(), "Loss/G/reg": loss.detach()}

    def D_main(self, inp: Inputs, real: Tensor, real_c: Tensor, gain: float = 1.0) -> dict[str, Tensor]:
        """Logistic D loss on fakes (generated without a graph) and reals; gradients into D."""
        with torch.no_grad():
            fake, _ = self.run_G(inp)
        fake_logits = self.run_D(fake, inp.c)
        loss_fake = F.softplus(fake_logits)
        loss_fake.mean().mul(gain).backward()
        real_logits = self.run_D(real, real_c)
        loss_real = F.softplus(-real_logits)
        loss_real.mean().mul(gain).backward()
        return {"Loss/D/loss": (loss_fake + loss_real).detach(), "Loss/scores/real": real_logits.detach(),
                "Loss/signs/real": real_logits.detach().sign()}  # fmt: skip

    def D_reg(self, real: Tensor, real_c: Tensor, gain: float) -> dict[str, Tensor]:
        """R1 on reals: ``gamma / 2 * ||grad D(x)||^2``; gradients into D."""
        if self.r1_gamma == 0:
            return {}
        real = real.detach().requires_grad_(True)
        logits = self.run_D(real, real_c, channels_last=False)  # faster double backward
        penalty = r1_penalty(logits, real)
        loss = penalty * (self.r1_gamma / 2)
        (logits * 0 + loss.unsqueeze(1)).mean().mul(gain).backward()
        return {"Loss/r1_penalty": penalty.detach(), "Loss/D/reg": loss.detach()}
