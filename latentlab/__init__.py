"""latentlab: GAN inversion and latent-space editing around a full StyleGAN2, in pure PyTorch.

The public API, re-exported here:

* networks: :class:`Generator`, :class:`Discriminator`, :class:`GeneratorConfig`,
  :class:`DiscriminatorConfig`, :func:`get_preset`;
* files: :func:`load_generator`, :func:`load_checkpoint`, :func:`save_checkpoint`, :func:`save_latents`,
  :func:`load_latents`, :func:`to_uint8`, :func:`from_uint8`;
* foreign models: :func:`load_any` (NVIDIA ``.pkl``, rosinality ``.pt``), :func:`convert`,
  :func:`save_rosinality`, the registry :mod:`latentlab.registry` (names, URLs, downloads) and
  :mod:`latentlab.pretrained` (``pretrained.load(name)``, ``load_direction``, ``load_classifier``);
* rendering: :func:`generate_images`;
* photos: :func:`align` (FFHQ's alignment of every face in some photos, :func:`latentlab.faces.align_photos`);
  alignment of arrays, landmarks and paste-back live in :mod:`latentlab.faces`;
* projection: :func:`project` and :class:`Projection`; the rest lives in :mod:`latentlab.projection`
  (``from latentlab.projection import load_targets, build_loss, ProjectConfig``).
"""

from . import pretrained, registry
from ._version import __version__
from .faces import align_photos as align
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
from .registry import load_generator
from .render import generate_images
from .utils import resolve_device

__all__ = [
    "__version__",
    "align",
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
    "registry",
    "project",
    "Projection",
    "to_uint8",
]
