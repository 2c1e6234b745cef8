"""Linear separability (StyleGAN, Karras et al. 2019, Sec. 4.2), as NVIDIA's implementation computes it.

Sample codes, label every image with a classifier, keep the most confident half per attribute, fit a linear
SVM on the latent (z, and w from the same samples), and measure the conditional entropy H(Y|X) in bits of
the classifier's label Y given the side X of the SVM's plane, on the same kept samples. The score is
``2 ** sum_i H(Y_i|X_i)`` over attributes: 1 when every attribute is linearly separable, larger otherwise.
The paper reports it with 200k samples, 100k kept.

Labels come from ``score > threshold`` with confidence ``|score - threshold|``. For the SynthFaces
classifier the attributes are its four binary ones (smiling, eyes_open, glasses, long_hair) and the other
linear factors split at the middle of their range (``yaw>0``, ``skin_tone>0.5``, ...).

Codes are never all kept in memory: only the scores are, and the kept samples' codes are regenerated from
the seed (:func:`latentlab.edit.directions.replay_codes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..nn.generator import Generator
from ..parallel import World

Scorer = Callable[[Tensor], "Mapping[str, Tensor]"]


def confusion(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Joint frequencies ``p[x, y]`` ``[2, 2]`` of two 0/1 label arrays."""
    x, y = np.asarray(x).astype(int), np.asarray(y).astype(int)
    return np.array([[np.mean((x == a) & (y == b)) for b in (0, 1)] for a in (0, 1)])


def conditional_entropy(p: np.ndarray) -> float:
    """H(Y|X) in bits for a joint distribution ``p[x, y]`` (any non-negative table; it is normalised)."""
    p = np.asarray(p, np.float64)
    p = p / p.sum()
    px = p.sum(1, keepdims=True)
    nz = p > 0
    return float(max(0.0, -(p[nz] * np.log2((p / np.where(px > 0, px, 1))[nz])).sum()))


def separability_entropy(codes: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """H(label | side of a linear SVM fitted to ``codes [N, D]``), evaluated on the same codes (as NVIDIA's)."""
    from sklearn.svm import LinearSVC

    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        return 0.0  # one class: the label is known without the code
    svm = LinearSVC(max_iter=10000, random_state=seed).fit(codes, labels)
    return conditional_entropy(confusion(svm.predict(codes), labels))


def synthfaces_attributes() -> dict[str, tuple[str, float]]:
    """Binary attributes of the SynthFaces classifier: ``name -> (factor, threshold)``."""
    from ..data.synthfaces import ATTRIBUTES, FACTORS, RANGES

    out = dict(ATTRIBUTES)
    used = {f for f, _ in ATTRIBUTES.values()}
    for f in FACTORS:
        if f not in used and f not in ("bg_hue", "shirt_hue"):  # hues are circular: no half-space
            lo, hi = RANGES[f]
            mid = (lo + hi) / 2
            out[f"{f}>{mid:g}"] = (f, mid)
    return out


def classifier_attribute_scorer(classifier: torch.nn.Module, attributes: Mapping[str, tuple[str, float]]):
    """A scorer ``images -> {attribute: score - threshold}`` from a factor classifier's ``predict``."""

    def score(images: Tensor) -> dict[str, Tensor]:
        out = classifier.predict(images)
        return {name: out[f] - t for name, (f, t) in attributes.items()}

    return score


def linear_separability(
    G: Generator,
    scorer: Scorer,
    num_samples: int = 200_000,
    num_keep: int | None = None,
    spaces: Sequence[str] = ("z", "w"),
    seed: int = 0,
    class_idx: int | None = None,
    batch_size: int = 64,
    progress: bool = True,
    world: World | None = None,
) -> dict[str, float]:
    """The StyleGAN paper's linear separability of Z and W.

    With ``world`` (a ``torchrun`` job's processes) the samples are rendered and scored over the processes
    (:func:`~latentlab.edit.directions.sample_scores`) and every process fits the same SVMs: the result equals
    one process's with the same ``batch_size`` and threads.

    Args:
        G: the generator.
        scorer: images ``[n, C, R, R]`` in [-1, 1] -> ``{attribute: [n]}`` signed scores (label = score > 0,
            confidence = |score|), e.g. :func:`classifier_attribute_scorer`.
        num_samples: sampled codes (paper: 200k).
        num_keep: the most confident samples kept per attribute; None = half.
        spaces: any of ``"z"`` and ``"w"``.
    Returns:
        ``{"ls_z", "ls_w", "entropy_z/<attribute>", "entropy_w/<attribute>", "num_samples", "num_keep"}``.
    """
    from ..edit.directions import replay_codes, sample_scores

    if num_samples < 4:
        raise ValueError(f"linear separability needs at least 4 samples, got {num_samples}")
    num_keep = num_samples // 2 if num_keep is None else num_keep
    if not 2 <= num_keep <= num_samples:
        raise ValueError(f"num_keep must be in [2, num_samples={num_samples}], got {num_keep}")
    bad = [s for s in spaces if s not in ("z", "w")]
    if bad:
        raise ValueError(f"spaces must be 'z' and/or 'w', got {bad[0]!r}")
    scores = sample_scores(G, scorer, num_samples, seed=seed, class_idx=class_idx, batch_size=batch_size,
                           progress=progress, world=world)  # fmt: skip
    out: dict[str, float] = {"num_samples": float(num_samples), "num_keep": float(num_keep)}
    totals = dict.fromkeys(spaces, 0.0)
    for name, s in scores.items():
        keep = torch.argsort(s.abs(), descending=True, stable=True)[:num_keep]
        labels = (s[keep] > 0).numpy()
        for space in spaces:
            codes = replay_codes(G, keep, seed=seed, space=space, class_idx=class_idx).numpy()
            h = separability_entropy(codes, labels, seed)
            out[f"entropy_{space}/{name}"] = h
            totals[space] += h
    for space in spaces:
        out[f"ls_{space}"] = float(2 ** totals[space])
    return out
