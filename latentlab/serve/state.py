"""What the page asks to see, as data: an edit state parsed from JSON, and the codes it composes to.

The page holds each tab's state and sends all of it with every request, so the server keeps no per-tab state
beyond the codes a projection made (kept by id in :class:`~latentlab.serve.models.CodeStore`). A state is::

    {"model": "synthfaces-64",
     "source": {"kind": "seed", "seed": 7}                                   # or
               {"kind": "blend", "seeds": [1, 2], "weights": [0.5, 0.5]}     # or
               {"kind": "code", "id": "<a projection's code id>"},
     "psi": 1.0, "cutoff": null,                                             # truncation (cutoff: leading rows)
     "edits": [{"direction": "shipped/smile", "alpha": 1.5, "layers": "all"}],   # alpha in units of std
     "mix": [{"source": {...}, "layers": "fine"}, ...] | null,               # style mixing: a code per group
     "interp": {"source": {...}, "t": 0.5} | null,                           # lerp in W+ towards a second code
     "noise": "const" | "random" | "none", "noise_seed": 0,
     "preview": false}                     # true while a slider is dragged: a cheap preview for large models

Composition order: source codes, interpolation, style mixing, truncation, then the edits (each
``alpha * std`` along its unit direction on its layers), as ``latentlab generate`` then ``latentlab edit``
would do it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..edit.codes import seed_codes
from ..edit.ops import edit, layer_indices, lerp, mix, truncate
from ..validate import InvalidInput, number, string

if TYPE_CHECKING:
    from .models import CodeStore, ServedModel

SOURCE_KINDS = ("seed", "blend", "code")
NOISE_MODES = ("const", "random", "none")
MAX_SEED = 2**32 - 1
MAX_BLEND = 8  # seeds in one blend
MAX_EDITS = 64  # sliders in one state
MAX_MIXES = 8  # second codes in one state
MAX_ALPHA = 100.0  # |alpha| in units of std


@dataclass(frozen=True)
class Source:
    """Where a code comes from: a seed, a weighted blend of seeds (in W), or a stored code (a projection)."""

    kind: str
    seed: int = 0
    seeds: tuple[int, ...] = ()
    weights: tuple[float, ...] = ()
    id: str = ""


@dataclass(frozen=True)
class SliderEdit:
    direction: str  # a key of the model's direction catalogue, e.g. "shipped/smile", "sefa/3", "fit/<id>"
    alpha: float  # in units of the direction's std
    layers: str | list[int]  # a layer selection (layer_indices)


@dataclass(frozen=True)
class EditState:
    model: str
    source: Source
    psi: float = 1.0
    cutoff: int | None = None
    edits: tuple[SliderEdit, ...] = ()
    mixes: tuple[tuple[Source, str | list[int]], ...] = ()  # (second code, the layers taken from it), in order
    interp_source: Source | None = None
    interp_t: float = 0.0
    noise: str = "const"
    noise_seed: int = 0
    preview: bool = False


def _obj(x: Any, what: str) -> dict:
    if not isinstance(x, dict):
        raise InvalidInput(f"{what} must be a JSON object, got {type(x).__name__}")
    return x


def _int(x: Any, what: str, low: int = 0, high: int = MAX_SEED) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise InvalidInput(f"{what} must be an integer, got {x!r:.40}")
    return int(number(x, what, low=low, high=high, integer=True))


def _bool(x: Any, what: str) -> bool:
    if not isinstance(x, bool):
        raise InvalidInput(f"{what} must be true or false, got {x!r:.40}")
    return x


def parse_source(x: Any, what: str = "source") -> Source:
    """A :class:`Source` from its JSON form; InvalidInput (naming ``what``) for anything else."""
    x = _obj(x, what)
    kind = string(x.get("kind"), f"{what}.kind", choices=SOURCE_KINDS)
    if kind == "seed":
        return Source("seed", seed=_int(x.get("seed"), f"{what}.seed"))
    if kind == "blend":
        seeds, weights = x.get("seeds"), x.get("weights")
        if not isinstance(seeds, list) or not 1 <= len(seeds) <= MAX_BLEND:
            raise InvalidInput(f"{what}.seeds must list 1 to {MAX_BLEND} seeds")
        if not isinstance(weights, list) or len(weights) != len(seeds):
            raise InvalidInput(f"{what}.weights must list one weight per seed ({len(seeds)})")
        seeds = tuple(_int(s, f"{what}.seeds[{i}]") for i, s in enumerate(seeds))
        weights = tuple(float(number(w, f"{what}.weights[{i}]", low=-10, high=10)) for i, w in enumerate(weights))
        if abs(sum(weights)) < 1e-6:
            raise InvalidInput(f"{what}.weights must not sum to 0")
        return Source("blend", seeds=seeds, weights=weights)
    cid = x.get("id")
    if not isinstance(cid, str) or not 1 <= len(cid) <= 64 or not all(c.isalnum() or c in "-_" for c in cid):
        raise InvalidInput(f"{what}.id must be a code id the server gave (letters, digits, - and _)")
    return Source("code", id=cid)


def _layers(x: Any, num_ws: int, what: str) -> str | list[int]:
    if x is None:
        x = "all"
    if isinstance(x, list):
        x = [_int(i, f"{what}[{k}]", high=num_ws - 1) for k, i in enumerate(x)]
    elif not isinstance(x, str) or len(x) > 200:
        raise InvalidInput(f"{what} must be a layer group (coarse, middle, fine, all), indices like '0-3', or a list")
    try:
        layer_indices(x, num_ws)
    except ValueError as e:
        raise InvalidInput(f"{what}: {e}") from None
    return x


def parse_state(payload: Any, num_ws_of) -> EditState:
    """An :class:`EditState` from the page's JSON; every field checked, unknown fields refused.

    Args:
        payload: the decoded JSON body.
        num_ws_of: ``model name -> num_ws``; raises InvalidInput for a model the server does not offer.
    """
    x = _obj(payload, "the state")
    known = {"model", "source", "psi", "cutoff", "edits", "mix", "interp", "noise", "noise_seed", "preview"}
    extra = sorted(set(x) - known)
    if extra:
        raise InvalidInput(f"unknown state field(s): {', '.join(map(str, extra))[:200]}")
    model = string(x.get("model"), "model")
    num_ws = num_ws_of(model)
    psi = float(number(x.get("psi", 1.0), "psi", low=-2, high=2))
    cutoff = x.get("cutoff")
    if cutoff is not None:
        cutoff = _int(cutoff, "cutoff", low=1, high=num_ws)
    edits = x.get("edits", [])
    if not isinstance(edits, list) or len(edits) > MAX_EDITS:
        raise InvalidInput(f"edits must be a list of at most {MAX_EDITS} sliders")
    parsed = []
    for i, e in enumerate(edits):
        e = _obj(e, f"edits[{i}]")
        name = string(e.get("direction"), f"edits[{i}].direction")
        alpha = float(number(e.get("alpha", 0.0), f"edits[{i}].alpha", low=-MAX_ALPHA, high=MAX_ALPHA))
        parsed.append(SliderEdit(name, alpha, _layers(e.get("layers"), num_ws, f"edits[{i}].layers")))
    mixes = []
    raw = x.get("mix")
    if raw is not None:
        raw = [raw] if isinstance(raw, dict) else raw
        if not isinstance(raw, list) or len(raw) > MAX_MIXES:
            raise InvalidInput(f"mix must be a list of at most {MAX_MIXES} {{source, layers}} objects")
        for i, m in enumerate(raw):
            m = _obj(m, f"mix[{i}]")
            mixes.append((parse_source(m.get("source"), f"mix[{i}].source"),
                          _layers(m.get("layers", "fine"), num_ws, f"mix[{i}].layers")))  # fmt: skip
    interp_source, interp_t = None, 0.0
    if x.get("interp") is not None:
        m = _obj(x["interp"], "interp")
        interp_source = parse_source(m.get("source"), "interp.source")
        interp_t = float(number(m.get("t", 0.0), "interp.t", low=0, high=1))
    return EditState(
        model=model, source=parse_source(x.get("source"), "source"), psi=psi, cutoff=cutoff, edits=tuple(parsed),
        mixes=tuple(mixes), interp_source=interp_source, interp_t=interp_t,
        noise=string(x.get("noise", "const"), "noise", choices=NOISE_MODES),
        noise_seed=_int(x.get("noise_seed", 0), "noise_seed"), preview=_bool(x.get("preview", False), "preview"),
    )  # fmt: skip


@dataclass
class Composed:
    """The codes a state composes to, ready to render: ``ws [1, num_ws, w_dim]`` and the noise to use."""

    ws: torch.Tensor
    noise: list[torch.Tensor | None] | None  # per noise layer, [1, 1, r, r]; None = noise_mode alone
    noise_mode: str  # "const" or "none" for layers without a map
    generator: Any  # the generator to render with (a PTI-tuned one for a tuned code)
    entry: Any = None  # the stored code the source is (CodeStore's Entry), or None for seeds and blends


@torch.no_grad()
def source_codes(model: ServedModel, src: Source, store: CodeStore) -> tuple[torch.Tensor, Any]:
    """``([1, num_ws, w_dim] codes, stored entry or None)`` of a source, at psi 1."""
    if src.kind == "seed":
        return seed_codes(model.G, [src.seed]).ws, None
    if src.kind == "blend":
        ws = seed_codes(model.G, list(src.seeds)).ws
        w = torch.tensor(src.weights, dtype=ws.dtype).view(-1, 1, 1)
        return (ws * w).sum(0, keepdim=True) / w.sum(), None
    entry = store.get(src.id, model.name)
    return entry.ws.clone(), entry


def random_noise(G, seed: int) -> list[torch.Tensor | None]:
    """One N(0, 1) map ``[1, 1, r, r]`` per noise layer (None where a layer has no noise), drawn from ``seed`` alone."""
    gen = torch.Generator().manual_seed(int(seed))
    return [torch.randn(1, 1, layer.resolution, layer.resolution, generator=gen) if layer.use_noise else None
            for _, layer in G.synthesis.noise_layers()]  # fmt: skip


@torch.no_grad()
def compose(model: ServedModel, state: EditState, store: CodeStore) -> Composed:
    """The codes and noise of ``state`` (see the module docstring for the order of operations).

    Raises:
        InvalidInput: a direction the model does not have, or a code id the server does not hold (or that
            belongs to another model).
    """
    ws, entry = source_codes(model, state.source, store)
    if state.interp_source is not None and state.interp_t > 0:
        other, _ = source_codes(model, state.interp_source, store)
        ws = lerp(ws, other, torch.tensor(state.interp_t))
    for src, layers in state.mixes:
        other, _ = source_codes(model, src, store)
        ws = mix(ws, other, layers)
    if state.psi != 1 or state.cutoff is not None:
        ws = truncate(ws, model.G.w_avg.cpu(), state.psi, state.cutoff)
    for e in state.edits:
        if e.alpha == 0:
            continue
        d = model.direction(e.direction)
        ws = edit(ws, d.vector, e.alpha * model.direction_std(e.direction), layers=e.layers)
    noise: list[torch.Tensor | None] | None = None
    mode = "const"
    if state.noise == "random":
        noise = random_noise(model.G, state.noise_seed)
    elif state.noise == "none":
        mode = "none"
    elif entry is not None and entry.noise is not None:
        noise = entry.noise  # a projection's own noise maps
    G = entry.generator if entry is not None and entry.generator is not None else model.G
    return Composed(ws, noise, mode, G, entry)
