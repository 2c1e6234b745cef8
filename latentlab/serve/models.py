"""The models a server offers, their direction catalogues, and the bounded stores of codes and uploads.

A :class:`ServedModel` is one generator on the CPU (or the chosen device) with everything the page needs
about it: its public name (a registry name, or a file's stem: the page never sees a server path), its W+
layer table, the directions it offers and the encoder it has. Direction keys are ``"shipped/<attribute>"``
(the registry's fitted directions for this model), ``"sefa/<k>"`` (SeFa on all layers, closed form),
``"pca/<k>"`` (GANSpace on ``pca_samples`` mapped samples) and ``"fit/<id>"`` (fitted in the page).

Slider values are in units of each direction's standard deviation over W: the direction's own ``std`` when
it records one (PCA, fitted directions), else the spread of ``w_samples`` mapped codes along it.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..edit.directions import Direction, load_direction, model_fingerprint, pca_directions, sefa_directions
from ..nn.generator import Generator
from ..nn.wplus import layer_table
from ..registry import (
    ENCODERS,
    alignment_of,
    direction_path,
    encoder_path,
    list_directions,
    list_models,
    load_generator,
)
from ..validate import InvalidInput

SEFA_COMPONENTS = 10
PCA_COMPONENTS = 10
PCA_SAMPLES = 20_000  # GANSpace used 1M; 20k gives the leading components to a few degrees, in about a second
W_SAMPLES = 5_000  # the codes a direction's std is measured on when it does not record one
MAX_FITTED = 32  # directions fitted in the page, per model (the oldest go first)


def public_name(name_or_path: str, taken: set[str]) -> str:
    """The name the page shows for a network: a registry name as is, a file by its stem (made unique)."""
    text = str(name_or_path)
    if text in list_models():
        base = text
    else:  # a file's stem, reduced to characters that are safe in a page, a header and a download's name
        base = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(text).stem)[:60].strip("-.") or "model"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


@dataclass
class ServedModel:
    """One generator and what the editor offers for it (see the module docstring)."""

    name: str
    G: Generator
    source: str  # the registry name or file it came from (server side only, never sent to the page)
    encoder_file: Path | None = None
    alignment: str = "ffhq"  # the face framing it expects (latentlab.faces.TEMPLATES; registry.alignment_of)
    directions: dict[str, Direction] = field(default_factory=dict)
    _std: dict[str, float] = field(default_factory=dict)
    _w: torch.Tensor | None = None
    _encoder: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, name_or_path: str, name: str, device: str = "cpu", encoder: str | os.PathLike | None = None,
             pca_samples: int = PCA_SAMPLES, progress: bool = False) -> ServedModel:  # fmt: skip
        """Load a generator by registry name or file, with its shipped directions, SeFa and PCA.

        Args:
            name_or_path: a registry name or a checkpoint file (any format ``load_generator`` reads).
            name: the public name (:func:`public_name`).
            encoder: an encoder file for it; None = the registry's encoder for this model, if it has one.
            pca_samples: mapped samples for the PCA directions (0 = no PCA directions).
        """
        G = load_generator(name_or_path, device=device).eval().requires_grad_(False)
        enc = None
        if encoder is not None:
            enc = Path(encoder)
        elif str(name_or_path) in ENCODERS:
            try:
                enc = encoder_path(str(name_or_path))
            except FileNotFoundError:
                enc = None
        m = cls(name=name, G=G, source=str(name_or_path), encoder_file=enc, alignment=alignment_of(name_or_path))
        fp = model_fingerprint(G)
        if str(name_or_path) in list_models():
            for full in list_directions(str(name_or_path)):
                d = load_direction(direction_path(full))
                if d.model_hash in (None, fp):
                    m.directions[f"shipped/{d.attribute}"] = d
        for k, d in enumerate(sefa_directions(G, components=SEFA_COMPONENTS, model=name)):
            m.directions[f"sefa/{k}"] = d
        if pca_samples:
            for k, d in enumerate(pca_directions(G, num_samples=pca_samples, components=PCA_COMPONENTS, seed=0,
                                                 model=name, progress=progress)):  # fmt: skip
                m.directions[f"pca/{k}"] = d
        return m

    @property
    def num_ws(self) -> int:
        return self.G.num_ws

    def encoder(self):
        """The encoder (loaded on first use, checked against this generator), or None when there is none."""
        if self.encoder_file is None:
            return None
        with self._lock:
            if self._encoder is None:
                from ..projection.encoder import load_encoder

                self._encoder = load_encoder(self.encoder_file, G=self.G)
            return self._encoder

    def direction(self, key: str) -> Direction:
        """The direction of ``key``; InvalidInput naming the model for an unknown one."""
        d = self.directions.get(key)
        if d is None:
            raise InvalidInput(f"model {self.name!r} has no direction {key!r:.80}")
        return d

    def w_samples(self) -> torch.Tensor:
        """``[W_SAMPLES, w_dim]`` mapped codes at psi 1, seed 0 (drawn once)."""
        with self._lock:
            if self._w is None:
                gen = torch.Generator().manual_seed(0)
                z = torch.randn(W_SAMPLES, self.G.z_dim, generator=gen)
                with torch.no_grad():
                    self._w = torch.cat([self.G.mapping(c.to(self.G.w_avg.device), None)[:, 0].cpu()
                                         for c in z.split(1000)])  # fmt: skip
            return self._w

    def direction_std(self, key: str) -> float:
        """The std of W along the direction: one slider unit."""
        d = self.direction(key)
        if d.std is not None and d.space != "z":
            return float(d.std)
        if key not in self._std:
            self._std[key] = float((self.w_samples() @ d.vector).std())
        return self._std[key]

    def add_fitted(self, d: Direction) -> str:
        """Add a direction fitted in the page; returns its key (``fit/<id>``). The oldest go past MAX_FITTED."""
        with self._lock:
            fitted = [k for k in self.directions if k.startswith("fit/")]
            for k in fitted[: max(0, len(fitted) - MAX_FITTED + 1)]:
                del self.directions[k]
                self._std.pop(k, None)
            key = f"fit/{secrets.token_hex(6)}"
            self.directions[key] = d
            return key

    def describe(self) -> dict[str, Any]:
        """What the page needs: name, resolution, the W+ layer table, the directions, whether it can encode."""
        G = self.G
        dirs = []
        for key, d in self.directions.items():
            dirs.append({"key": key, "label": _label(key, d), "kind": key.split("/")[0],
                         "layers": None if d.layers is None or len(set(d.layers)) == G.num_ws else list(d.layers),
                         "accuracy": d.accuracy})  # fmt: skip
        return {"name": self.name, "resolution": G.img_resolution, "channels": G.img_channels,
                "num_ws": G.num_ws, "w_dim": G.w_dim, "layers": layer_table(G),
                "directions": dirs, "encoder": self.encoder_file is not None, "alignment": self.alignment,
                "truncation_cutoff_max": G.num_ws}  # fmt: skip


def _label(key: str, d: Direction) -> str:
    kind = key.split("/")[0]
    if kind == "shipped":
        return d.attribute
    if kind == "sefa":
        return f"SeFa {key.split('/')[1]}"
    if kind == "pca":
        return f"PC {key.split('/')[1]}"
    return d.attribute


@dataclass
class Entry:
    """A stored code: ``ws [1, num_ws, w_dim]``, its noise maps, and a tuned generator for a PTI code."""

    model: str
    ws: torch.Tensor
    noise: list[torch.Tensor | None] | None = None
    generator: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    upload: Upload | None = None  # the uploaded photo it was projected from (for the paste-back export)


@dataclass
class Upload:
    """An uploaded image: the target at the model's resolution, and for an aligned photo what pasting back needs."""

    model: str
    target: Any  # uint8 [R, R, C]
    data: bytes | None = None  # the photo's file, kept encoded (a quarter of its pixels' memory or less)
    keypoints: Any = None  # [4, 2] in the photo
    transform: Any = None  # the crop's AlignTransform


class BoundedStore:
    """A thread-safe mapping of unguessable ids to values, dropping the least recently used past ``limit``."""

    def __init__(self, limit: int, what: str):
        self.limit, self.what = limit, what
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, value: Any) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._items:
                raise InvalidInput(f"unknown {self.what} id (it may have expired: the server keeps the last "
                                   f"{self.limit}); upload or project again")  # fmt: skip
            self._items.move_to_end(key)
            return self._items[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class CodeStore(BoundedStore):
    """Projected codes by id; a code asked for with another model's name is refused."""

    def __init__(self, limit: int = 256, tuned_limit: int = 4):
        super().__init__(limit, "code")
        self.tuned_limit = tuned_limit

    def put(self, value: Entry) -> str:
        key = super().put(value)
        with self._lock:  # tuned generators are large: keep only the newest few
            tuned = [k for k, e in self._items.items() if e.generator is not None]
            for k in tuned[: max(0, len(tuned) - self.tuned_limit)]:
                del self._items[k]
        return key

    def get(self, key: str, model: str | None = None) -> Entry:
        entry = super().get(key)
        if model is not None and entry.model != model:
            raise InvalidInput(f"code {key!r} belongs to model {entry.model!r}, not {model!r}")
        return entry
