"""Named things a user loads: generators, the SynthFaces factor classifier and the shipped directions.

The names and files live in :mod:`latentlab.registry` (re-exported here, so ``latentlab.pretrained.resolve``,
``MODELS``, ``fetch``, ``load`` and the rest are the registry's own); this module adds the two loaders that
build objects of the higher layers from a registry path: :func:`load_classifier` and :func:`load_direction`.

Example::

    import latentlab as ll
    G = ll.pretrained.load("synthfaces-64")
    smile = ll.pretrained.load_direction("synthfaces-64/smile")
    clf = ll.pretrained.load_classifier("synthfaces-64")
"""

from __future__ import annotations

import os

import torch

from .data.classifier import FactorClassifier, load_classifier_file
from .edit.directions import Direction
from .edit.directions import load_direction as load_direction_file
from .registry import (
    CLASSIFIERS,
    DEFAULT_MODEL,
    DIRECTIONS_DIR,
    MODELS,
    DownloadError,
    PretrainedModel,
    cached_path,
    classifier_path,
    default_model,
    direction_path,
    download,
    fetch,
    fetch_url,
    get,
    latentlab_home,
    list_directions,
    list_models,
    load,
    load_generator,
    pretrained_dirs,
    resolve,
)
from .utils import resolve_device

__all__ = [
    "CLASSIFIERS",
    "DEFAULT_MODEL",
    "DIRECTIONS_DIR",
    "MODELS",
    "DownloadError",
    "PretrainedModel",
    "cached_path",
    "classifier_path",
    "default_model",
    "direction_path",
    "download",
    "fetch",
    "fetch_url",
    "get",
    "latentlab_home",
    "list_directions",
    "list_models",
    "load",
    "load_classifier",
    "load_direction",
    "load_generator",
    "pretrained_dirs",
    "resolve",
]


def load_classifier(name_or_path: str | os.PathLike = "synthfaces-64", device: str | torch.device = "auto"
                    ) -> FactorClassifier:  # fmt: skip
    """The SynthFaces factor classifier: a module whose ``predict(images)`` returns ``{factor: [N]}``.

    Args:
        name_or_path: an embedded classifier's name (``CLASSIFIERS``) or a classifier ``.safetensors`` file.
        device: where to put it.
    Returns:
        A :class:`latentlab.data.classifier.FactorClassifier` in eval mode (``.meta`` holds its training
        record and held-out figures).
    Raises:
        FileNotFoundError: an unknown name, or a known one whose file is not in any ``pretrained/`` folder.
    """
    return load_classifier_file(classifier_path(name_or_path), device=resolve_device(device))


def load_direction(name_or_path: str | os.PathLike, model: str | None = None) -> Direction:
    """A direction by name (``"synthfaces-64/smile"``, or ``"smile"`` with ``model=``) or from a file.

    Args:
        name_or_path: a shipped direction's name, or a direction file (``.npy`` with its ``.json``, or a bare
            InterFaceGAN boundary ``.npy``).
        model: the model whose shipped directions a bare attribute name refers to.
    Returns:
        A :class:`latentlab.edit.directions.Direction`.
    Raises:
        FileNotFoundError: neither a file nor a shipped name (the message lists the shipped ones).
    """
    return load_direction_file(direction_path(name_or_path, model))
