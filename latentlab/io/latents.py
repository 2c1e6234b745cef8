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

from ..utils import short_error
from ..validate import InvalidInput, float_array, json_object, missing_message
from .atomic import atomic_path

if TYPE_CHECKING:
    from ..nn.generator import Generator


@dataclass
class Latents:
    """Codes read from a file: ``w`` always ``[N, num_ws, w_dim]`` float32, plus extras and meta."""

    w: torch.Tensor
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


META_FIELDS = {"network": str, "space": str, "source": str}  # meta fields latentlab reads, with their types


def save_latents(
    path: str | os.PathLike, w: torch.Tensor | np.ndarray, meta: dict[str, Any] | None = None, **arrays: Any
) -> Path:
    """Write codes ``w`` (``[num_ws, w_dim]`` or ``[N, num_ws, w_dim]``, finite floats) and extras atomically.

    Raises:
        InvalidInput: ``w`` is not a finite float array of 2 or 3 dimensions, a reserved extra name, a path
            that is not ``.npz``, or a ``meta`` that is not a JSON-able dict.
    """
    w = float_array(w, "w", ndim=(2, 3))
    for key in arrays:
        if key in ("w", "meta"):
            raise InvalidInput(f"extra array name {key!r} is reserved")
    payload = {k: np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()}
    path = Path(path)
    if path.suffix != ".npz":
        raise InvalidInput(f"latent files are .npz, got {str(path)!r}")
    try:
        meta_text = json.dumps(json_object(meta or {}, "meta"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"meta must be a JSON-able dict of finite values ({e})") from None
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, w=w, meta=np.asarray(meta_text), **payload)
    return path


def load_latents(path: str | os.PathLike) -> Latents:
    """Read a file written by :func:`save_latents` or NVIDIA's projector (``w`` key only), checking everything.

    Returns:
        :class:`Latents` with ``w`` ``[N, num_ws, w_dim]`` float32, N >= 1.
    Raises:
        FileNotFoundError: no such file.
        InvalidInput (a ValueError): not an ``.npz`` archive (e.g. a ``.npy``), no ``w``, a ``w`` that is empty,
            not 2-D/3-D, not floating point, non-finite or beyond +-1e4; a ``z`` that is not ``[N, z_dim]``
            floats for the N codes; ``seeds`` that are not N integers; noise maps that are not finite floats;
            a ``meta`` that is not a JSON object, or whose ``network``/``space``/``source`` is not a string.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_message(path, "latents file"))
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
            raise InvalidInput(f"{path}: a single .npy array, not an .npz latents archive (save codes with "
                               f"np.savez(path, w=...))")  # fmt: skip
        with data:
            content = {k: data[k] for k in data.files}
    except InvalidInput:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, io.UnsupportedOperation, KeyError) as e:
        raise InvalidInput(f"{path}: not a readable .npz latents file ({short_error(e)})") from None
    if "w" not in content:
        raise InvalidInput(f"{path}: has no 'w' array (found: {', '.join(sorted(content)) or 'nothing'})")
    w = float_array(content.pop("w"), "w", where=str(path), ndim=(2, 3))
    if w.ndim == 2:
        w = w[None]
    n = w.shape[0]
    if "z" in content:
        z = float_array(content["z"], "z", where=str(path), ndim=(1, 2))
        z = z.reshape(1, -1) if z.ndim == 1 else z
        if z.shape[0] != n:
            raise InvalidInput(f"{path}: 'z' has {z.shape[0]} row(s) but 'w' has {n} code(s); they must match")
        content["z"] = z
    if "seeds" in content:
        seeds = np.asarray(content["seeds"]).reshape(-1)
        if seeds.dtype.kind not in "iu" or seeds.shape[0] != n:
            raise InvalidInput(f"{path}: 'seeds' must be {n} integer(s), one per code; got {seeds.dtype} "
                               f"{tuple(seeds.shape)}")  # fmt: skip
    for key in [k for k in content if k.startswith("noise_")]:
        content[key] = float_array(content[key], key, where=str(path), ndim=(2, 3, 4))
    meta: dict[str, Any] = {}
    if "meta" in content:
        raw = content.pop("meta")
        if raw.dtype.kind not in "US" or raw.ndim != 0:
            raise InvalidInput(f"{path}: 'meta' must be one JSON string, got {raw.dtype} {tuple(raw.shape)}")
        try:
            parsed = json.loads(str(raw))
        except (json.JSONDecodeError, RecursionError):
            raise InvalidInput(f"{path}: 'meta' is not valid JSON") from None
        meta = json_object(parsed, "'meta'", where=str(path))
        for key, kind in META_FIELDS.items():
            if key in meta and meta[key] is not None and not isinstance(meta[key], kind):
                raise InvalidInput(f"{path}: meta field {key!r} must be a {kind.__name__}, got "
                                   f"{type(meta[key]).__name__} {meta[key]!r:.60}")  # fmt: skip
    return Latents(w=torch.from_numpy(w), arrays=content, meta=meta)


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
