"""Tuned generators (pivotal tuning) stored compactly: only the synthesis tensors that changed, plus the pivot.

A tuned file is a ``.safetensors`` file whose metadata says ``format = "latentlab-tuned"``. It holds

* ``G.synthesis.<name>``: every synthesis tensor whose values differ from the base model's (the mapping
  network and unchanged buffers are not stored);
* ``pivot``: ``[1, num_ws, w_dim]``, the code the model was tuned around;
* metadata ``base``: the base model's name or path as given, its *fingerprint*
  (:func:`~latentlab.nn.generator.model_fingerprint`, as directions record it) and its config; ``tune``:
  the tuning's settings and results; ``image``: the target's name.

:func:`apply_tuned` rebuilds the tuned generator from a base generator and refuses a base with another
fingerprint. :func:`latentlab.load_generator` (and so every ``--network`` option) reads tuned files, loading
the base by its recorded name or path (a relative path is taken relative to the tuned file first).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .._version import __version__
from ..nn.generator import Generator, model_fingerprint
from .atomic import atomic_path
from .checkpoint import CheckpointError

FORMAT = "latentlab-tuned"
FORMAT_VERSION = 1


def save_tuned(path: str | os.PathLike, tuned: Generator, base: Generator, base_ref: str, pivot: torch.Tensor,
               meta: dict[str, Any] | None = None, image: str = "") -> Path:  # fmt: skip
    """Write the tensors of ``tuned``'s synthesis that differ from ``base``'s, the pivot and the base's fingerprint.

    Args:
        path: a ``.safetensors`` file (written atomically).
        tuned, base: the tuned generator and the one it was tuned from (same architecture).
        base_ref: how to find the base again: a registry name or a checkpoint path.
        pivot: ``[1, num_ws, w_dim]``.
        meta: the tuning's record (:meth:`latentlab.projection.Tuned.meta`).
        image: the target's name.
    Returns:
        The path.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"tuned generators are .safetensors files, got {str(path)!r}")
    if tuned.config != base.config:
        raise ValueError("the tuned generator and the base have different configs")
    base_sd = base.synthesis.state_dict()
    tensors = {}
    for name, t in tuned.synthesis.state_dict().items():
        if not torch.equal(t.detach().cpu(), base_sd[name].detach().cpu()):
            tensors[f"G.synthesis.{name}"] = t.detach().to("cpu").contiguous().clone()
    tensors["pivot"] = pivot.detach().to("cpu", torch.float32).contiguous().clone()
    metadata = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "latentlab_version": __version__,
        "base": json.dumps({"network": str(base_ref), "fingerprint": model_fingerprint(base),
                            "config": base.config.to_dict()}),
        "tune": json.dumps(meta or {}), "image": image,
    }  # fmt: skip
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def is_tuned(path: str | os.PathLike) -> bool:
    """True when ``path`` is a safetensors file tagged ``latentlab-tuned`` (False for anything else)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(16)
        if len(head) < 9 or head[8:9] != b"{":
            return False
        with safe_open(str(p), framework="pt", device="cpu") as f:
            return (f.metadata() or {}).get("format") == FORMAT
    except (SafetensorError, OSError, ValueError):
        return False


def read_tuned(path: str | os.PathLike, tensors: bool = True) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(info, tensors)`` of a tuned file: info has ``base`` (network, fingerprint, config), ``tune``, ``image``.
    With ``tensors=False`` only the metadata is read (the file is checked all the same) and the dict is empty.

    Raises:
        CheckpointError: not a tuned file, another version, or malformed metadata.
    """
    p = Path(path)
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            if md.get("format") != FORMAT:
                raise CheckpointError(f"{p}: not a latentlab tuned generator")
            if md.get("format_version") != str(FORMAT_VERSION):
                raise CheckpointError(f"{p}: tuned-generator format version {md.get('format_version')!r} is not "
                                      f"supported (this latentlab reads version {FORMAT_VERSION})")  # fmt: skip
            keys = list(f.keys())
            loaded = {k: f.get_tensor(k) for k in keys} if tensors else {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{p}: not a readable tuned generator ({e})") from None
    try:
        base = json.loads(md.get("base", ""))
        tune = json.loads(md.get("tune", "{}"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{p}: malformed metadata ({e})") from None
    if not isinstance(base, dict) or not isinstance(base.get("network"), str) or \
            not isinstance(base.get("fingerprint"), str):  # fmt: skip
        raise CheckpointError(f"{p}: metadata 'base' must hold the base model's network and fingerprint")
    if "pivot" not in keys:
        raise CheckpointError(f"{p}: has no 'pivot' tensor")
    return {"base": base, "tune": tune, "image": md.get("image", "")}, loaded


def apply_tuned(base: Generator, path: str | os.PathLike,
                loaded: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None) -> Generator:  # fmt: skip
    """The tuned generator: a copy of ``base`` with the file's synthesis tensors (eval mode, gradients off).

    ``loaded`` is :func:`read_tuned`'s result when the caller has it already (the file is then not read again).

    Raises:
        CheckpointError: ``base`` is not the model the file was tuned from (another fingerprint), or a tensor
            that does not exist in ``base`` or has another shape.
    """
    p = Path(path)
    info, tensors = loaded if loaded is not None else read_tuned(p)
    fp = model_fingerprint(base)
    want = info["base"]["fingerprint"]
    if fp != want:
        raise CheckpointError(f"{p}: tuned from a base model with fingerprint {want[:16]}..., but the base given "
                              f"({info['base']['network']}) has {fp[:16]}...: not the same weights")  # fmt: skip
    G = copy.deepcopy(base)
    sd = G.synthesis.state_dict()
    for key, t in tensors.items():
        if key == "pivot":
            continue
        name = key.removeprefix("G.synthesis.")
        if not key.startswith("G.synthesis.") or name not in sd:
            raise CheckpointError(f"{p}: unexpected tensor {key!r}")
        if tuple(t.shape) != tuple(sd[name].shape) or not torch.isfinite(t).all():
            raise CheckpointError(f"{p}: tensor {key!r} has shape {list(t.shape)}, expected {list(sd[name].shape)} "
                                  f"(or non-finite values)")  # fmt: skip
        sd[name] = t.to(sd[name].dtype)
    G.synthesis.load_state_dict(sd, strict=True)
    # Directions fitted on the base apply to its tuned copies (edit.Direction.check_model reads this).
    G.tuned_from = {"network": info["base"]["network"], "fingerprint": want, "file": str(p)}
    device = base.w_avg.device
    return G.to(device).eval().requires_grad_(False)


def base_reference(path: str | os.PathLike, info: dict[str, Any] | None = None) -> str:
    """The base model to load for a tuned file: its recorded name, or its recorded path (relative paths are tried
    beside the tuned file first). ``info`` is :func:`read_tuned`'s first item, when the caller has it."""
    p = Path(path)
    ref = (info if info is not None else read_tuned(p, tensors=False)[0])["base"]["network"]
    beside = p.parent / ref
    if not Path(ref).is_absolute() and beside.is_file():
        return str(beside)
    return ref
