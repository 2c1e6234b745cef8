"""Reading and writing: native checkpoints, NVIDIA/rosinality checkpoints, images, latent codes."""

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, load_generator, save_checkpoint
from .foreign import convert, detect_format, load_any
from .images import from_uint8, load_image, make_grid, save_image, to_uint8, write_video
from .latents import Latents, load_latents, save_latents
from .nvidia import UnsafePickleError, UnsupportedModelError
from .rosinality import save_rosinality

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "load_generator",
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
