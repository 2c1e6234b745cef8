"""Fréchet distance and 1-D Wasserstein: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from latentlab.metrics import feature_statistics, frechet_distance, wasserstein_1d


def test_frechet_of_a_set_with_itself_is_zero_and_a_shift_adds_its_square():
    x = np.random.default_rng(0).normal(size=(500, 6))
    mu, s = feature_statistics(x)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, 0, 0, 2.0, 0, 0])
    mu2, s2 = feature_statistics(x + shift)
    assert frechet_distance(mu, s, mu2, s2) == pytest.approx(5.0, rel=1e-8)


def test_frechet_known_covariances():
    # Two centred isotropic Gaussians, scales a and b in D dims: D (a - b)^2.
    d = 4
    assert frechet_distance(np.zeros(d), np.eye(d) * 4, np.zeros(d), np.eye(d)) == pytest.approx(d * (2 - 1) ** 2)
    # Singular covariances (fewer samples than dimensions) stay finite and non-negative.
    x = np.random.default_rng(1).normal(size=(3, 10))
    mu, s = feature_statistics(x)
    assert frechet_distance(mu, s, mu + 1, s) == pytest.approx(10.0, rel=1e-6)
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"\[N >= 2, D\]"):
        feature_statistics(np.zeros((1, 3)))


def test_wasserstein_1d_known_answers():
    assert wasserstein_1d([0, 1, 2], [0, 1, 2]) == 0
    assert wasserstein_1d([0, 1, 2], [1, 2, 3]) == pytest.approx(1.0)  # a shift by 1
    assert wasserstein_1d([0.0], [0.0, 1.0]) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 20000), rng.uniform(0, 1, 20000)
    assert wasserstein_1d(a, b) < 0.02
    assert wasserstein_1d(a, b * 0.5) == pytest.approx(0.25, abs=0.01)  # E|U - U/2| over quantiles = 1/4
