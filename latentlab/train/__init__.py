"""Training StyleGAN2 generators: losses, the loop, resume and data-parallel processes.

The datasets it reads live in :mod:`latentlab.data.datasets` (re-exported here).

The entry point is :func:`train` with a :class:`TrainConfig`; ``latentlab train`` wraps it.
"""

from ..data.datasets import DatasetError, ImageDataset, PrepareReport, prepare_dataset, to_training_pixels
from .augment import BGC, AdaptiveP, AugmentPipe
from .config import TrainConfig, ema_beta, lazy_adam_hparams
from .distributed import World, init_world
from .loop import Trainer, TrainResult, find_resume_point, kimg_tag, list_snapshots, train
from .loss import StyleGAN2Loss, mix_styles, path_lengths, r1_penalty
from .sampling import IndexStream

__all__ = [
    "BGC",
    "AdaptiveP",
    "AugmentPipe",
    "DatasetError",
    "ImageDataset",
    "IndexStream",
    "PrepareReport",
    "StyleGAN2Loss",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "World",
    "ema_beta",
    "find_resume_point",
    "init_world",
    "kimg_tag",
    "lazy_adam_hparams",
    "list_snapshots",
    "mix_styles",
    "path_lengths",
    "prepare_dataset",
    "r1_penalty",
    "to_training_pixels",
    "train",
]
