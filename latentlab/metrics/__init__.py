"""Measuring generators and latent spaces. One file per metric; each returns a dict of floats."""

from .frechet import feature_statistics, frechet_distance, wasserstein_1d

__all__ = ["feature_statistics", "frechet_distance", "wasserstein_1d"]
