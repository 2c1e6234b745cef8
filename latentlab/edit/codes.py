"""Reading codes and labels for the editing commands: latents files, seeds, label tables."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..io.latents import load_latents
from ..nn.generator import Generator, seed_to_z


@dataclass
class Codes:
    """W+ codes from one or more files, in order, with what came with them."""

    ws: Tensor  # [N, num_ws, w_dim]
    names: list[str]  # one per code: file stem, with ":k" for files of several codes, or "seedS"
    z: Tensor | None = None  # [N, z_dim] when every file had z (latentlab generate), else None
    noise: list[Tensor | None] | None = None  # per-layer [N, 1, r, r] when every file had noise maps
    meta: list[dict] = field(default_factory=list)  # each file's meta


def expand_code_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, folders as their ``*.npz`` (sorted); raises when a path does not exist or none is found."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.glob("*.npz") if not x.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"no .npz codes in folder {str(p)!r}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such codes file or folder: {str(p)!r}")
    if not out:
        raise ValueError("no codes given")
    return out


def load_codes(paths: list[str | os.PathLike], G: Generator) -> Codes:
    """Read latents files (and folders of them) made for ``G``.

    Raises:
        ValueError: codes of another shape than ``G``'s ``[num_ws, w_dim]``, or an unreadable file.
    """
    from ..io.latents import latents_noise

    ws, names, zs, noises, metas = [], [], [], [], []
    for path in expand_code_paths(paths):
        lat = load_latents(path)
        if lat.w.shape[1:] != (G.num_ws, G.w_dim):
            raise ValueError(f"{path}: codes of shape {tuple(lat.w.shape[1:])} do not fit this network, which "
                             f"wants [{G.num_ws}, {G.w_dim}]")  # fmt: skip
        n = lat.w.shape[0]
        ws.append(lat.w)
        names += [path.stem] if n == 1 else [f"{path.stem}:{k}" for k in range(n)]
        z = lat.arrays.get("z")
        zs.append(None if z is None else torch.from_numpy(np.asarray(z, np.float32)).reshape(n, -1))
        noises.append(latents_noise(G, lat))
        metas.append(lat.meta)
    z = torch.cat(zs) if all(x is not None for x in zs) else None
    noise = None
    if all(x is not None for x in noises):
        noise = [None if maps[0] is None else torch.cat(maps) for maps in zip(*noises, strict=True)]
    return Codes(torch.cat(ws), names, z, noise, metas)


def seed_codes(G: Generator, seeds: list[int], truncation_psi: float = 1.0) -> Codes:
    """Codes of ``seeds`` drawn as ``latentlab generate`` draws them (NVIDIA's seed-to-z rule)."""
    z = torch.cat([seed_to_z(G.z_dim, s) for s in seeds])
    with torch.no_grad():
        ws = G.mapping(z.to(G.w_avg.device), None, truncation_psi=truncation_psi).cpu()
    return Codes(ws, [f"seed{s}" for s in seeds], z=z)


def read_labels(path: str | os.PathLike, attribute: str, names: list[str]) -> Tensor:
    """Column ``attribute`` of a CSV table, one value per code: rows matched to ``names`` by a ``name`` (or
    ``file``) column when there is one, else taken in order.

    Returns:
        ``[len(names)]`` float32.
    Raises:
        ValueError: a missing column, a missing, non-numeric, NaN or infinite value, or a row count that does not
            match.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such labels file: {str(path)!r}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: no rows")
    if attribute not in rows[0]:
        raise ValueError(f"{path}: no column {attribute!r} (columns: {', '.join(rows[0])})")
    key = next((k for k in ("name", "file") if k in rows[0]), None)
    if key is not None:
        table = {Path(r[key]).stem if key == "file" else r[key]: r[attribute] for r in rows}
        missing = [n for n in names if n not in table]
        if missing:
            raise ValueError(f"{path}: no row for code {missing[0]!r} (matched by the {key!r} column)")
        values = [table[n] for n in names]
    else:
        if len(rows) != len(names):
            raise ValueError(f"{path}: {len(rows)} rows for {len(names)} codes (add a 'name' column to match them)")
        values = [r[attribute] for r in rows]
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{path}: column {attribute!r} has a non-numeric value") from None
    bad = [n for n, v in zip(names, out, strict=True) if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{path}: column {attribute!r} is NaN or infinite for {len(bad)} code(s), e.g. {bad[0]!r}")
    return torch.tensor(out, dtype=torch.float32)
