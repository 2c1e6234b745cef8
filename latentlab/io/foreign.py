"""One door for every checkpoint format: native ``.safetensors``, NVIDIA ``.pkl``, rosinality ``.pt``.

:func:`load_any` turns any of them into a :class:`~latentlab.io.checkpoint.Checkpoint` whose
``meta["source"]`` records where a converted network came from (format, file hash, the original
constructor arguments, what was ignored and why). :func:`convert` writes the result as a native file, or
exports a native file to rosinality's layout.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ..nn.discriminator import Discriminator
from ..nn.generator import Generator
from ..utils import untrained
from .checkpoint import (
    NETWORKS,
    Checkpoint,
    CheckpointError,
    assign_strict,
    load_checkpoint,
    save_checkpoint,
    stored_networks,
)
from .nvidia import (
    UnsupportedModelError,
    discriminator_config,
    generator_config,
    jsonable,
    latentlab_tensors,
    read_nvidia_pickle,
)
from .rosinality import (
    LR_MLP,
    discriminator_from_state,
    estimate_w_avg,
    find_states,
    generator_from_state,
    load_torch_file,
    save_rosinality,
)

FORMATS = ("latentlab", "nvidia-pkl", "rosinality")
_TORCH_LEGACY_MAGIC = bytes.fromhex("8002 8a0a 6cfc 9c46 f920 6aa8 5019".replace(" ", ""))


def detect_format(path: str | os.PathLike) -> str:
    """``"latentlab"`` (safetensors), ``"rosinality"`` (a ``torch.save`` file) or ``"nvidia-pkl"`` (a plain pickle).

    Decided from the first bytes; a ``.safetensors`` name always goes to the native reader, whose errors
    then say what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {str(path)!r}")
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        return "latentlab"
    if head.startswith(b"PK\x03\x04") or head.startswith(_TORCH_LEGACY_MAGIC):
        return "rosinality"
    if head[:1] == b"\x80":
        return "nvidia-pkl"
    raise CheckpointError(
        f"{path}: not a checkpoint latentlab can read (expected a latentlab .safetensors file, an NVIDIA "
        f".pkl or a rosinality .pt; the file is {'empty' if not head else 'something else'})"
    )


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _wanted(path: Path, present: list[str], networks: tuple[str, ...] | None, first_generator: bool) -> list[str]:
    """The networks to build: ``networks`` (all present if None), or only G_ema/G for ``first_generator``."""
    if first_generator:
        pick = next((n for n in ("G_ema", "G") if n in present), None)
        if pick is None:
            raise CheckpointError(f"{path}: holds no generator (only {', '.join(present) or 'nothing'})")
        return [pick]
    if networks is None:
        return present
    for n in networks:
        if n not in NETWORKS:
            raise ValueError(f"unknown network {n!r}; choose from {', '.join(NETWORKS)}")
        if n not in present:
            raise CheckpointError(f"{path}: has no {n} (it holds {', '.join(present) or 'nothing'})")
    return list(networks)


def _build(net: Generator | Discriminator, tensors: dict[str, torch.Tensor], where: str, name: str):
    assign_strict(net, tensors, tensors.__getitem__, where, name)
    return net.eval()


def _load_nvidia(path: Path, networks, first_generator: bool) -> Checkpoint:
    nets, extras = read_nvidia_pickle(path)
    present = [n for n in NETWORKS if n in nets]
    wanted = _wanted(path, present, networks, first_generator)
    out = Checkpoint()
    details: dict[str, Any] = {}
    for name in wanted:
        fn = nets[name]
        where = f"{path}: {name}"
        if name == "D":
            config, notes = discriminator_config(fn, where)
            net: Any = untrained(Discriminator, config)
        else:
            config, notes = generator_config(fn, where)
            net = untrained(Generator, config)
        tensors = latentlab_tensors(fn, config.resample_filter, where)
        try:
            setattr(out, name, _build(net, tensors, str(path), name))
        except CheckpointError as e:
            raise UnsupportedModelError(f"{e} -- this {fn.class_name} is laid out differently from StyleGAN2") from None
        details[name] = {"class": fn.class_name, "kwargs": jsonable(fn.kwargs), "notes": notes,
                         "source_sha256": fn.source_sha256}  # fmt: skip
        if fn.tf_options is not None:
            details[name]["tf_options"] = jsonable(fn.tf_options)
    out.meta["source"] = {"format": extras.pop("format", "nvidia-pkl"), "networks": details, **extras}
    return out


def _load_rosinality(path: Path, networks, first_generator: bool, lr_mlp: float) -> Checkpoint:
    found = find_states(load_torch_file(path), str(path))
    names = {"g_ema": "G_ema", "g": "G", "d": "D"}
    states = {names[k]: v for k, v in found.states.items()}
    present = [n for n in NETWORKS if n in states]
    wanted = _wanted(path, present, networks, first_generator)
    out = Checkpoint()
    details: dict[str, Any] = {}
    for name in wanted:
        where = f"{path}: {name}"
        notes: list[str] = []
        if name == "D":
            config, tensors = discriminator_from_state(states[name], where)
            net = _build(untrained(Discriminator, config), tensors, str(path), name)
        else:
            config, tensors, notes = generator_from_state(states[name], where, lr_mlp=lr_mlp)
            notes.append(f"mapping lr multiplier {lr_mlp} (rosinality's lr_mlp; files do not record it)")
            avg = found.latent_avg if name == "G_ema" else None
            if avg is not None:
                avg = torch.as_tensor(avg).float()
                if avg.numel() == 0 or avg.numel() % config.w_dim:
                    raise UnsupportedModelError(
                        f"{where}: latent_avg has shape {tuple(avg.shape)}, "
                        f"expected [{config.w_dim}] or [n, {config.w_dim}]"
                    )
                avg = avg.reshape(-1, config.w_dim)
                if avg.shape[0] > 1:
                    notes.append(f"w_avg: mean of the file's {avg.shape[0]} per-layer latent_avg rows")
                tensors["mapping.w_avg"] = avg.mean(0)
                notes.append("w_avg from the file's latent_avg")
            else:
                tensors["mapping.w_avg"] = torch.zeros(config.w_dim)
            net = _build(untrained(Generator, config), tensors, str(path), name)
            if avg is None:
                net.mapping.w_avg.copy_(estimate_w_avg(net))
                notes.append("w_avg estimated: mean of 10,000 mapped z (seed 0); the file has no latent_avg")
        setattr(out, name, net)
        details[name] = {"config": config.to_dict(), "notes": notes}
    out.meta["source"] = {"format": "rosinality", "layout": found.layout, "networks": details, **found.extras}
    return out


def load_any(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    networks: tuple[str, ...] | None = None,
    *,
    first_generator: bool = False,
    lr_mlp: float = LR_MLP,
    sha256: str | None = None,
) -> Checkpoint:
    """Load a native, NVIDIA or rosinality checkpoint into latentlab networks (eval mode).

    Args:
        path: the file; its format is detected from its first bytes.
        device: where to put the networks.
        networks: which of ``"G_ema", "G", "D"`` to load; None = all present.
        first_generator: load only G_ema, or G if there is no G_ema (overrides ``networks``).
        lr_mlp: rosinality's mapping learning-rate multiplier (not stored in its files; default 0.01).
        sha256: the file's SHA-256 when the caller already has it (a download); None = hash the file.
    Returns:
        A :class:`Checkpoint`; for foreign files ``meta["source"]`` describes the conversion.
    Raises:
        UnsafePickleError: the file would run code (nothing was run).
        UnsupportedModelError: a network latentlab does not implement (the message says which part).
        CheckpointError: corrupt or truncated file, or a requested network is absent.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "latentlab":
        if first_generator:
            networks = tuple(_wanted(path, stored_networks(path), None, True))
        return load_checkpoint(path, device=device, networks=networks)
    if fmt == "nvidia-pkl":
        ck = _load_nvidia(path, networks, first_generator)
    else:
        ck = _load_rosinality(path, networks, first_generator, lr_mlp)
    ck.meta["source"].update(file=path.name, sha256=sha256 or file_sha256(path))
    for n in NETWORKS:
        if getattr(ck, n) is not None:
            setattr(ck, n, getattr(ck, n).to(device))
    return ck


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    what: tuple[str, ...] | None = None,
    to: str = "latentlab",
    force: bool = False,
    lr_mlp: float = LR_MLP,
) -> tuple[Checkpoint, list[str]]:
    """Convert ``src`` (any format :func:`load_any` reads) to ``dst``.

    Args:
        what: networks to convert, a subset of ``("G_ema", "G", "D")``; None = all present.
        to: ``"latentlab"`` (a native ``.safetensors``) or ``"rosinality"`` (a ``.pt`` in its train.py layout).
        force: for ``to="rosinality"``, write even when rosinality's code would not reproduce the model
            exactly (see :func:`latentlab.io.rosinality.export_problems`).
    Returns:
        ``(checkpoint, warnings)``: what was written, and any overridden export problems.
    Raises:
        ValueError: unknown ``to`` or a destination with the wrong extension (nothing is written).
    """
    dst = Path(dst)
    if to not in ("latentlab", "rosinality"):
        raise ValueError(f"unknown target format {to!r}; choose 'latentlab' or 'rosinality'")
    if to == "latentlab" and dst.suffix != ".safetensors":
        raise ValueError(f"a latentlab checkpoint must end in .safetensors, got {str(dst)!r}")
    if to == "rosinality" and dst.suffix not in (".pt", ".pth"):
        raise ValueError(f"a rosinality checkpoint must end in .pt or .pth, got {str(dst)!r}")
    if Path(src).resolve() == dst.resolve():
        raise ValueError("source and destination are the same file")
    ck = load_any(src, networks=what, lr_mlp=lr_mlp)
    warnings: list[str] = []
    if to == "latentlab":
        save_checkpoint(dst, G_ema=ck.G_ema, G=ck.G, D=ck.D, meta=ck.meta)
    else:
        warnings = save_rosinality(dst, G_ema=ck.G_ema, G=ck.G, D=ck.D, force=force)
    return ck, warnings
