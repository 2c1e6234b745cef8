"""Latent directions: fitted with linear classifiers (InterFaceGAN), conditioned, or found without labels
(GANSpace's PCA, SeFa's closed form).

* Supervised (Shen et al., "Interpreting the Latent Space of GANs for Semantic Face Editing", CVPR 2020):
  sample codes, label their images with a classifier, keep the most extreme ``ratio`` at each end as
  positives and negatives, split 70/30, fit a linear SVM (or logistic regression) and keep its unit normal.
  :func:`sample_scores` renders and scores in bounded memory (only the scores are kept) and
  :func:`replay_codes` regenerates the codes of the chosen samples from the seed; :func:`fit_direction`
  fits labelled codes from anywhere (projected real images included).
* Conditional (InterFaceGAN Sec. 2.3): :func:`condition` removes the components along any number of
  condition directions, ``n - C^T (C C^T)^-1 C n``, and renormalises.
* GANSpace (Härkönen et al., NeurIPS 2020): :func:`pca_directions`, principal components of W over many
  samples, each with its standard deviation.
* SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021):
  :func:`sefa_directions`, the top eigenvectors of ``A A^T`` where ``A`` stacks the style affines' weights of
  the chosen layers, ``[w_dim, channels]``, each column normalised to unit length as in the paper's code (or
  not: ``normalize=False``).

A :class:`Direction` is saved as ``NAME.npy`` (``[1, dim]`` float32, InterFaceGAN's boundary layout) plus
``NAME.json`` (attribute, space, method, model, samples, validation accuracy, conditions, ...).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..io.atomic import atomic_path
from ..nn.generator import Generator, accepts_fingerprint, model_fingerprint
from ..parallel import World, map_tasks
from ..utils import bar_disable, short_error
from ..validate import MAX_CODE_ABS, InvalidInput, float_array, int_list, json_object, optional_number, str_list, string
from .ops import LayerSpec, layer_indices

SPACES = ("z", "w", "w+")
METHODS = ("svm", "logistic")
C_GRID = (0.01, 0.1, 1.0, 10.0)  # regularization strengths tried by cross-validation
FORMAT = "latentlab-direction"
BLOCK = 1024  # samples per seeded block of z draws; a sample's code depends only on (seed, its index)

Scorer = Callable[[Tensor], "Mapping[str, Tensor] | Tensor"]


@dataclass
class Direction:
    """A unit direction in a latent space, with where it came from.

    ``space`` is the space of the codes it was fitted on: ``"z"`` (moves z ``[N, z_dim]``), ``"w"`` (moves W
    codes, on any W+ layers) or ``"w+"`` (fitted on the W+ codes of ``layers``). ``layers``, when set, are
    the W+ layers the direction is meant for: :func:`~latentlab.edit.ops.edit` moves those by default.
    """

    vector: Tensor  # [dim] float32, unit length
    attribute: str  # what it changes, e.g. "smile", "pc3", "sefa0"
    space: str | None  # "z", "w", "w+"; None = unknown (a bare InterFaceGAN .npy)
    method: str  # "svm", "logistic", "pca", "sefa", "sefa-raw", "given"
    layers: tuple[int, ...] | None = None  # W+ layers it is meant for; None = all
    model: str | None = None  # the generator's name or file it was fitted on
    model_hash: str | None = None  # model_fingerprint() of that generator
    num_samples: int | None = None  # codes sampled (or given) to fit it
    accuracy: float | None = None  # validation accuracy of the linear classifier (supervised only)
    conditioned_on: tuple[str, ...] = ()  # attributes whose directions were projected out
    std: float | None = None  # std of the sampled codes along it (alpha / std = edit size in sigmas)
    extra: dict[str, Any] = field(default_factory=dict)  # method details (ratio, seed, eigenvalue, ...)

    def __post_init__(self):
        v = self.vector
        if isinstance(v, Tensor) and not v.is_floating_point() or isinstance(v, np.ndarray) and v.dtype.kind != "f":
            raise InvalidInput(f"a direction must be a float vector, got {v.dtype}")
        v = torch.as_tensor(v, dtype=torch.float32).detach().cpu().flatten()
        if v.numel() == 0 or not torch.isfinite(v).all() or v.norm() == 0:
            raise InvalidInput("a direction must be a finite, non-zero vector")
        norm = float(v.norm())
        self.vector = v if abs(norm - 1) < 1e-6 else v / norm  # unit vectors load back bit for bit
        self.attribute = string(self.attribute, "attribute")
        self.space = string(self.space, "space", choices=SPACES, optional=True)
        self.method = string(self.method, "method")
        if self.layers is not None:
            self.layers = tuple(int_list(self.layers, "layers", low=0, high=1023))
            if not self.layers:
                raise InvalidInput("layers must name at least one W+ layer (or be None for all)")
        self.model = string(self.model, "model", optional=True)
        self.model_hash = string(self.model_hash, "model_hash", optional=True)
        self.num_samples = optional_number(self.num_samples, "num_samples", integer=True, low=0)
        self.accuracy = optional_number(self.accuracy, "accuracy", low=0, high=1)
        self.conditioned_on = tuple(str_list(self.conditioned_on, "conditioned_on"))
        self.std = optional_number(self.std, "std", low=0, low_open=True, high=MAX_CODE_ABS)
        self.extra = json_object(self.extra, "extra")

    @property
    def dim(self) -> int:
        """Length of the vector."""
        return self.vector.shape[0]

    @property
    def name(self) -> str:
        """``attribute`` plus its conditions, e.g. ``smile|glasses``."""
        return self.attribute + "".join(f"|{c}" for c in self.conditioned_on)

    def describe(self) -> str:
        """One line: name, space, method, accuracy, samples."""
        parts = [self.name, f"space={self.space or '?'}", f"method={self.method}", f"dim={self.dim}"]
        if self.layers is not None:
            parts.append(f"layers={_ranges(self.layers)}")
        if self.accuracy is not None:
            parts.append(f"val_acc={self.accuracy:.3f}")
        if self.num_samples is not None:
            parts.append(f"samples={self.num_samples}")
        if self.std is not None:
            parts.append(f"std={self.std:.3g}")
        return "  ".join(parts)

    def check_codes(self, codes: Tensor) -> None:
        """Refuse codes this direction cannot move, saying why.

        Z directions move ``[N, z_dim]`` codes only; W and W+ directions move ``[N, w_dim]`` or W+ codes.
        """
        if self.space == "z" and codes.ndim == 3:
            raise ValueError(f"direction {self.name!r} was fitted in Z and moves z codes [N, {self.dim}]; these "
                             f"are W+ codes {tuple(codes.shape)} (fit it with space='w' to edit projected codes)")
        if codes.shape[-1] != self.dim:
            raise ValueError(f"direction {self.name!r} ({self.space or 'unknown space'}) has {self.dim} dimensions "
                             f"but the codes have {codes.shape[-1]} (codes of shape {tuple(codes.shape)})")  # fmt: skip

    def check_model(self, G: Generator, name: str | None = None) -> None:
        """Refuse a generator other than the one the direction was fitted on (by fingerprint), saying which.

        Directions without a recorded fingerprint (e.g. a bare InterFaceGAN ``.npy``) pass when the sizes fit.
        """
        want = {"z": G.z_dim}.get(self.space or "", G.w_dim)
        if self.dim != want:
            raise ValueError(f"direction {self.name!r} has {self.dim} dimensions; this generator's "
                             f"{(self.space or 'w').upper()} has {want}")  # fmt: skip
        if self.model_hash is not None and not accepts_fingerprint(G, self.model_hash):  # PTI: its base's too
            raise ValueError(f"direction {self.name!r} was fitted on model {self.model or '?'} (fingerprint "
                             f"{self.model_hash}), not on {name or 'this generator'} (fingerprint "
                             f"{model_fingerprint(G)})")  # fmt: skip
        if self.layers is not None and max(self.layers) >= G.num_ws:
            raise ValueError(f"direction {self.name!r} is meant for W+ layers {_ranges(self.layers)}; this "
                             f"generator has {G.num_ws}")  # fmt: skip

    def meta(self) -> dict[str, Any]:
        """The JSON metadata (everything but the vector)."""
        d = {k: v for k, v in asdict(self).items() if k != "vector"}
        d["layers"] = list(self.layers) if self.layers is not None else None
        d["conditioned_on"] = list(self.conditioned_on)
        return {"format": FORMAT, "version": 1, "dim": self.dim, **d}


def _ranges(idx: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    out, idx = [], sorted(idx)
    start = prev = idx[0]
    for i in [*idx[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(out)


# ----------------------------------------------------------------------------------------------- files


def _stem(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".npy", ".json") else p


def save_direction(direction: Direction, path: str | os.PathLike) -> Path:
    """Write ``direction`` as ``STEM.npy`` (``[1, dim]`` float32) and ``STEM.json``; returns the ``.npy`` path.

    ``path`` may name either file or the stem. Both files are written atomically.
    """
    stem = _stem(path)
    with atomic_path(stem.with_suffix(".npy")) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, direction.vector.numpy()[None].astype(np.float32))
    with atomic_path(stem.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(direction.meta(), indent=1) + "\n")
    return stem.with_suffix(".npy")


def load_direction(path: str | os.PathLike) -> Direction:
    """Read a direction written by :func:`save_direction`, or a bare InterFaceGAN boundary ``.npy`` ([1, dim]).

    Without a ``.json`` beside it the space and model are unknown (only sizes are checked when editing).
    """
    stem = _stem(path)
    npy, meta_path = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if not npy.is_file():
        raise FileNotFoundError(f"no direction file {str(npy)!r}")
    try:
        v = np.load(npy, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InvalidInput(f"{npy}: not a readable .npy direction ({short_error(e)})") from None
    if not isinstance(v, np.ndarray):
        v.close()
        raise InvalidInput(f"{npy}: an .npz archive, not a .npy direction vector")
    if v.ndim not in (1, 2) or (v.ndim == 2 and v.shape[0] != 1) or not np.issubdtype(v.dtype, np.floating):
        raise InvalidInput(f"{npy}: a direction is a float vector [dim] or [1, dim], got {v.dtype} {v.shape}")
    v = float_array(v, "vector", where=str(npy), max_abs=None)
    if not meta_path.is_file():
        return Direction(torch.from_numpy(v.reshape(-1).astype(np.float32)), attribute=stem.name, space=None,
                         method="given", extra={"file": str(npy)})  # fmt: skip
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidInput(f"{meta_path}: not valid JSON ({short_error(e)})") from None
    meta = json_object(meta, "the direction's metadata", where=str(meta_path))
    if meta.get("format") != FORMAT:
        raise InvalidInput(f"{meta_path}: not a latentlab direction (format {meta.get('format')!r:.60})")
    if meta.get("dim") != v.size:
        raise InvalidInput(f"{meta_path} says dim {meta.get('dim')!r:.40} but {npy.name} holds {v.size} values")
    fields = {k: meta[k] for k in ("attribute", "space", "method", "layers", "model", "model_hash", "num_samples",
                                    "accuracy", "conditioned_on", "std", "extra") if k in meta}  # fmt: skip
    try:
        return Direction(torch.from_numpy(v.reshape(-1).astype(np.float32)), **fields)
    except InvalidInput as e:
        raise InvalidInput(f"{meta_path}: {e}") from None


# ----------------------------------------------------------------------------------------------- fitting


def _seed_for(seed: int, block: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, block, stream]).generate_state(1, np.uint64)[0] >> 1)


def block_z(z_dim: int, seed: int, block: int, stream: int = 0) -> Tensor:
    """``[BLOCK, z_dim]``: the z of samples ``block*BLOCK ...`` for ``seed`` (``stream`` 1 = the mixing partner)."""
    g = torch.Generator().manual_seed(_seed_for(seed, block, stream))
    return torch.randn([BLOCK, z_dim], generator=g)


def _codes_for(G: Generator, z: Tensor, z2: Tensor, space: str, layer: int | None, psi: float,
               c: Tensor | None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(codes for fitting ``[n, dim]``, W+ codes to render ``[n, num_ws, w_dim]``)."""
    ws = G.mapping(z, c, truncation_psi=psi)
    if space == "w+":
        ws2 = G.mapping(z2, c, truncation_psi=psi)
        ws[:, layer] = ws2[:, layer]
        return ws[:, layer], ws
    return (z if space == "z" else ws[:, 0]), ws


def _check_space(space: str, layer: int | None, G: Generator) -> None:
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    if (space == "w+") != (layer is not None):
        raise ValueError("space 'w+' fits one W+ layer: give layer= (and only then)")
    if layer is not None and not 0 <= layer < G.num_ws:
        raise ValueError(f"layer {layer} is out of range for a generator with {G.num_ws} W+ codes")


def _as_score_dict(out: Mapping[str, Tensor] | Tensor) -> dict[str, Tensor]:
    if isinstance(out, Mapping):
        return {k: torch.as_tensor(v).detach().float().cpu().reshape(-1) for k, v in out.items()}
    t = torch.as_tensor(out).detach().float().cpu()
    if t.ndim == 1 or (t.ndim == 2 and t.shape[1] == 1):
        return {"score": t.reshape(-1)}
    if t.ndim == 2:
        return {str(k): t[:, k] for k in range(t.shape[1])}
    raise ValueError(f"a scorer must return [N] or [N, K] scores or a dict of [N] tensors, got {tuple(t.shape)}")


@torch.no_grad()
def sample_scores(
    G: Generator,
    scorer: Scorer,
    num_samples: int,
    seed: int = 0,
    truncation_psi: float = 1.0,
    space: str = "w",
    layer: int | None = None,
    class_idx: int | None = None,
    batch_size: int = 64,
    progress: bool = True,
    world: World | None = None,
) -> dict[str, Tensor]:
    """Render ``num_samples`` seeded samples and score each image; keeps only the scores.

    Sample ``i``'s z depends only on ``(seed, i)`` (see :func:`block_z`), so :func:`replay_codes` can
    regenerate the codes of any chosen samples afterwards: memory is ``O(num_samples)`` scalars, whatever
    the latent size. For ``space="w+"`` each sample takes layer ``layer``'s code from a second draw (a
    one-layer style mix), so that layer varies independently of the others.

    Args:
        G: the generator (its device is used).
        scorer: images ``[n, C, R, R]`` in [-1, 1] -> ``{name: [n]}``, ``[n]`` or ``[n, K]`` scores (e.g.
            :func:`classifier_scorer`).
        num_samples: >= 2.
        seed: seeds the z draws.
        truncation_psi: applied to the sampled W codes (1 = none).
        space, layer: see :func:`replay_codes`; only the rendering depends on them (``w+`` mixes).
        class_idx: class of a conditional generator.
        batch_size: images per forward pass.
        progress: show a progress bar.
        world: a ``torchrun`` job's processes (:func:`latentlab.parallel.init_world`); None = this one. Batch
            ``k`` is rendered and scored by process ``k % size`` and every process returns all the scores,
            bit-identical to one process with the same ``batch_size`` and threads.
    Returns:
        ``{score name: [num_samples]}`` float32 on the CPU.
    """
    from ..render import class_labels

    _check_space(space, layer, G)
    if num_samples < 2:
        raise ValueError(f"sampling needs at least 2 samples, got {num_samples}")
    world = world if world is not None else World()
    device = G.w_avg.device
    batches = [(block, s) for block in range(math.ceil(num_samples / BLOCK))
               for s in range(0, min(BLOCK, num_samples - block * BLOCK), batch_size)]  # fmt: skip
    bar = tqdm(total=num_samples, desc="sample+score", unit="img", disable=world.bar_disable(progress))

    drawn: dict[int, tuple[Tensor, Tensor]] = {}  # this process's current block of draws

    def score(k: int) -> dict[str, Tensor]:
        block, s = batches[k]
        if block not in drawn:
            n_block = min(BLOCK, num_samples - block * BLOCK)
            drawn.clear()
            drawn[block] = block_z(G.z_dim, seed, block)[:n_block], block_z(G.z_dim, seed, block, 1)[:n_block]
        z, z2 = drawn[block]
        zb, z2b = z[s : s + batch_size].to(device), z2[s : s + batch_size].to(device)
        c = class_labels(G, zb.shape[0], class_idx)
        _, ws = _codes_for(G, zb, z2b, space, layer, truncation_psi, c)
        out = _as_score_dict(scorer(G.synthesis(ws, noise_mode="const")))
        for key, v in out.items():
            if v.shape[0] != zb.shape[0]:
                raise ValueError(f"the scorer returned {v.shape[0]} scores for {zb.shape[0]} images ({key!r})")
        return {key: v.detach().cpu() for key, v in out.items()}

    def on_round(done: dict[int, dict[str, Tensor]], fresh: list[int]) -> None:
        bar.update(sum(next(iter(done[k].values())).shape[0] for k in fresh))

    try:
        parts = map_tasks(world, len(batches), score, on_round=on_round)
    finally:
        bar.close()
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


@torch.no_grad()
def replay_codes(
    G: Generator,
    indices: Sequence[int] | Tensor,
    seed: int = 0,
    truncation_psi: float = 1.0,
    space: str = "w",
    layer: int | None = None,
    class_idx: int | None = None,
    batch_size: int = 1024,
) -> Tensor:
    """The codes of samples ``indices`` of a :func:`sample_scores` run with the same arguments.

    Args:
        space: ``"z"`` (z ``[n, z_dim]``), ``"w"`` (``[n, w_dim]``, after truncation) or ``"w+"`` (layer
            ``layer``'s code of the one-layer mix, ``[n, w_dim]``).
    Returns:
        ``[len(indices), dim]`` float32 on the CPU, in the order of ``indices``.
    """
    from ..render import class_labels

    _check_space(space, layer, G)
    idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
    device = G.w_avg.device
    out = torch.empty([idx.shape[0], G.z_dim if space == "z" else G.w_dim])
    for block in torch.unique(idx // BLOCK).tolist():
        rows = (idx // BLOCK == block).nonzero().flatten()
        within = idx[rows] % BLOCK
        z = block_z(G.z_dim, seed, block)[within]
        z2 = block_z(G.z_dim, seed, block, 1)[within]
        for s in range(0, len(rows), batch_size):
            zb, z2b = z[s : s + batch_size].to(device), z2[s : s + batch_size].to(device)
            codes, _ = _codes_for(G, zb, z2b, space, layer, truncation_psi, class_labels(G, zb.shape[0], class_idx))
            out[rows[s : s + batch_size]] = codes.float().cpu()
    return out


def select_extremes(scores: Tensor, ratio: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Indices of the top and bottom ``ratio`` of ``scores`` ``[N]`` (ties broken by a seeded shuffle).

    Returns:
        ``(positives, negatives)``, each ``[round(ratio * N)]`` (at least 1).
    """
    if not 0 < ratio <= 0.5:
        raise ValueError(f"ratio must be in (0, 0.5], got {ratio}")
    n = scores.shape[0]
    k = max(1, int(round(ratio * n)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    order = perm[torch.argsort(scores[perm], stable=True)]
    return order[-k:], order[:k]


def _split(n: int, split: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=gen)
    k = min(max(1, int(round(split * n))), n - 1)
    return perm[:k], perm[k:]


def _best_threshold(x: np.ndarray, y: np.ndarray) -> float:
    """The threshold on 1-D projections ``x`` that best separates labels ``y`` (1 above, 0 below)."""
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    # accuracy when the cut is before position i: negatives left of i + positives from i on
    neg_left = np.concatenate([[0], np.cumsum(ys == 0)])
    pos_right = np.concatenate([np.cumsum((ys == 1)[::-1])[::-1], [0]])
    i = int(np.argmax(neg_left + pos_right))
    lo = xs[i - 1] if i > 0 else xs[0] - 1
    hi = xs[i] if i < len(xs) else xs[-1] + 1
    return float((lo + hi) / 2)


def fit_direction(
    codes: Tensor,
    scores: Tensor,
    attribute: str = "attribute",
    space: str | None = "w",
    ratio: float | None = 0.02,
    split: float = 0.7,
    method: str = "svm",
    conditions: Sequence[Direction] = (),
    seed: int = 0,
    layers: Sequence[int] | None = None,
    C: float | None = None,
    **meta: Any,
) -> Direction:
    """Fit a linear classifier on labelled codes and return its unit normal (InterFaceGAN's boundary).

    Args:
        codes: ``[N, dim]`` float codes.
        scores: ``[N]``: continuous scores (with ``ratio``) or binary 0/1 labels (with ``ratio=None``).
        attribute: name recorded in the direction.
        space: the codes' space (``"z"``, ``"w"``, ``"w+"``).
        ratio: keep the top and bottom ``ratio`` of the scores as positives and negatives (InterFaceGAN:
            0.02); None = ``scores`` are labels and every code is used.
        split: fraction for training; the rest measures the validation accuracy.
        method: ``"svm"`` (linear SVM, squared hinge) or ``"logistic"`` (logistic regression).
        C: inverse regularization strength; None = chosen from ``C_GRID`` by 5-fold cross-validation on the
            training split (the validation split stays unseen). InterFaceGAN used C = 1.
        conditions: directions to project out (InterFaceGAN's conditional manipulation); the validation
            accuracy is then that of the projected normal with a threshold fitted on the training split.
        seed: seeds the shuffle, the split and the solver.
        layers: the W+ layers the direction is meant for (recorded).
        meta: recorded as the direction's fields (``model``, ``model_hash``, ``num_samples``) or in ``extra``.
    Returns:
        A :class:`Direction` pointing from negatives to positives, with ``accuracy`` and ``std`` (the codes'
        standard deviation along it) set.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if codes.ndim != 2:
        raise ValueError(f"fit_direction wants codes [N, dim], got shape {tuple(codes.shape)}")
    scores = torch.as_tensor(scores, dtype=torch.float32).reshape(-1)
    if scores.shape[0] != codes.shape[0]:
        raise ValueError(f"{codes.shape[0]} codes but {scores.shape[0]} scores")
    if not torch.isfinite(scores).all() or not torch.isfinite(codes).all():
        raise ValueError("codes and scores must be finite")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < split < 1:
        raise ValueError(f"split must be in (0, 1), got {split}")
    codes = codes.detach().float().cpu()
    if ratio is None:
        if not ((scores == 0) | (scores == 1)).all():
            raise ValueError("with ratio=None the scores must be 0/1 labels; give ratio= for continuous scores")
        pos, neg = (scores == 1).nonzero().flatten(), (scores == 0).nonzero().flatten()
    else:
        pos, neg = select_extremes(scores, ratio, seed)
    if len(pos) < 2 or len(neg) < 2:
        raise ValueError(f"need at least 2 positives and 2 negatives, got {len(pos)} and {len(neg)}")
    gen = torch.Generator().manual_seed(seed)
    (p_tr, p_va), (n_tr, n_va) = _split(len(pos), split, gen), _split(len(neg), split, gen)
    x_tr = torch.cat([codes[pos[p_tr]], codes[neg[n_tr]]]).numpy()
    y_tr = np.r_[np.ones(len(p_tr)), np.zeros(len(n_tr))]
    x_va = torch.cat([codes[pos[p_va]], codes[neg[n_va]]]).numpy()
    y_va = np.r_[np.ones(len(p_va)), np.zeros(len(n_va))]
    def make(c: float):
        if method == "svm":
            return LinearSVC(C=c, max_iter=20000, random_state=seed)
        return LogisticRegression(C=c, max_iter=5000, random_state=seed)

    if C is None:
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        folds = min(5, int(min(y_tr.sum(), len(y_tr) - y_tr.sum())))
        if folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
            C = max(C_GRID, key=lambda c: cross_val_score(make(c), x_tr, y_tr, cv=cv).mean())
        else:
            C = 1.0
    clf = make(C)
    clf.fit(x_tr, y_tr)
    accuracy = float(clf.score(x_va, y_va))
    normal = torch.from_numpy(clf.coef_.reshape(-1).astype(np.float32))
    fields = {k: meta.pop(k) for k in ("model", "model_hash", "num_samples") if k in meta}
    fields.setdefault("num_samples", int(codes.shape[0]))
    extra = {"ratio": ratio, "split": split, "seed": seed, "positives": len(pos), "negatives": len(neg), "C": C,
             **meta}  # fmt: skip
    d = Direction(normal, attribute=attribute, space=space, method=method, layers=layers, extra=extra, **fields)
    if conditions:
        d = condition(d, conditions)
        x = d.vector.numpy()
        t = _best_threshold(x_tr @ x, y_tr)
        d.extra["accuracy_unconditioned"] = accuracy
        accuracy = float((((x_va @ x) > t) == (y_va == 1)).mean())
    d.accuracy = accuracy
    d.std = float((codes @ d.vector).std())
    return d


def condition(direction: Direction, conditions: Sequence[Direction | Tensor]) -> Direction:
    """InterFaceGAN's conditional direction: remove the components along every condition, renormalise.

    ``n' = n - C^T (C C^T)^-1 C n`` for conditions stacked as rows of ``C``, so ``n'`` is orthogonal to each
    of them (for one condition this is ``n - (n.c) c``).

    Raises:
        ValueError: conditions of another space or size, or a direction that lies in their span.
    """
    if not conditions:
        return direction
    rows, names = [], []
    for c in conditions:
        if isinstance(c, Direction):
            if c.space != direction.space and None not in (c.space, direction.space):
                raise ValueError(f"cannot condition {direction.name!r} ({direction.space}) on {c.name!r} "
                                 f"({c.space}): the directions live in different spaces")  # fmt: skip
            rows.append(c.vector)
            names.append(c.attribute)
        else:
            rows.append(torch.as_tensor(c, dtype=torch.float32).reshape(-1))
            names.append(f"vector{len(names)}")
        if rows[-1].shape[0] != direction.dim:
            raise ValueError(f"condition {names[-1]!r} has {rows[-1].shape[0]} dimensions, the direction "
                             f"{direction.dim}")  # fmt: skip
    C = torch.stack(rows).double()
    n = direction.vector.double()
    coef = torch.linalg.lstsq(C @ C.T, (C @ n).unsqueeze(1)).solution.squeeze(1)
    out = n - C.T @ coef
    if out.norm() < 1e-6:
        raise ValueError(f"direction {direction.name!r} lies in the span of its conditions; nothing is left")
    kept = {k: v for k, v in asdict(direction).items() if k not in ("vector", "conditioned_on", "accuracy", "extra")}
    extra = {**direction.extra, "cosine_to_unconditioned": float((out / out.norm()) @ n)}
    return Direction(out.float(), conditioned_on=(*direction.conditioned_on, *names), accuracy=None, extra=extra,
                     **kept)  # fmt: skip


def refine_direction(
    direction: Direction,
    G: Generator,
    conditions: Sequence[Direction] = (),
    layers: LayerSpec = None,
    num_samples: int = 10_000,
) -> Direction:
    """A fitted direction conditioned on others and/or meant for some W+ layers, without refitting it.

    InterFaceGAN's conditional manipulation applied after the fit (:func:`condition`), and the W+ layers an
    edit moves by default (``layers``; e.g. ``"middle+fine"`` or ``[5, 6, 7, 8, 9]``). The result's ``std``
    is re-measured on ``num_samples`` of ``G``'s codes, drawn as the fit drew them (its ``sampling_seed`` and
    ``truncation_psi``, recorded in ``extra``; else seed 0 and psi 1), so edit sizes in sigmas stay comparable
    with the fitted direction's. The validation accuracy is not re-measured (it needs labels): it is dropped
    and the fitted one kept as ``extra["accuracy_unconditioned"]`` when conditions are given.

    Args:
        direction: a W, Z or one-layer W+ direction fitted on ``G`` (its fingerprint is checked).
        conditions: directions of the same space to project out.
        layers: the W+ layers it is meant for (W directions only); None keeps the direction's own.
    Raises:
        ValueError: a direction of another model or space, conditions that leave nothing, layers for a Z
            direction, or layers outside ``G``'s ``num_ws``.
    """
    direction.check_model(G)
    for c in conditions:
        c.check_model(G)
    if layers is not None and direction.space != "w":
        raise ValueError(f"layers= applies to W directions; {direction.name!r} lives in {direction.space or '?'}")
    if conditions:
        out = condition(direction, list(conditions))
        out.extra["accuracy_unconditioned"] = direction.accuracy
    else:  # a copy: the caller's direction is left as it was
        out = replace(direction, extra=dict(direction.extra))
    if layers is not None:
        idx = layer_indices(layers, G.num_ws)
        out.layers = None if len(idx) == G.num_ws else tuple(idx)
    if direction.space is not None:
        space, layer = direction.space, None
        if space == "w+":
            layer = direction.layers[0] if direction.layers else None
        seed = int(direction.extra.get("sampling_seed", 0))
        psi = float(direction.extra.get("truncation_psi", 1.0))
        reference = replay_codes(G, range(int(num_samples)), seed=seed, truncation_psi=psi, space=space, layer=layer)
        out.std = float((reference @ out.vector).std())
    return out


def classifier_scorer(classifier: torch.nn.Module, attributes: Sequence[str] | None = None) -> Scorer:
    """Wrap a factor classifier (``predict(images) -> {name: [N]}``) as a scorer of ``attributes`` (all if None).

    Binary factors of a :class:`~latentlab.data.classifier.FactorClassifier` score as logits (same order as
    the probabilities, without float saturation). Circular factors (hues) have no linear order and are refused.
    """
    circular = set(getattr(getattr(classifier, "config", None), "circular", ()))
    names = list(getattr(getattr(classifier, "config", None), "factors", ()) or [])
    if attributes is not None:
        bad = [a for a in attributes if names and a not in names]
        if bad:
            raise ValueError(f"the classifier has no output {bad[0]!r}; it predicts {', '.join(names)}")
        hue = [a for a in attributes if a in circular]
        if hue:
            raise ValueError(f"{hue[0]!r} is circular (a hue): no linear direction orders it")

    binary = set(getattr(getattr(classifier, "config", None), "binary", ()))
    has_logits = binary and hasattr(classifier, "predict_with_features") and hasattr(classifier, "head")

    def score(images: Tensor) -> dict[str, Tensor]:
        if has_logits:
            out, feats = classifier.predict_with_features(images)
            with torch.no_grad():
                raw = classifier.decode(classifier.head(feats))
            # Rank binary attributes by logit: probabilities saturate to exactly 0 or 1 in float32, and the
            # top 2% of a tie is a random pick.
            out = {k: raw[k] if k in binary else v for k, v in out.items()}
        else:
            out = classifier.predict(images)
        keep = attributes if attributes is not None else [k for k in out if k not in circular]
        return {k: out[k] for k in keep}

    return score


def fit_directions(
    G: Generator,
    attributes: Sequence[str],
    scorer: Scorer,
    num_samples: int = 50_000,
    seed: int = 0,
    ratio: float = 0.02,
    split: float = 0.7,
    method: str = "svm",
    space: str = "w",
    layer: int | None = None,
    truncation_psi: float = 1.0,
    conditions: Mapping[str, Sequence[str]] | None = None,
    class_idx: int | None = None,
    batch_size: int = 64,
    model: str | None = None,
    progress: bool = True,
    world: World | None = None,
) -> dict[str, Direction]:
    """InterFaceGAN end to end: sample, score, and fit one direction per attribute from one sampling pass.

    With ``world`` (a ``torchrun`` job's processes) the sampling and scoring are shared out
    (:func:`sample_scores`); every process then fits the same directions from the same scores, so the result
    equals one process's (same ``batch_size`` and threads) and only rank 0 needs to write it.

    Args:
        G: the generator.
        attributes: score names to fit (the scorer must return them).
        scorer: images -> scores (see :func:`sample_scores`), e.g. ``classifier_scorer(load_classifier())``.
        num_samples: codes sampled (InterFaceGAN: 500k on FFHQ models; 50k is plenty for a 64x64 model).
        conditions: ``{attribute: [condition attributes]}``; each condition's own direction is fitted from
            the same samples and projected out.
        space, layer: ``"z"``, ``"w"`` or ``"w+"`` with one layer (see :func:`sample_scores`).
        Others: see :func:`fit_direction` and :func:`sample_scores`.
    Returns:
        ``{attribute: Direction}`` (conditioned ones under ``"attr|cond1|cond2"``).
    """
    conditions = dict(conditions or {})
    needed = list(dict.fromkeys([*attributes, *(c for cs in conditions.values() for c in cs)]))
    scores = sample_scores(G, scorer, num_samples, seed=seed, truncation_psi=truncation_psi, space=space,
                           layer=layer, class_idx=class_idx, batch_size=batch_size, progress=progress,
                           world=world)  # fmt: skip
    missing = [a for a in needed if a not in scores]
    if missing:
        raise ValueError(f"the scorer gives no {missing[0]!r} (it gives {', '.join(scores)})")
    meta = {"model": model, "model_hash": model_fingerprint(G), "num_samples": num_samples,
            "truncation_psi": truncation_psi, "sampling_seed": seed}  # fmt: skip
    chosen: dict[str, tuple[Tensor, Tensor]] = {}  # attribute -> (codes of the extremes, their 0/1 labels)
    for a in needed:
        pos, neg = select_extremes(scores[a], ratio, seed)
        codes = replay_codes(G, torch.cat([pos, neg]), seed=seed, truncation_psi=truncation_psi, space=space,
                             layer=layer, class_idx=class_idx)  # fmt: skip
        chosen[a] = codes, torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
        meta.setdefault("score_ranges", {})[a] = [float(scores[a][neg].mean()), float(scores[a][pos].mean())]
    layers = None if layer is None else [layer]

    def fit(a: str, conds: Sequence[Direction] = ()) -> Direction:
        d = fit_direction(*chosen[a], attribute=a, space=space, ratio=None, split=split, method=method, seed=seed,
                          layers=layers, conditions=conds, **{k: v for k, v in meta.items() if k != "score_ranges"})
        d.extra.update(ratio=ratio, score_range=meta["score_ranges"][a])
        return d

    plain = {a: fit(a) for a in needed}
    out = {a: plain[a] for a in attributes}
    for a, conds in conditions.items():
        d = fit(a, [plain[c] for c in conds])
        out[d.name] = d
    # The spread along each direction over unselected samples (not the extremes it was fitted on).
    reference = replay_codes(G, range(min(num_samples, 10_000)), seed=seed, truncation_psi=truncation_psi,
                             space=space, layer=layer, class_idx=class_idx)  # fmt: skip
    for d in out.values():
        d.std = float((reference @ d.vector).std())
    return out


# ----------------------------------------------------------------------------------------------- unsupervised


def _orient(v: Tensor) -> Tensor:
    """Fix an eigenvector's arbitrary sign: its largest-magnitude entry is positive."""
    return v * torch.sign(v[v.abs().argmax()])


@torch.no_grad()
def pca_directions(
    G: Generator,
    num_samples: int = 1_000_000,
    components: int = 10,
    seed: int = 0,
    class_idx: int | None = None,
    batch_size: int = 4096,
    model: str | None = None,
    progress: bool = True,
) -> list[Direction]:
    """GANSpace: the principal components of W, from the covariance of ``num_samples`` mapped samples.

    The covariance is accumulated in float64 batch by batch, so memory does not grow with the sample count.
    Each component is a unit vector with ``std`` = its standard deviation (sqrt of the eigenvalue); GANSpace
    edits in multiples of it. ``extra`` holds the explained-variance ratio. Signs are fixed (largest entry
    positive).

    Returns:
        ``components`` directions ``pc0, pc1, ...`` by decreasing variance.
    """
    from ..render import class_labels

    if not 1 <= components <= G.w_dim:
        raise ValueError(f"components must be in [1, {G.w_dim}], got {components}")
    if num_samples < 2:
        raise ValueError(f"PCA needs at least 2 samples, got {num_samples}")
    device = G.w_avg.device
    s1 = torch.zeros(G.w_dim, dtype=torch.float64)
    s2 = torch.zeros(G.w_dim, G.w_dim, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(total=num_samples, desc="pca", unit="code", disable=bar_disable(progress))
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z = torch.randn([n, G.z_dim], generator=gen).to(device)
        w = G.mapping(z, class_labels(G, n, class_idx))[:, 0].double().cpu()
        s1 += w.sum(0)
        s2 += w.T @ w
        bar.update(n)
    bar.close()
    mean = s1 / num_samples
    cov = (s2 - num_samples * torch.outer(mean, mean)) / (num_samples - 1)
    evals, evecs = torch.linalg.eigh(cov)
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)
    total = float(evals.sum())
    meta = {"model": model, "model_hash": model_fingerprint(G), "num_samples": num_samples}
    return [
        Direction(_orient(evecs[:, k]).float(), attribute=f"pc{k}", space="w", method="pca",
                  std=float(evals[k].sqrt()), extra={"explained_variance": float(evals[k]) / total,
                                                     "component": k, "seed": seed}, **meta)
        for k in range(components)
    ]  # fmt: skip


def style_weights(G: Generator, layers: LayerSpec = None) -> tuple[list[int], Tensor]:
    """The style affines' effective weights of W+ ``layers``, stacked as columns: ``[w_dim, channels]``.

    W+ code ``i < num_ws - 1`` drives conv layer ``i``'s affine; the last code drives the last ToRGB's
    (SeFa's layer list for StyleGAN2). Equalized-learning-rate gains are applied.
    """
    idx = layer_indices(layers, G.num_ws)
    convs = [layer for _, layer in G.synthesis.noise_layers()]
    last_rgb = G.synthesis.blocks()[-1].torgb
    cols = []
    for i in idx:
        affine = convs[i].affine if i < len(convs) else last_rgb.affine
        cols.append((affine.weight * affine.weight_gain).detach().float().cpu().T)
    return idx, torch.cat(cols, dim=1)


def sefa_directions(
    G: Generator,
    layers: LayerSpec = None,
    components: int = 10,
    normalize: bool = True,
    model: str | None = None,
) -> list[Direction]:
    """SeFa: the top eigenvectors of ``A A^T`` for the style weights ``A`` of ``layers`` (closed form, no samples).

    Args:
        layers: W+ layers whose affines are factorised (see :func:`layer_indices`); None = all.
        components: how many directions, by decreasing eigenvalue.
        normalize: scale each column of ``A`` (one style channel's weights) to unit length first, as the
            paper's code does; False = the raw weights.
    Returns:
        Directions ``sefa0, sefa1, ...`` in W, meant for ``layers``; ``extra`` holds the eigenvalue.
    """
    if not 1 <= components <= G.w_dim:
        raise ValueError(f"components must be in [1, {G.w_dim}], got {components}")
    idx, A = style_weights(G, layers)
    A = A.double()
    if normalize:
        A = A / A.norm(dim=0, keepdim=True).clamp_min(1e-12)
    evals, evecs = torch.linalg.eigh(A @ A.T)
    evals, evecs = evals.flip(0), evecs.flip(1)
    meta = {"model": model, "model_hash": model_fingerprint(G)}
    method = "sefa" if normalize else "sefa-raw"
    return [
        Direction(_orient(evecs[:, k]).float(), attribute=f"sefa{k}", space="w", method=method, layers=idx,
                  extra={"eigenvalue": float(evals[k]), "component": k}, **meta)
        for k in range(components)
    ]  # fmt: skip
