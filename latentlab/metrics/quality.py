"""How well a generator reproduces SynthFaces, measured through the factor classifier.

Both sides are read by the same classifier:

* generated images: ``G(z)`` for ``n`` seeded latents (psi 1, random noise);
* real images: fresh SynthFaces renders from a dataset seed the generator never saw.

For every factor the report gives the 1-D Wasserstein distance between the two distributions of predicted
values, as a fraction of the factor's range. For the binary attributes it gives the two rates side by
side. It also gives a Fréchet distance in the classifier's 256-d feature space ("FD-classifier", not FID),
next to the same distance between two disjoint real sets of the same size, which is the floor a perfect
generator would reach at that sample size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.classifier import FactorClassifier, render_batch
from ..data.synthfaces import ATTRIBUTES
from ..utils import bar_disable
from .frechet import feature_statistics, frechet_distance, wasserstein_1d

# The targets for the embedded model.
TARGETS = {"binary_rate_points": 5.0, "wasserstein_fraction": 0.05, "frechet_ratio": 3.0}


@torch.no_grad()
def _read(classifier: FactorClassifier, images: Tensor) -> tuple[dict[str, np.ndarray], np.ndarray]:
    device = next(classifier.parameters()).device
    x = images.to(device)
    pred, feats = classifier.predict_with_features(x)
    return {k: v.cpu().numpy() for k, v in pred.items()}, feats.cpu().numpy()


@torch.no_grad()
def generated_readout(G, classifier: FactorClassifier, n: int, seed: int = 0, batch: int = 64, psi: float = 1.0,
                      progress: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """Classifier predictions ``{factor: [n]}`` and features ``[n, D]`` of ``n`` images of ``G``."""
    from tqdm.auto import tqdm

    from ..nn.generator import sample_z

    classifier.eval()
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    preds, feats = [], []
    for i in tqdm(range(0, n, batch), desc="generated", disable=bar_disable(progress), leave=False):
        m = min(batch, n - i)
        z = sample_z(G.z_dim, m, generator=gen).to(device)
        noise_gen = torch.Generator(device).manual_seed(seed * 1_000_003 + i)
        img = G(z, truncation_psi=psi, noise_mode="random", generator=noise_gen).clamp(-1, 1)
        p, f = _read(classifier, img)
        preds.append(p)
        feats.append(f)
    return {k: np.concatenate([p[k] for p in preds]) for k in preds[0]}, np.concatenate(feats)


def real_readout(classifier: FactorClassifier, n: int, resolution: int, dataset_seed: int, start: int = 0,
                 batch: int = 256, progress: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """Classifier predictions and features of SynthFaces ``start .. start + n`` of ``dataset_seed``."""
    from tqdm.auto import tqdm

    classifier.eval()
    preds, feats = [], []
    for i in tqdm(range(start, start + n, batch), desc="real", disable=bar_disable(progress), leave=False):
        x, _ = render_batch(range(i, min(i + batch, start + n)), resolution, dataset_seed)
        p, f = _read(classifier, x)
        preds.append(p)
        feats.append(f)
    return {k: np.concatenate([p[k] for p in preds]) for k in preds[0]}, np.concatenate(feats)


Readout = tuple[dict[str, np.ndarray], np.ndarray]  # predictions {factor: [N]} and features [N, D]


def real_readouts(classifier: FactorClassifier, n: int, resolution: int, dataset_seed: int,
                  progress: bool = False) -> tuple[Readout, Readout]:  # fmt: skip
    """The readouts of the two disjoint real sets :func:`quality_report` compares with: SynthFaces ``0..n-1`` and
    ``n..2n-1`` of ``dataset_seed`` at ``resolution``."""
    return (real_readout(classifier, n, resolution, dataset_seed, progress=progress),
            real_readout(classifier, n, resolution, dataset_seed, start=n, progress=progress))  # fmt: skip


def compare(gen: Readout, real: Readout, real2: Readout, classifier: FactorClassifier) -> dict[str, Any]:
    """The report from three readouts: generated, real, and a second disjoint real set (the baseline)."""
    cfg = classifier.config
    gp, gf = gen
    rp, rf = real
    _, rf2 = real2
    out: dict[str, Any] = {"wasserstein_fraction": {}, "attribute_rate": {}}
    for name in cfg.factors:
        if name in cfg.binary:
            continue
        lo, hi = cfg.ranges[name]
        # Circular hues are compared as values in [0, 1): an upper bound on the distance on the circle.
        out["wasserstein_fraction"][name] = wasserstein_1d(gp[name], rp[name]) / (hi - lo)
    for attr, (factor, threshold) in ATTRIBUTES.items():
        if factor not in gp:
            continue
        cut = 0.5 if factor in cfg.binary else threshold
        out["attribute_rate"][attr] = {"generated": float((gp[factor] > cut).mean()),
                                       "real": float((rp[factor] > cut).mean())}  # fmt: skip
    fd = frechet_distance(*feature_statistics(gf), *feature_statistics(rf))
    base = frechet_distance(*feature_statistics(rf2), *feature_statistics(rf))
    out["fd_classifier"] = fd
    out["fd_classifier_real_vs_real"] = base
    out["fd_ratio"] = fd / base if base > 0 else float("inf")
    out["meets_targets"] = {
        "attribute_rates": all(abs(v["generated"] - v["real"]) * 100 <= TARGETS["binary_rate_points"]
                               for v in out["attribute_rate"].values()),  # fmt: skip
        "wasserstein": all(v <= TARGETS["wasserstein_fraction"] for v in out["wasserstein_fraction"].values()),
        "frechet": out["fd_ratio"] <= TARGETS["frechet_ratio"],
    }
    return out


def quality_report(G, classifier: FactorClassifier, n: int = 10_000, seed: int = 0, real_seed: int = 2,
                   progress: bool = False, reals: tuple[Readout, Readout] | None = None) -> dict[str, Any]:  # fmt: skip
    """Generated vs real SynthFaces through ``classifier``: Wasserstein per factor (fraction of its range),
    attribute rates, and the classifier-space Fréchet distance with its real-vs-real baseline.

    Args:
        G: a generator (its resolution is used for the real renders).
        classifier: a :class:`FactorClassifier`.
        n: samples per set (the paper-style figures use 10k).
        seed: latents and noise of the generated set.
        real_seed: the SynthFaces dataset seed of the real sets (images ``0..n-1`` and ``n..2n-1``).
        reals: those two sets' readouts (:func:`real_readouts`), to compare several generators without
            rendering them again; None = render and read them here.
    """
    res = G.img_resolution
    gen = generated_readout(G, classifier, n, seed=seed, progress=progress)
    real, real2 = reals if reals is not None else real_readouts(classifier, n, res, real_seed, progress)
    report = compare(gen, real, real2, classifier)
    report.update({"n": n, "seed": seed, "real_dataset_seed": real_seed, "targets": TARGETS})
    return report
