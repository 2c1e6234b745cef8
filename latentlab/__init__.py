"""latentlab: GAN inversion and latent-space editing around a full StyleGAN2, in pure PyTorch.

The public API, re-exported here:

* networks: :class:`Generator`, :class:`Discriminator`, :class:`GeneratorConfig`,
  :class:`DiscriminatorConfig`, :func:`get_preset`;
* files: :func:`load_generator`, :func:`load_checkpoint`, :func:`save_checkpoint`, :func:`save_latents`,
  :func:`load_latents`, :func:`to_uint8`, :func:`from_uint8`;
* foreign models: :func:`load_any` (NVIDIA ``.pkl``, rosinality ``.pt``), :func:`convert`,
  :func:`save_rosinality`, and the registry :mod:`latentlab.pretrained` (``pretrained.load(name)``);
* rendering: :func:`generate_images`;
* projection: :func:`project` and :class:`Projection`; the rest lives in :mod:`latentlab.projection`
  (``from latentlab.projection import load_targets, build_loss, ProjectConfig``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("latentlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from . import pretrained
from .generate import generate_images
from .io import (
    Checkpoint,
    CheckpointError,
    Latents,
    UnsafePickleError,
    UnsupportedModelError,
    convert,
    from_uint8,
    load_any,
    load_checkpoint,
    load_generator,
    load_latents,
    make_grid,
    save_checkpoint,
    save_image,
    save_latents,
    save_rosinality,
    to_uint8,
)
from .nn import (
    PRESETS,
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    get_preset,
    sample_z,
    seed_to_z,
)
from .projection import Projection, project
from .utils import resolve_device

__all__ = [
    "__version__",
    "PRESETS",
    "Checkpoint",
    "CheckpointError",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "Latents",
    "UnsafePickleError",
    "UnsupportedModelError",
    "convert",
    "from_uint8",
    "generate_images",
    "get_preset",
    "load_checkpoint",
    "load_generator",
    "load_any",
    "load_latents",
    "make_grid",
    "resolve_device",
    "sample_z",
    "save_checkpoint",
    "save_image",
    "save_latents",
    "save_rosinality",
    "seed_to_z",
    "pretrained",
    "project",
    "Projection",
    "to_uint8",
]
