"""Generated-vs-real quality figures through the factor classifier."""

from __future__ import annotations

import numpy as np
import torch

from latentlab.data.classifier import ClassifierConfig, FactorClassifier
from latentlab.metrics.quality import compare, generated_readout, quality_report, real_readout, real_readouts

from conftest import tiny_G

TINY = ClassifierConfig(resolution=32, channels=(8, 16), feature_dim=16)


def _clf():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return FactorClassifier(TINY).eval()


def test_real_against_real_meets_every_target_and_a_shift_does_not():
    clf = _clf()
    a = real_readout(clf, 300, 32, dataset_seed=2)
    b = real_readout(clf, 300, 32, dataset_seed=2, start=300)
    c = real_readout(clf, 300, 32, dataset_seed=3)
    rep = compare(c, a, b, clf)
    assert set(rep["wasserstein_fraction"]) == {"yaw", "roll", "face_width", "skin_tone", "hair_color",
                                               "hair_length", "smile", "bg_hue", "bg_light", "light_dir",
                                               "shirt_hue"}  # fmt: skip
    assert rep["fd_ratio"] < 3.0 and rep["fd_classifier_real_vs_real"] > 0
    # A "generator" whose every output is brighter: the features move, so the distance grows.
    shifted = ({k: v + 0.3 for k, v in c[0].items()}, c[1] + 3 * c[1].std(axis=0))
    bad = compare(shifted, a, b, clf)
    assert bad["fd_ratio"] > 5 and not bad["meets_targets"]["frechet"]
    assert not bad["meets_targets"]["wasserstein"]
    assert bad["attribute_rate"]["smiling"]["generated"] >= rep["attribute_rate"]["smiling"]["generated"]


def test_generated_readout_and_report_shapes():
    G = tiny_G(resolution=32, channel_base=256, channel_max=16)
    clf = _clf()
    pred, feats = generated_readout(G, clf, 10, seed=1, batch=4)
    assert feats.shape == (10, 16) and all(v.shape == (10,) for v in pred.values())
    again, _ = generated_readout(G, clf, 10, seed=1, batch=4)  # seeded
    np.testing.assert_array_equal(pred["yaw"], again["yaw"])
    rep = quality_report(G, clf, n=24, seed=0)
    assert rep["n"] == 24 and np.isfinite(rep["fd_classifier"]) and set(rep["meets_targets"]) == {
        "attribute_rates", "wasserstein", "frechet"}
    # Real readouts made once and passed in give the same report (several snapshots share them).
    reals = real_readouts(clf, 24, 32, dataset_seed=2)
    shared = quality_report(G, clf, n=24, seed=0, reals=reals)
    assert shared["fd_classifier"] == rep["fd_classifier"] and shared["attribute_rate"] == rep["attribute_rate"]
