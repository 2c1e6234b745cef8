"""Reading and writing: native checkpoints, images, latent codes."""

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, load_generator, save_checkpoint
from .images import from_uint8, load_image, make_grid, save_image, to_uint8
from .latents import Latents, load_latents, save_latents

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "load_checkpoint",
    "load_generator",
    "save_checkpoint",
    "from_uint8",
    "load_image",
    "make_grid",
    "save_image",
    "to_uint8",
    "Latents",
    "load_latents",
    "save_latents",
]
