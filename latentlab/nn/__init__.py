"""StyleGAN2 networks in pure PyTorch: configs, layers, mapping, synthesis, generator, discriminator."""

from .config import PRESETS, DiscriminatorConfig, GeneratorConfig, Preset, get_preset, num_ws_for
from .discriminator import Discriminator
from .generator import Generator, sample_z, seed_to_z
from .mapping import MappingNetwork, truncate
from .synthesis import NOISE_MODES, SynthesisNetwork, use_fused_modconv

__all__ = [
    "PRESETS",
    "NOISE_MODES",
    "DiscriminatorConfig",
    "GeneratorConfig",
    "Preset",
    "get_preset",
    "num_ws_for",
    "Discriminator",
    "Generator",
    "MappingNetwork",
    "SynthesisNetwork",
    "sample_z",
    "seed_to_z",
    "truncate",
    "use_fused_modconv",
]
