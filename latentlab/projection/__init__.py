"""Projection of real images into W and W+ (StyleGAN2 paper, appendix D), batched, with LPIPS or offline losses.

* :func:`project` / :func:`iter_projections` / :func:`project_batch`: the optimizer;
* the distances (LPIPS, the offline losses, :func:`build_loss`) come from :mod:`latentlab.perceptual` and are
  re-exported here;
* :func:`load_targets`: image files -> targets, or :class:`TargetFiles` read a chunk at a time (from
  :mod:`latentlab.data.targets`, re-exported);
  :mod:`.outputs`: codes, pictures, videos and summaries.
"""

from ..data.targets import TargetFiles, Targets, expand_inputs, load_target, load_targets
from ..perceptual import LOSSES, OFFLINE_DEFAULT, LPIPSLoss, WeightsUnavailable, build_loss
from .projector import (
    SPACES,
    ProjectConfig,
    Projection,
    iter_projections,
    learning_rate,
    noise_regularization,
    normalize_noise_,
    project,
    project_batch,
    w_noise_scale,
    w_statistics,
)

__all__ = [
    "LOSSES",
    "OFFLINE_DEFAULT",
    "SPACES",
    "LPIPSLoss",
    "ProjectConfig",
    "Projection",
    "TargetFiles",
    "Targets",
    "WeightsUnavailable",
    "build_loss",
    "expand_inputs",
    "iter_projections",
    "learning_rate",
    "load_target",
    "load_targets",
    "noise_regularization",
    "normalize_noise_",
    "project",
    "project_batch",
    "w_noise_scale",
    "w_statistics",
]
