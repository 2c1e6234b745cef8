"""The mapping network ``z -> w`` (StyleGAN, Karras et al. 2019, Sec. 2; StyleGAN2 keeps it as is).

An MLP of equalized-learning-rate layers with leaky ReLU (gain sqrt(2)) and a learning-rate multiplier of
0.01, after normalising z to unit second moment. It tracks the running mean ``w_avg`` of its outputs during
training, which the truncation trick pulls codes towards.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..validate import number
from .layers import FullyConnectedLayer, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """``z [N, z_dim]`` (and labels ``c [N, c_dim]``) -> ``w [N, w_dim]``, or ``ws [N, num_ws, w_dim]``."""

    def __init__(
        self,
        z_dim: int,  # input latent size; 0 = no z (the discriminator's label mapping)
        c_dim: int,  # label size; 0 = unconditional
        w_dim: int,  # output size
        num_ws: int | None,  # broadcast the output to this many codes; None = return [N, w_dim]
        num_layers: int = 8,  # depth of the MLP
        embed_features: int | None = None,  # label embedding width; None = w_dim
        layer_features: int | None = None,  # hidden width; None = w_dim
        lr_multiplier: float = 0.01,  # learning-rate multiplier of every layer
        w_avg_beta: float | None = 0.995,  # decay of the tracked mean; None = do not track (no truncation)
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: Tensor | None,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool | None = None,
    ) -> Tensor:
        """Map latents to W (broadcast to W+ when ``num_ws`` is set), with optional truncation.

        Args:
            z: ``[N, z_dim]`` standard-normal latents (None when ``z_dim == 0``).
            c: ``[N, c_dim]`` labels (None when unconditional).
            truncation_psi: ``w_avg + psi * (w - w_avg)``; 1 = none, 0 = every code becomes ``w_avg``.
            truncation_cutoff: truncate only the first ``cutoff`` of the ``num_ws`` codes; None = all.
            update_w_avg: update the tracked mean; None = only in training mode.
        Returns:
            ``[N, w_dim]`` or ``[N, num_ws, w_dim]``.
        """
        x = None
        if self.z_dim > 0:
            _check_2d(z, self.z_dim, "z")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            _check_2d(c, self.c_dim, "c (labels)")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_w_avg is None:
            update_w_avg = self.training
        if update_w_avg and self.w_avg_beta is not None and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = truncate(x, self.w_avg if hasattr(self, "w_avg") else None, truncation_psi, truncation_cutoff)
        return x


def check_truncation(psi: float, cutoff: int | None = None, num_ws: int | None = None) -> None:
    """Refuse a truncation ``psi`` outside [-1, 2] (or NaN) and a ``cutoff`` outside [0, num_ws].

    Raises:
        InvalidInput: naming the value and the allowed range.
    """
    number(psi, "truncation psi", low=-1.0, high=2.0)
    if cutoff is not None:
        number(cutoff, "truncation cutoff", low=0, high=num_ws, integer=True)


def truncate(ws: Tensor, w_avg: Tensor | None, psi: float, cutoff: int | None = None) -> Tensor:
    """The truncation trick: ``w_avg + psi * (ws - w_avg)`` on the first ``cutoff`` codes (all if None).

    Args:
        ws: ``[N, w_dim]`` or ``[N, num_ws, w_dim]``.
        w_avg: ``[w_dim]`` tracked mean of W.
        psi: 1 = no truncation, 0 = the mean; values outside [0, 1] extrapolate.
        cutoff: number of leading codes to truncate (``ws`` must be 3-D); None = all.
    Returns:
        A new tensor of the shape of ``ws``.
    """
    check_truncation(psi, cutoff, ws.shape[1] if ws.ndim == 3 else None)
    if w_avg is None:
        raise ValueError("truncation needs w_avg, but this mapping network does not track it")
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    if ws.ndim != 3:
        raise ValueError(f"a truncation cutoff needs W+ codes [N, num_ws, w_dim], got shape {tuple(ws.shape)}")
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


def _check_2d(t: Tensor | None, dim: int, name: str) -> None:
    if t is None or t.ndim != 2 or t.shape[1] != dim:
        got = "None" if t is None else str(tuple(t.shape))
        raise ValueError(f"{name} must have shape [N, {dim}], got {got}")
