"""Directions in latent space and the edits that use them.

* :mod:`latentlab.edit.ops`: ``edit``, ``mix``, ``mix_grid``, ``interpolate``, ``truncate``,
  ``noise_variation`` and the layer selections (``layer_indices``);
* :mod:`latentlab.edit.directions`: :class:`Direction`, InterFaceGAN fitting (``fit_directions``,
  ``fit_direction``), conditioning (``condition``; ``refine_direction`` conditions a fitted one and sets
  its layers), GANSpace (``pca_directions``), SeFa (``sefa_directions``), and the files (``save_direction``,
  ``load_direction``);
* :mod:`latentlab.edit.figures`: the strips, grids and videos the CLI writes.

The embedded model's fitted directions load by name: ``latentlab.pretrained.load_direction("synthfaces-64/smile")``.
"""

from .directions import (
    Direction,
    classifier_scorer,
    condition,
    fit_direction,
    fit_directions,
    load_direction,
    model_fingerprint,
    pca_directions,
    refine_direction,
    replay_codes,
    sample_scores,
    save_direction,
    sefa_directions,
)
from .ops import (
    GROUPS,
    edit,
    interpolate,
    layer_indices,
    lerp,
    mix,
    mix_grid,
    noise_variation,
    parse_alphas,
    slerp,
    sweep,
    truncate,
)

__all__ = [
    "GROUPS",
    "Direction",
    "classifier_scorer",
    "condition",
    "edit",
    "fit_direction",
    "fit_directions",
    "interpolate",
    "layer_indices",
    "lerp",
    "load_direction",
    "mix",
    "mix_grid",
    "model_fingerprint",
    "noise_variation",
    "parse_alphas",
    "pca_directions",
    "refine_direction",
    "replay_codes",
    "sample_scores",
    "save_direction",
    "sefa_directions",
    "slerp",
    "sweep",
    "truncate",
]
