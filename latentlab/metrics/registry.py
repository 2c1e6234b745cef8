"""Metrics by name, one signature: ``fn(G, ctx) -> {name: float, ...}`` where ``ctx`` is a :class:`Context`.

Names follow NVIDIA's where they exist (``ppl_wend``, ...) and encode the protocol:

========================================= =================================================================
``ppl_zfull ppl_wfull ppl_zend ppl_wend`` perceptual path length, face crop (StyleGAN paper)
``ppl2_wend``                             uncropped (StyleGAN2 paper); with another distance than
                                          LPIPS-VGG the keys are ``ppl_wend:NAME`` (e.g. ``:classifier``)
``ls_z ls_w``                             linear separability of Z / W (one sampling pass computes both)
``dci mig sap``                           disentanglement of W codes of generated samples against the
                                          classifier's factor readings (protocol 2, docs/metrics.md)
``dci_z mig_z sap_z``                     the same for Z
``fid kid``                               FID / KID against real images (``data``), standard Inception-v3
``fd_classifier``                         offline stand-in on SynthFaces models: Fréchet distance in the
                                          SynthFaces classifier's features vs fresh renders (not FID)
``droplets``                              share of images with a localized activation spike (> 10x the
                                          map's median) in a 16 px+ layer (StyleGAN2 Fig. 1; droplets.py)
========================================= =================================================================
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..nn.generator import Generator
from ..parallel import World
from .ppl import VARIANTS, Distance, distance_label, ppl


@dataclass
class Context:
    """What the metrics share: sample count, seed, and the measuring instruments."""

    num: int = 10_000  # samples per metric
    seed: int = 0
    batch_size: int = 32
    distance: Distance | None = None  # PPL's; None = LPIPS-VGG
    distance_name: str | None = None  # what ``distance`` is (keys become ppl_*:NAME); None = see ppl()
    classifier: Any = None  # a factor classifier (predict(images) -> {factor: [N]}); for ls_* and dci*
    progress: bool = True
    data: str | None = None  # real images (folder or zip) for fid / kid
    fid_model: Any = None  # an FIDInception; None = the standard weights
    cache: dict[str, dict[str, float]] = field(default_factory=dict)  # shared passes (ls_z + ls_w, ...)
    world: World = field(default_factory=World)  # a torchrun job's processes: ppl, ls, dci/mig/sap, fid/kid shard


def _ppl(variant: str) -> Callable[[Generator, Context], dict[str, float]]:
    def run(G: Generator, ctx: Context) -> dict[str, float]:
        return ppl(G, variant, num_samples=ctx.num, distance=ctx.distance, distance_name=ctx.distance_name,
                   seed=ctx.seed, batch_size=ctx.batch_size, progress=ctx.progress, world=ctx.world)  # fmt: skip

    return run


def _need_classifier(ctx: Context, name: str):
    if ctx.classifier is None:
        raise ValueError(f"metric {name!r} labels images with a classifier; give one (--classifier)")
    return ctx.classifier


def _ls(space: str) -> Callable[[Generator, Context], dict[str, float]]:
    def run(G: Generator, ctx: Context) -> dict[str, float]:
        from .separability import classifier_attribute_scorer, linear_separability, synthfaces_attributes

        if "ls" not in ctx.cache:
            scorer = classifier_attribute_scorer(_need_classifier(ctx, f"ls_{space}"), synthfaces_attributes())
            ctx.cache["ls"] = linear_separability(G, scorer, num_samples=ctx.num, seed=ctx.seed,
                                                  batch_size=ctx.batch_size, progress=ctx.progress,
                                                  world=ctx.world)  # fmt: skip
        r = ctx.cache["ls"]
        return {k: v for k, v in r.items() if k == f"ls_{space}" or k.startswith(f"entropy_{space}/")}

    return run


def generated_factors(G: Generator, ctx: Context, space: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Protocol 2: codes of ``ctx.num`` generated samples and the classifier's (linear) factor readings.

    Returns:
        ``(codes [N, dim], factors [N, K], factor names)``.
    """
    from ..edit.directions import replay_codes, sample_scores

    clf = _need_classifier(ctx, "dci")
    key = "factors"
    if key not in ctx.cache:
        circular = set(getattr(clf.config, "circular", ()))
        ctx.cache[key] = sample_scores(G, lambda im: {k: v for k, v in clf.predict(im).items() if k not in circular},
                                       ctx.num, seed=ctx.seed, batch_size=ctx.batch_size, progress=ctx.progress,
                                       world=ctx.world)  # fmt: skip
    scores = ctx.cache[key]
    names = list(scores)
    codes = replay_codes(G, range(ctx.num), seed=ctx.seed, space=space).numpy()
    return codes, torch.stack([scores[n] for n in names], 1).numpy(), names


def _disent(metric: str, space: str) -> Callable[[Generator, Context], dict[str, float]]:
    def run(G: Generator, ctx: Context) -> dict[str, float]:
        from .disentanglement import dci, mig, sap

        codes, factors, _ = generated_factors(G, ctx, space)
        r = {"dci": lambda: dci(codes, factors, seed=ctx.seed), "mig": lambda: mig(codes, factors),
             "sap": lambda: sap(codes, factors)}[metric]()  # fmt: skip
        suffix = "" if space == "w" else "_z"
        return {k + suffix: v for k, v in r.items()}

    return run


def _fid(metric: str) -> Callable[[Generator, Context], dict[str, float]]:
    def run(G: Generator, ctx: Context) -> dict[str, float]:
        from .fid import fid_kid

        if ctx.data is None:
            raise ValueError(f"metric {metric!r} compares with real images: give them (--data FOLDER_OR_ZIP)")
        if "fid" not in ctx.cache:
            ctx.cache["fid"] = fid_kid(G, ctx.data, num=ctx.num, model=ctx.fid_model, seed=ctx.seed,
                                       batch_size=ctx.batch_size, progress=ctx.progress, world=ctx.world)  # fmt: skip
        r = ctx.cache["fid"]
        return {metric: r[metric], f"{metric}/num_real": r["num_real"]}

    return run


def _fd_classifier(G: Generator, ctx: Context) -> dict[str, float]:
    """The offline stand-in for FID on SynthFaces models: Fréchet distance in the SynthFaces classifier's
    feature space between generated images and fresh renders, with its real-vs-real floor. Not FID."""
    from .quality import quality_report

    r = quality_report(G, _need_classifier(ctx, "fd_classifier"), n=ctx.num, seed=ctx.seed, progress=ctx.progress)
    floor = float(r["fd_classifier_real_vs_real"])
    return {"fd_classifier": float(r["fd_classifier"]), "fd_classifier/real_vs_real": floor}


def _droplets(G: Generator, ctx: Context) -> dict[str, float]:
    from .droplets import droplets

    return droplets(G, num_samples=ctx.num, seed=ctx.seed, batch_size=ctx.batch_size, progress=ctx.progress)


METRICS: dict[str, Callable[[Generator, Context], dict[str, float]]] = {
    **{name: _ppl(name) for name in VARIANTS},
    "ls_z": _ls("z"),
    "ls_w": _ls("w"),
    **{m: _disent(m, "w") for m in ("dci", "mig", "sap")},
    **{f"{m}_z": _disent(m, "z") for m in ("dci", "mig", "sap")},
    "fid": _fid("fid"),
    "kid": _fid("kid"),
    "fd_classifier": _fd_classifier,
    "droplets": _droplets,
}


def parse_metrics(text: str) -> list[str]:
    """``"ppl_wend,ls_w"`` -> names, checked against :data:`METRICS`."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in METRICS]
    if bad or not names:
        raise ValueError(f"unknown metric {bad[0] if bad else text!r}; known: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def compute(names: list[str], G: Generator, ctx: Context) -> dict[str, Any]:
    """Run ``names`` in order; returns ``{"results": {...}, "seconds": {...}, "protocol": {...}}``."""
    import sklearn

    from .._version import __version__

    results: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for name in parse_metrics(",".join(names)):
        t0 = time.perf_counter()
        results.update(METRICS[name](G, ctx))
        seconds[name] = round(time.perf_counter() - t0, 2)
    protocol = {"num": ctx.num, "seed": ctx.seed, "ppl_distance": distance_label(ctx.distance, ctx.distance_name),
                "epsilon": 1e-4, "noise_mode": "const", "ls_keep": "most confident half per attribute",
                "dci_protocol": "generated samples labelled by the classifier (protocol 2)"}  # fmt: skip
    if ctx.world.size > 1:
        protocol["processes"] = ctx.world.size
    versions = {"latentlab": __version__, "torch": torch.__version__, "numpy": np.__version__,
                "scikit-learn": sklearn.__version__, "python": platform.python_version()}  # fmt: skip
    return {"results": results, "seconds": seconds, "protocol": protocol, "versions": versions}
