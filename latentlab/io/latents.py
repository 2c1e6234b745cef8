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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .atomic import atomic_path

if TYPE_CHECKING:
    from ..nn.generator import Generator


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


def noise_arrays(G: Generator, noise: Sequence[torch.Tensor | None], index: int) -> dict[str, np.ndarray]:
    """``{"noise_<layer>": [r, r]}`` for image ``index`` of a projection's per-layer maps."""
    out = {}
    for (name, _), x in zip(G.synthesis.noise_layers(), noise, strict=True):
        if x is not None:
            out[f"noise_{name}"] = x[index, 0].numpy().astype(np.float32)
    return out


def latents_noise(G: Generator, latents: Latents) -> list[torch.Tensor | None] | None:
    """The per-layer noise maps stored with codes, as ``[N, 1, r, r]`` per layer; None when none are stored.

    Raises:
        ValueError: some noise layers are stored and others are missing, or a map has the wrong size.
    """
    n = latents.w.shape[0]
    layers = G.synthesis.noise_layers()
    present = [f"noise_{name}" in latents.arrays for name, layer in layers if layer.use_noise]
    if not any(present):
        return None
    out: list[torch.Tensor | None] = []
    for name, layer in layers:
        if not layer.use_noise:
            out.append(None)
            continue
        key, r = f"noise_{name}", layer.resolution
        if key not in latents.arrays:
            raise ValueError(f"the latents file has noise maps but not {key!r}; was it made for this network?")
        a = torch.from_numpy(np.asarray(latents.arrays[key], dtype=np.float32))
        if a.shape[-2:] != (r, r) or a.numel() not in (r * r, n * r * r):
            raise ValueError(f"noise map {key!r} has shape {tuple(a.shape)}; this network wants [{r}, {r}] "
                             f"per code")  # fmt: skip
        out.append(a.reshape(-1, 1, r, r).expand(n, 1, r, r).contiguous())
    return out
