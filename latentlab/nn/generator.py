"""The generator: ``G(z) = synthesis(mapping(z))``, StyleGAN2's, or StyleGAN v1's with ``config.arch="stylegan1"``."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch import Tensor, nn

from .config import GeneratorConfig
from .mapping import MappingNetwork
from .stylegan1 import SynthesisNetworkV1
from .synthesis import SynthesisNetwork


class Generator(nn.Module):
    """A StyleGAN2 (or, with ``config.arch="stylegan1"``, StyleGAN v1) generator built from a :class:`GeneratorConfig`.

    ``G.mapping(z) -> ws [N, num_ws, w_dim]`` and ``G.synthesis(ws) -> img [N, C, R, R]`` are separate
    modules, so W/W+ codes can be edited between them. Parameter names and values match NVIDIA's
    stylegan2-ada-pytorch networks one-to-one.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        if not isinstance(config, GeneratorConfig):
            raise TypeError(f"Generator wants a GeneratorConfig, got {type(config).__name__}")
        self.config = config
        if config.arch == "stylegan1":
            self.synthesis = SynthesisNetworkV1(
                w_dim=config.w_dim, img_resolution=config.resolution, img_channels=config.img_channels,
                channel_base=config.channel_base, channel_max=config.channel_max, use_noise=config.use_noise,
            )  # fmt: skip
        else:
            self.synthesis = SynthesisNetwork(
                w_dim=config.w_dim, img_resolution=config.resolution, img_channels=config.img_channels,
                channel_base=config.channel_base, channel_max=config.channel_max,
                architecture=config.architecture, resample_filter=config.resample_filter,
                conv_clamp=config.conv_clamp, use_noise=config.use_noise, num_fp16_res=config.num_fp16_res,
            )  # fmt: skip
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=config.z_dim, c_dim=config.c_dim, w_dim=config.w_dim, num_ws=self.num_ws,
            num_layers=config.mapping_layers, embed_features=config.embed_features,
            layer_features=config.mapping_layer_features, lr_multiplier=config.mapping_lr_multiplier,
            w_avg_beta=config.w_avg_beta,
        )  # fmt: skip

    # Shorthands, named as in NVIDIA's code so that user scripts carry over.
    @property
    def z_dim(self) -> int:
        """Input latent size."""
        return self.config.z_dim

    @property
    def w_dim(self) -> int:
        """Intermediate latent size."""
        return self.config.w_dim

    @property
    def c_dim(self) -> int:
        """Label size (0 = unconditional)."""
        return self.config.c_dim

    @property
    def img_resolution(self) -> int:
        """Output image side in pixels."""
        return self.config.resolution

    @property
    def img_channels(self) -> int:
        """Output image channels."""
        return self.config.img_channels

    @property
    def w_avg(self) -> Tensor:
        """``[w_dim]`` the tracked mean of W (the truncation centre)."""
        return self.mapping.w_avg

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> Tensor:
        """``z [N, z_dim]`` (+ labels ``c [N, c_dim]``) -> images ``[N, C, R, R]`` roughly in [-1, 1].

        ``synthesis_kwargs`` go to :meth:`SynthesisNetwork.forward` (``noise_mode``, ``generator``, ...).
        """
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)



def sample_z(
    z_dim: int,
    n: int,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``[n, z_dim]`` standard-normal latents, reproducible across devices.

    Drawn on the CPU from ``seed`` (or ``generator``), then moved, so the same seed gives the same z on every
    device. Exactly one of ``seed`` and ``generator`` must be given.
    """
    if (seed is None) == (generator is None):
        raise ValueError("sample_z needs exactly one of seed= and generator=")
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed))
    return torch.randn([n, z_dim], generator=generator).to(device)


def seed_to_z(z_dim: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """``[1, z_dim]``: the latent NVIDIA's ``generate.py`` draws for ``seed`` (``np.random.RandomState``)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= 2**32 - 1:
        raise ValueError(f"a seed must be an integer in 0..{2**32 - 1}, got {seed!r:.40}")
    z = np.random.RandomState(seed).randn(1, z_dim)
    return torch.from_numpy(z).to(torch.float32).to(device)


def accepts_fingerprint(G: Generator, fingerprint: str) -> bool:
    """Whether something recorded for ``fingerprint`` (a direction, an encoder) belongs to ``G``: G's own
    :func:`model_fingerprint`, or, for a PTI-tuned generator, its base's."""
    return fingerprint in (model_fingerprint(G), (getattr(G, "tuned_from", None) or {}).get("fingerprint"))


def model_fingerprint(G: Generator) -> str:
    """A short hash of a generator's configuration and of every parameter and buffer (16 hex digits).

    The same weights give the same fingerprint on every device; any retraining changes it. ``num_fp16_res``
    is left out: it changes no parameter, and a model converted before latentlab read it keeps its fingerprint.
    """
    config = G.config.to_dict()
    config.pop("num_fp16_res", None)
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
