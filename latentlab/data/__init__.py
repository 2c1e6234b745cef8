"""Datasets: image folders and zips (NVIDIA's ``dataset_tool`` layout, ``dataset.json`` labels) and SynthFaces,
the face-like portraits latentlab renders itself with known generative factors, and their factor classifier.

* :mod:`.datasets`: :class:`ImageDataset`, :func:`prepare_dataset`, :func:`to_training_pixels` (the one rule that
  turns any image into a training or projection target);
* :mod:`.synthfaces`: the renderer; :mod:`.classifier`: the factor classifier trained on it.

Nothing here imports training, inversion or metrics; they import this.
"""

from .datasets import (
    IMAGE_SUFFIXES,
    DatasetError,
    ImageDataset,
    PrepareReport,
    archive_name,
    prepare_dataset,
    to_training_pixels,
)
from .synthfaces import ATTRIBUTES, BINARY, FACTORS, RANGES, Face, keypoints, render, sample_factors

__all__ = [
    "ATTRIBUTES",
    "BINARY",
    "FACTORS",
    "IMAGE_SUFFIXES",
    "RANGES",
    "DatasetError",
    "Face",
    "ImageDataset",
    "PrepareReport",
    "archive_name",
    "keypoints",
    "prepare_dataset",
    "render",
    "sample_factors",
    "to_training_pixels",
]
