"""Registry of named models.

Each entry names a checkpoint shipped in the package's ``pretrained/`` folder (the embedded models) or,
in later versions, one downloaded from a published URL with a checksum. ``resolve(name_or_path)`` turns a
name or a path into a file; unknown names raise an error listing the known ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PretrainedModel:
    """Metadata of a named model."""

    name: str  # registry name, e.g. "synthfaces-64"
    description: str  # one line
    filename: str  # file name inside the pretrained/ folder
    resolution: int  # output side in pixels
    license: str = "MIT"  # licence of the weights
    source: str = "trained by latentlab"  # provenance
    sha256: str | None = None  # checksum of the file, when fixed


# Filled by later releases (the embedded SynthFaces model, NVIDIA's official models).
MODELS: dict[str, PretrainedModel] = {}

_CHECKPOINT_SUFFIXES = (".safetensors", ".pkl", ".pt", ".pth")

# The model ``latentlab demo`` and the examples use; None until the embedded model ships.
DEFAULT_MODEL: str | None = None


def pretrained_dirs() -> list[Path]:
    """Folders searched for embedded files: ``$LATENTLAB_PRETRAINED``, the checkout's ``pretrained/``,
    and the copy installed inside the package."""
    here = Path(__file__).resolve().parent
    dirs = []
    if os.environ.get("LATENTLAB_PRETRAINED"):
        dirs.append(Path(os.environ["LATENTLAB_PRETRAINED"]))
    dirs += [here.parent / "pretrained", here / "pretrained"]
    return dirs


def list_models(models: dict[str, PretrainedModel] | None = None) -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(MODELS if models is None else models)


def get(name: str, models: dict[str, PretrainedModel] | None = None) -> PretrainedModel:
    """The registry entry for ``name``; raises ``KeyError`` listing the known names otherwise."""
    models = MODELS if models is None else models
    try:
        return models[name]
    except KeyError:
        known = ", ".join(sorted(models)) or "none registered yet"
        raise KeyError(f"unknown model name {name!r}; known models: {known}") from None


def resolve(name_or_path: str | os.PathLike, models: dict[str, PretrainedModel] | None = None) -> Path:
    """A checkpoint path for a registry name or an existing path.

    Raises:
        FileNotFoundError: neither an existing file nor a known name (the message lists the known names),
            or a known name whose file is missing.
    """
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.is_dir():
        raise IsADirectoryError(f"{str(p)!r} is a directory, not a checkpoint file")
    models = MODELS if models is None else models
    name = str(name_or_path)
    if name not in models:
        if "/" in name or os.sep in name or p.suffix in _CHECKPOINT_SUFFIXES:
            raise FileNotFoundError(f"no such file: {name!r}")
        known = ", ".join(sorted(models)) or "none registered yet"
        raise FileNotFoundError(f"{name!r} is neither a file nor a known model name (known models: {known})")
    entry = models[name]
    for d in pretrained_dirs():
        if (d / entry.filename).is_file():
            return d / entry.filename
    searched = ", ".join(str(d) for d in pretrained_dirs())
    raise FileNotFoundError(f"model {name!r}: file {entry.filename!r} not found in {searched}")
