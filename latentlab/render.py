"""Rendering: images from seeds (the library side of ``latentlab generate``) and from saved W+ codes.

The helpers that projection, editing, metrics, the demo and the CLI share. Only :mod:`latentlab.nn` is below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .nn.generator import Generator, seed_to_z
from .nn.mapping import check_truncation
from .utils import bar_disable
from .validate import float_tensor


@dataclass
class Generated:
    """Images and the codes that made them, in seed order."""

    images: torch.Tensor  # [N, C, R, R] float32 in about [-1, 1], on the CPU
    z: torch.Tensor  # [N, z_dim]
    ws: torch.Tensor  # [N, num_ws, w_dim] (after truncation)
    seeds: list[int]


def class_labels(G: Generator, n: int, class_idx: int | None) -> torch.Tensor | None:
    """One-hot labels ``[n, c_dim]`` of class ``class_idx`` on G's device, or None for an unconditional G.

    Raises:
        ValueError: a conditional G without a class index, an unconditional one with one, or an index out of
            range.
    """
    if G.c_dim > 0 and class_idx is None:
        raise ValueError(f"this generator is conditional ({G.c_dim} classes): give a class index (--class)")
    if G.c_dim == 0 and class_idx is not None:
        raise ValueError("this generator is unconditional: a class index makes no sense")
    if class_idx is None:
        return None
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f"class index must be in [0, {G.c_dim}), got {class_idx}")
    c = torch.zeros([n, G.c_dim], device=G.w_avg.device)
    c[:, class_idx] = 1
    return c


@torch.no_grad()
def generate_images(
    G: Generator,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 16,
    progress: bool = False,
    precision: str = "fp32",
) -> Generated:
    """Render one image per seed, exactly as NVIDIA's ``generate.py`` draws its latents.

    Each seed's z is ``np.random.RandomState(seed).randn(1, z_dim)``; random noise (``noise_mode="random"``)
    is drawn from a generator seeded with the same seed, so every image depends only on its own seed.

    Args:
        G: the generator (its device is used).
        seeds: non-negative integers < 2**32.
        truncation_psi: 1 = none; must lie in [-1, 2] (values outside [0, 1] extrapolate).
        truncation_cutoff: truncate only the first ``cutoff`` W codes; None = all.
        noise_mode: ``"const"``, ``"random"`` or ``"none"``.
        class_idx: label index for a conditional G (required then, refused otherwise).
        batch_size: images per forward pass.
        progress: show a progress bar.
        precision: the synthesis' activations: ``"fp32"``, ``"bf16"`` (CPUs with AVX-512 BF16 or AMX, CUDA) or
            ``"fp16"`` (CUDA); the mapping and the codes stay float32 (see ``SynthesisNetwork.forward``).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("generate_images needs at least one seed")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise ValueError(f"seeds must be in [0, 2**32), got {bad[0]}")
    check_truncation(truncation_psi, truncation_cutoff, G.num_ws)
    class_labels(G, 1, class_idx)  # checks the class index before any work
    device = G.w_avg.device
    dtype = G.synthesis.resolve_dtype(precision, device)
    images, zs, wss = [], [], []
    bar = tqdm(total=len(seeds), desc="generate", unit="img", disable=bar_disable(progress))
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start : start + batch_size]
        z = torch.cat([seed_to_z(G.z_dim, s) for s in chunk]).to(device)
        c = class_labels(G, len(chunk), class_idx)
        ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        if noise_mode == "random":
            # One generator per seed keeps every image independent of its batch mates.
            img = torch.cat([
                G.synthesis(ws[i : i + 1], noise_mode="random", dtype=dtype,
                            generator=torch.Generator(device).manual_seed(s))
                for i, s in enumerate(chunk)
            ])  # fmt: skip
        else:
            img = G.synthesis(ws, noise_mode=noise_mode, dtype=dtype)
        images.append(img.cpu())
        zs.append(z.cpu())
        wss.append(ws.cpu())
        bar.update(len(chunk))
    bar.close()
    return Generated(torch.cat(images), torch.cat(zs), torch.cat(wss), seeds)


@torch.no_grad()
def render_codes(
    G: Generator,
    ws: torch.Tensor,
    noise: Sequence[torch.Tensor | None] | None = None,
    noise_mode: str = "const",
    progress: bool = False,
    precision: str = "fp32",
) -> torch.Tensor:
    """Render W+ codes one image at a time, so that every image is the same whatever it is rendered with.

    Args:
        G: the generator (its device is used).
        ws: ``[N, num_ws, w_dim]`` codes.
        noise: per-layer maps (one per ``G.synthesis.noise_layers()``, each ``[N, 1, r, r]`` or None), e.g. a
            projection's optimized noise; None = ``noise_mode``.
        noise_mode: ``"const"`` or ``"none"`` for layers without a given map.
        progress: show a progress bar.
        precision: the synthesis' activations, as for :func:`generate_images`.
    Returns:
        ``[N, C, R, R]`` float32 on the CPU, roughly in [-1, 1].
    """
    float_tensor(ws, "codes", ndim=3)
    if ws.shape[1:] != (G.num_ws, G.w_dim):
        raise ValueError(f"codes must be [N, {G.num_ws}, {G.w_dim}] for this generator, got {tuple(ws.shape)}")
    layers = len(G.synthesis.noise_layers())  # num_ws - 1 for StyleGAN2, num_ws for v1
    if noise is not None and len(noise) != layers:
        raise ValueError(f"noise must list {layers} per-layer maps, got {len(noise)}")
    device = G.w_avg.device
    dtype = G.synthesis.resolve_dtype(precision, device)
    out = []
    for i in tqdm(range(ws.shape[0]), desc="render", unit="img", disable=bar_disable(progress)):
        layer_noise = None
        if noise is not None:
            layer_noise = [None if x is None else x[i : i + 1].to(device) for x in noise]
        out.append(G.synthesis(ws[i : i + 1].to(device), noise_mode=noise_mode, noise=layer_noise, dtype=dtype).cpu())
    return torch.cat(out)
