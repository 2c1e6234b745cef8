"""Reading and writing files given their paths: native checkpoints, NVIDIA/rosinality checkpoints, images,
latent codes. Nothing here looks up a registry name or downloads; :mod:`latentlab.registry` does that above."""

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    init_checkpoint,
    load_checkpoint,
    load_generator_file,
    save_checkpoint,
)
from .describe import describe, format_description
from .foreign import convert, detect_format, load_any
from .images import from_uint8, load_image, make_grid, save_image, to_uint8, write_video
from .latents import Latents, load_latents, save_latents
from .nvidia import UnsafePickleError, UnsupportedModelError
from .rosinality import save_rosinality

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "describe",
    "format_description",
    "init_checkpoint",
    "load_checkpoint",
    "load_generator_file",
    "save_checkpoint",
    "convert",
    "detect_format",
    "load_any",
    "UnsafePickleError",
    "UnsupportedModelError",
    "save_rosinality",
    "from_uint8",
    "load_image",
    "make_grid",
    "save_image",
    "to_uint8",
    "write_video",
    "Latents",
    "load_latents",
    "save_latents",
]
