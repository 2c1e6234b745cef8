"""Droplet artifacts: localized spikes in a generator's intermediate activations (StyleGAN2 paper, Sec. 2, Fig. 1).

StyleGAN v1's instance normalization divides each feature map by its own spread, so a generator can pass the
strength of a signal past it by putting one strong, localized blob into the map: the blob dominates the
statistics and shows in the image as a "water droplet". StyleGAN2 replaced the normalization by weight
demodulation, and the blobs went away.

The measure here: for each synthesis layer at ``min_resolution`` and above, the *magnitude map* of its
activations, the mean over channels of ``|x|`` at every pixel, where ``x`` is what the layer produces before
any normalization (v1: after convolution, noise, bias and leaky ReLU, just before the instance norm; v2: the
layer's output, which is what the next modulated convolution receives). A layer's *spike ratio* is the map's
maximum over its median. An image *has a droplet* when any of its layers' ratios is above ``k`` (default 10):
a pixel ten times as active as the typical pixel of the same map. Reported: the share of images with a
droplet, and the median and 99th percentile of each resolution's largest ratio. Constant noise, no truncation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..nn.generator import Generator
from ..utils import bar_disable

DEFAULT_K = 10.0


def activation_layers(G: Generator, min_resolution: int = 16) -> list[tuple[str, torch.nn.Module]]:
    """``(name, module)`` whose forward output is a layer's activations before normalization, from
    ``min_resolution`` up (``b32.conv0``, ...; v1's ``pre_norm`` points, v2's synthesis layers)."""
    out = []
    for name, layer in G.synthesis.noise_layers():
        if layer.resolution >= min_resolution:
            out.append((name, layer.pre_norm if hasattr(layer, "pre_norm") else layer))
    return out


def magnitude_maps(G: Generator, ws: Tensor, min_resolution: int = 16) -> dict[str, Tensor]:
    """Per layer: the channel-mean of ``|activation|``, ``[N, r, r]``, for W+ codes ``ws [N, num_ws, w_dim]``
    rendered with constant noise."""
    maps: dict[str, Tensor] = {}
    handles = []
    for name, module in activation_layers(G, min_resolution):
        def hook(_m, _inp, out, name=name):
            maps[name] = out.detach().float().abs().mean(dim=1)

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            G.synthesis(ws, noise_mode="const")
    finally:
        for h in handles:
            h.remove()
    return maps


def spike_ratio(maps: Tensor) -> Tensor:
    """``max / median`` over the pixels of each map ``[N, r, r]`` -> ``[N]`` (the median floored at 1e-12)."""
    flat = maps.flatten(1)
    return flat.max(dim=1).values / flat.median(dim=1).values.clamp_min(1e-12)


def droplets(G: Generator, num_samples: int = 1000, seed: int = 0, k: float = DEFAULT_K, min_resolution: int = 16,
             batch_size: int = 32, progress: bool = True) -> dict[str, float]:  # fmt: skip
    """The droplet figures of ``G`` on ``num_samples`` random images (module docstring).

    Args:
        G: a generator (StyleGAN2 or v1); its current ``lod`` is used.
        num_samples: images (z from ``seed``; >= 1).
        k: the spike ratio above which an image has a droplet.
        min_resolution: the lowest layer resolution examined (>= 4).
    Returns:
        ``{"droplets": share of images with a ratio above k, "droplets/median_ratio/R": ..., "droplets/p99_ratio/R":
        ..., "droplets/share/R": ...}`` for each examined resolution ``R``.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not activation_layers(G, min_resolution):
        raise ValueError(f"no synthesis layer at {min_resolution} px or above (the network is "
                         f"{G.img_resolution} px)")  # fmt: skip
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    per_res: dict[int, list[Tensor]] = {}
    bar = tqdm(total=num_samples, desc="droplets", disable=bar_disable(progress), unit="img")
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z = torch.randn([n, G.z_dim], generator=gen).to(device)
        with torch.no_grad():
            ws = G.mapping(z, None)
        ratios: dict[int, Tensor] = {}
        for name, m in magnitude_maps(G, ws, min_resolution).items():
            res = int(name.split(".")[0][1:])
            r = spike_ratio(m).cpu()
            ratios[res] = torch.maximum(ratios[res], r) if res in ratios else r
        for res, r in ratios.items():
            per_res.setdefault(res, []).append(r)
        bar.update(n)
    bar.close()
    out: dict[str, float] = {}
    worst = None
    for res in sorted(per_res):
        r = torch.cat(per_res[res]).numpy()
        worst = r if worst is None else np.maximum(worst, r)
        out[f"droplets/median_ratio/{res}"] = float(np.median(r))
        out[f"droplets/p99_ratio/{res}"] = float(np.percentile(r, 99))
        out[f"droplets/share/{res}"] = float((r > k).mean())
    return {"droplets": float((worst > k).mean()), **out}
