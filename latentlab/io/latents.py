"""Latent-code files: ``.npz`` with ``w`` in NVIDIA's ``--projected-w`` layout plus optional arrays and meta.

* ``w``: ``[num_ws, w_dim]`` (one code) or ``[N, num_ws, w_dim]``, float32;
* optional arrays (``z``, ``seeds``, ``noise_<layer>``, ...);
* ``meta``: a JSON string (network, space, how the codes were made).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path


@dataclass
class Latents:
    """Codes read from a file: ``w`` always ``[N, num_ws, w_dim]`` float32, plus extras and meta."""

    w: torch.Tensor
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def save_latents(
    path: str | os.PathLike, w: torch.Tensor | np.ndarray, meta: dict[str, Any] | None = None, **arrays: Any
) -> Path:
    """Write codes ``w`` (``[num_ws, w_dim]`` or ``[N, num_ws, w_dim]``) and extras to ``path`` atomically."""
    w = np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w, dtype=np.float32)
    if w.ndim not in (2, 3):
        raise ValueError(f"latents w must be [num_ws, w_dim] or [N, num_ws, w_dim], got shape {w.shape}")
    for key in arrays:
        if key in ("w", "meta"):
            raise ValueError(f"extra array name {key!r} is reserved")
    payload = {k: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()}
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"latent files are .npz, got {str(path)!r}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, w=w, meta=np.asarray(json.dumps(meta or {})), **payload)
    return path


def load_latents(path: str | os.PathLike) -> Latents:
    """Read a file written by :func:`save_latents` or NVIDIA's projector (``w`` key only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such latents file: {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, io.UnsupportedOperation) as e:
        raise ValueError(f"{path}: not a readable .npz latents file ({e})") from None
    if "w" not in content:
        raise ValueError(f"{path}: has no 'w' array (found: {', '.join(sorted(content)) or 'nothing'})")
    w = content.pop("w")
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"{path}: 'w' must be [num_ws, w_dim] or [N, num_ws, w_dim], got shape {w.shape}")
    meta: dict[str, Any] = {}
    if "meta" in content:
        try:
            meta = json.loads(str(content.pop("meta")))
        except json.JSONDecodeError:
            raise ValueError(f"{path}: 'meta' is not valid JSON") from None
    return Latents(w=torch.from_numpy(w.astype(np.float32)), arrays=content, meta=meta)
