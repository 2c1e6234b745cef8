"""FID and KID with the standard FID Inception-v3 (TensorFlow's 2015-12-05 graph, ported to PyTorch).

* FID (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the 2048-d pool features of
  real and generated images (:func:`latentlab.metrics.frechet.frechet_distance`).
* KID (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased MMD² with the cubic polynomial kernel
  ``(x.y / d + 1)^3``, averaged over random subsets (NVIDIA's defaults: 100 subsets of up to 1000).

The network and its weights are :class:`latentlab.perceptual.inception.FIDInception` (the perceptual layer);
this module turns its features into the two metrics.

Offline there are no Inception weights. latentlab then measures a Fréchet distance in the SynthFaces
classifier's feature space instead (``latentlab.metrics.quality``), and names it so. It is not FID.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ..parallel import World, map_tasks
from ..perceptual.inception import FIDInception, fetch_weights
from .frechet import feature_statistics, frechet_distance


def features(model: nn.Module, batches: Iterable[Tensor]) -> np.ndarray:
    """``[N, 2048]`` float64 features of image batches (each ``[n, C, H, W]`` in [-1, 1])."""
    dev = next(model.parameters()).device
    return torch.cat([model(b.to(dev)).double().cpu() for b in batches]).numpy()


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID from two feature sets ``[N, D]``."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


def kid_from_features(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
                      seed: int = 0) -> float:  # fmt: skip
    """Unbiased MMD² with the kernel ``(x.y / d + 1)^3``, averaged over random subsets (NVIDIA's defaults)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    n = real.shape[1]
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 images in each set")
    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / n + 1) ** 3

    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        kxx, kyy = kernel(x, x), kernel(y, y)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))  # off-diagonal means
        total += within - 2 * kernel(x, y).mean()
    return float(total / num_subsets)


def fid_kid(
    G,
    data: str | os.PathLike,
    num: int = 50_000,
    model: nn.Module | None = None,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = True,
    world: World | None = None,
) -> dict[str, float]:
    """FID and KID between ``num`` generated images (psi 1, random noise, as NVIDIA's ``fid50k_full``) and
    the real images of ``data`` (a folder or zip; all of them, or the first ``num`` of a larger set).

    Args:
        model: a :class:`FIDInception`; None = the standard weights (downloaded when allowed).
        world: a ``torchrun`` job's processes; None = this one. Real batch ``k`` and generated batch ``k`` are
            embedded by process ``k % size`` (every process makes the same z draws); every process gets all the
            features and the result, bit-identical to one process with the same ``batch_size`` and threads.
    Returns:
        ``{"fid", "kid", "num_fake", "num_real"}``.
    """
    from tqdm.auto import tqdm

    from ..data.datasets import ImageDataset
    from ..render import class_labels

    world = world if world is not None else World()
    model = model if model is not None else FIDInception(fetch_weights())
    device = G.w_avg.device
    model.to(device)
    dev = next(model.parameters()).device
    reals = ImageDataset(data, resolution=G.img_resolution, crop="center", channels=G.img_channels, use_labels=False)
    n_real = min(num, reals.num_images)
    bar = tqdm(total=n_real + num, desc="fid", unit="img", disable=world.bar_disable(progress))

    def on_round(done: dict[int, Tensor], fresh: list[int]) -> None:
        bar.update(sum(done[k].shape[0] for k in fresh))

    def real(k: int) -> Tensor:
        imgs, _ = reals.batch(range(k * batch_size, min((k + 1) * batch_size, n_real)))
        with torch.no_grad():
            return model(imgs.to(dev)).double().cpu()

    gen = torch.Generator().manual_seed(seed)
    drawn = [-1]  # the last generated batch whose z this process has drawn

    def fake(k: int) -> Tensor:
        s = k * batch_size
        while drawn[0] < k:  # every process draws every batch's z, in order, to keep the stream
            drawn[0] += 1
            z = torch.randn([min(batch_size, num - drawn[0] * batch_size), G.z_dim], generator=gen)
        with torch.no_grad():
            ws = G.mapping(z.to(device), class_labels(G, z.shape[0], None if G.c_dim == 0 else 0))
            imgs = G.synthesis(ws, noise_mode="random", generator=torch.Generator(device).manual_seed(seed + s))
            return model(imgs.clamp(-1, 1).to(dev)).double().cpu()

    try:
        real_f = torch.cat(map_tasks(world, -(-n_real // batch_size), real, on_round=on_round)).numpy()
        fake_f = torch.cat(map_tasks(world, -(-num // batch_size), fake, on_round=on_round)).numpy()
    finally:
        bar.close()
    return {"fid": fid_from_features(real_f, fake_f), "kid": kid_from_features(real_f, fake_f, seed=seed),
            "num_fake": float(num), "num_real": float(n_real)}  # fmt: skip
