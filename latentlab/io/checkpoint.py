"""The native checkpoint: one ``.safetensors`` file, no pickles.

Layout (format version 1):

* tensors ``G_ema.<param>``, ``G.<param>``, ``D.<param>`` (each network optional, at least one present):
  every parameter and persistent buffer of the network, under NVIDIA's names;
* ``__metadata__`` (strings): ``format = "latentlab-checkpoint"``, ``format_version = "1"``,
  ``latentlab_version``, ``torch_version``, ``config`` (JSON ``{"G": {...}, "D": {...}}``; G_ema shares G's)
  and ``meta`` (free-form JSON: training progress, data set, notes).

Loading is strict: a missing, unexpected or mis-shaped tensor is an error that names it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .._version import __version__
from ..nn.config import DiscriminatorConfig, GeneratorConfig
from ..nn.discriminator import Discriminator
from ..nn.generator import Generator
from ..utils import short_error, untrained
from ..validate import InvalidInput, json_object, number
from .atomic import atomic_path

FORMAT = "latentlab-checkpoint"
FORMAT_VERSION = 1
NETWORKS = ("G_ema", "G", "D")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read as asked: corrupt, foreign, incomplete or mismatched."""


@dataclass
class Checkpoint:
    """The networks and metadata of one checkpoint file; absent networks are None."""

    G_ema: Generator | None = None
    G: Generator | None = None
    D: Discriminator | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # latentlab/torch versions that wrote it

    @property
    def generator(self) -> Generator | None:
        """The generator to render with: G_ema when present, else G."""
        return self.G_ema if self.G_ema is not None else self.G


def save_checkpoint(
    path: str | os.PathLike,
    *,
    G_ema: Generator | None = None,
    G: Generator | None = None,
    D: Discriminator | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the given networks to ``path`` (``.safetensors``) atomically.

    A crash at any moment leaves the previous file (if any) intact. ``G`` and ``G_ema`` must share a
    config. ``meta`` must be JSON-serialisable.

    Returns:
        The path written.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"native checkpoints are .safetensors files, got {str(path)!r}")
    nets = {"G_ema": G_ema, "G": G, "D": D}
    if all(v is None for v in nets.values()):
        raise ValueError("save_checkpoint needs at least one of G_ema=, G=, D=")
    gens = [g for g in (G_ema, G) if g is not None]
    if len(gens) == 2 and G.config != G_ema.config:
        raise ValueError("G and G_ema have different configs; they must be the same architecture")
    config: dict[str, Any] = {}
    if gens:
        config["G"] = gens[0].config.to_dict()
    if D is not None:
        config["D"] = D.config.to_dict()

    tensors: dict[str, torch.Tensor] = {}
    for prefix, net in nets.items():
        if net is None:
            continue
        for name, t in net.state_dict().items():
            tensors[f"{prefix}.{name}"] = t.detach().to("cpu").contiguous().clone()
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "latentlab_version": __version__,
        "torch_version": torch.__version__,
        "config": json.dumps(config),
        "meta": json.dumps(meta or {}),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


@contextlib.contextmanager
def _open(path: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """Open a native checkpoint and check its header; yields the safetensors handle and the metadata."""
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {str(path)!r}")
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable .safetensors checkpoint ({short_error(e)})") from None
    with handle as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise CheckpointError(f"{path}: a .safetensors file, but not a latentlab checkpoint (no format tag)")
        if metadata.get("format_version") != str(FORMAT_VERSION):
            raise CheckpointError(
                f"{path}: checkpoint format version {metadata.get('format_version')!r} is not supported "
                f"(this latentlab reads version {FORMAT_VERSION})"
            )
        yield f, metadata


META_OBJECTS = ("source", "training_set_kwargs", "args")  # meta fields that must be JSON objects when present


def check_meta(meta: Any, where: str) -> dict[str, Any]:
    """A checkpoint's ``meta`` checked: a JSON object whose ``source`` (and other nested records) are objects and
    whose ``cur_nimg`` (training progress) is a non-negative integer.

    Raises:
        CheckpointError: naming the file and the field.
    """
    try:
        meta = json_object(meta, "meta", where=where)
        for key in META_OBJECTS:
            if meta.get(key) is not None:
                json_object(meta[key], f"meta field {key!r}", where=where)
        if "cur_nimg" in meta:
            number(meta["cur_nimg"], "meta field 'cur_nimg'", where=where, integer=True, low=0, high=2**62)
    except InvalidInput as e:
        raise CheckpointError(str(e)) from None
    return meta


def _networks_in(path: Path, keys: list[str]) -> list[str]:
    stray = sorted(k for k in keys if k.split(".", 1)[0] not in NETWORKS)
    if stray:
        raise CheckpointError(f"{path}: unexpected tensor {stray[0]!r} (not under G_ema., G. or D.)")
    prefixes = {k.split(".", 1)[0] for k in keys}
    return [n for n in NETWORKS if n in prefixes]


def stored_networks(path: str | os.PathLike) -> list[str]:
    """Which of ``G_ema``, ``G``, ``D`` a checkpoint holds, in that order."""
    path = Path(path)
    with _open(path) as (f, _):
        return _networks_in(path, list(f.keys()))


def load_checkpoint(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    networks: tuple[str, ...] | None = None,
) -> Checkpoint:
    """Rebuild the networks stored in ``path`` from their configs and load their tensors strictly.

    Args:
        path: a ``.safetensors`` file written by :func:`save_checkpoint`.
        device: where to put the networks.
        networks: which of ``"G_ema", "G", "D"`` to load; None = all present. Asking for an absent
            one is an error.
    Returns:
        A :class:`Checkpoint` with the networks in eval mode.
    Raises:
        FileNotFoundError: no such file.
        CheckpointError: corrupt file, foreign file, missing/unexpected/mis-shaped tensors, bad config.
    """
    path = Path(path)
    for n in networks or ():
        if n not in NETWORKS:
            raise ValueError(f"unknown network {n!r}; choose from {', '.join(NETWORKS)}")
    with _open(path) as (f, metadata):
        try:
            config = json.loads(metadata.get("config", ""))
            meta = json.loads(metadata.get("meta", "{}"))
        except (json.JSONDecodeError, RecursionError) as e:
            raise CheckpointError(f"{path}: config metadata is not valid JSON ({short_error(e)})") from None
        meta = check_meta(meta, str(path))
        present = _networks_in(path, list(f.keys()))
        wanted = present if networks is None else list(networks)
        for n in wanted:
            if n not in present:
                raise CheckpointError(f"{path}: has no {n} (it holds {', '.join(present) or 'nothing'})")
        versions = {k: metadata.get(k, "?") for k in ("latentlab_version", "torch_version")}
        out = Checkpoint(meta=meta, versions=versions)
        for n in wanted:
            net = _build(path, config, "D" if n == "D" else "G")
            _load_strict(net, f, path, n)
            setattr(out, n, net.to(device).eval())
    return out


def _build(path: Path, config: Any, kind: str) -> Generator | Discriminator:
    """The untrained network described by ``config[kind]``; config problems become CheckpointErrors."""
    try:
        if kind == "D":
            return untrained(Discriminator, DiscriminatorConfig.from_dict(config["D"]))
        return untrained(Generator, GeneratorConfig.from_dict(config["G"]))
    except KeyError as e:
        raise CheckpointError(f"{path}: config metadata has no {e.args[0]!r} entry") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad config in metadata ({e})") from None


def _load_strict(net: torch.nn.Module, f: Any, path: Path, prefix: str) -> None:
    """Load ``prefix.*`` tensors from the open file ``f`` into ``net``, naming any mismatch."""
    stored = {k[len(prefix) + 1 :]: k for k in f.keys() if k.startswith(prefix + ".")}

    def get(name: str) -> torch.Tensor:
        try:
            return f.get_tensor(stored[name])
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: cannot read tensor {prefix}.{name} ({short_error(e)})") from None

    assign_strict(net, stored, get, str(path), prefix)


def assign_strict(
    net: torch.nn.Module, names: Any, get: Callable[[str], torch.Tensor], where: str, prefix: str
) -> None:
    """Fill ``net``'s parameters and buffers from ``get(name)`` for exactly the state-dict ``names``.

    A missing, unexpected, mis-shaped, mis-typed or non-finite tensor raises a :class:`CheckpointError` that
    names it as ``prefix.name`` and starts with ``where`` (usually the file).
    """
    expected = net.state_dict()
    names = set(names)
    missing = sorted(set(expected) - names)
    unexpected = sorted(names - set(expected))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"{where}: missing tensor {prefix}.{missing[0]}{more}")
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise CheckpointError(f"{where}: unexpected tensor {prefix}.{unexpected[0]}{more}")
    state = {}
    for name, ref in expected.items():
        t = get(name)
        if t.shape != ref.shape:
            raise CheckpointError(
                f"{where}: tensor {prefix}.{name} has shape {tuple(t.shape)}, the config wants {tuple(ref.shape)}"
            )
        if t.dtype != ref.dtype:
            raise CheckpointError(f"{where}: tensor {prefix}.{name} is {t.dtype}, expected {ref.dtype}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{where}: tensor {prefix}.{name} holds {bad} NaN or infinite value(s); the "
                                  f"network would render garbage")  # fmt: skip
        state[name] = t
    net.load_state_dict(state, strict=True)


GENERATOR_CHOICES = ("G_ema", "G", "auto")  # which generator of a checkpoint to load; auto = G_ema, else G


def check_generator_choice(network: str) -> None:
    """Raise ``ValueError`` unless ``network`` is one of :data:`GENERATOR_CHOICES`."""
    if network not in GENERATOR_CHOICES:
        raise ValueError(f"network must be 'G_ema', 'G' or 'auto', got {network!r}")


def load_state_file(path: Path, fmt: str, version: int, what: str, version_label: str) -> dict[str, Any]:
    """A training-state file (``torch.save`` of a dict), read ``weights_only`` and checked for its format tag.

    Args:
        fmt, version: the ``format`` and ``format_version`` entries the file must have.
        what: the kind of file in messages (``"training state"``); ``version_label`` names its version there.
    Raises:
        CheckpointError: unreadable (torn, foreign), another format, or another version.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for torn or foreign files
        raise CheckpointError(f"{path}: not a readable {what} ({short_error(e)})") from None
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise CheckpointError(f"{path}: not a latentlab {what}")
    if state.get("format_version") != version:
        raise CheckpointError(f"{path}: {version_label} version {state.get('format_version')} is not supported")
    return state


def refuse_directory(path: str | os.PathLike) -> Path:
    """``path`` as a Path; raises ``IsADirectoryError`` (a clear line) when it names a folder."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a checkpoint file")
    return path


def load_generator_file(
    path: str | os.PathLike,
    device: str | torch.device = "auto",
    network: str = "auto",
) -> Generator:
    """A ready generator from a checkpoint file: eval mode, gradients off, ``w_avg`` present, on ``device``.

    This reads files only; :func:`latentlab.load_generator` also takes registry names and URLs.

    Args:
        path: a latentlab ``.safetensors`` checkpoint, an NVIDIA ``.pkl`` or a rosinality ``.pt`` (converted on
            the fly; nothing in them is executed).
        device: ``"auto"`` (cuda, mps, cpu), or a device.
        network: ``"G_ema"``, ``"G"``, or ``"auto"`` (G_ema when present, else G).
    Raises:
        ValueError: an unknown ``network``.
        FileNotFoundError, IsADirectoryError: ``path`` is not a file.
        CheckpointError: the file cannot be read as a generator checkpoint.
    """
    from ..utils import resolve_device
    from .foreign import load_any

    check_generator_choice(network)
    dev = resolve_device(device)
    path = refuse_directory(path)
    if network == "auto":
        G = load_any(path, device=dev, first_generator=True).generator
    else:
        G = getattr(load_any(path, device=dev, networks=(network,)), network)
    return G.requires_grad_(False)


def init_checkpoint(preset: str, out: str | os.PathLike, seed: int = 0, with_d: bool = True) -> Path:
    """Write an untrained checkpoint of ``preset`` (G, G_ema = copy of G, and D) seeded by ``seed``.

    Returns:
        The path written (atomically).
    Raises:
        KeyError: an unknown preset (the message lists the known ones).
    """
    import copy

    from ..nn.config import get_preset

    p = get_preset(preset)
    with torch.random.fork_rng(devices=[]):  # seed the initialisers without touching the caller's RNG
        torch.manual_seed(seed)
        G = Generator(p.G)
        D = Discriminator(p.D) if with_d else None
    return save_checkpoint(out, G=G, G_ema=copy.deepcopy(G), D=D,
                           meta={"preset": preset, "seed": seed, "trained": False})  # fmt: skip
