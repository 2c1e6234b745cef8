"""The SynthFaces factor classifier: a small CNN that reads every factor back from an image.

It labels generated images for direction discovery, linear separability and disentanglement, and its
penultimate features define the offline Fréchet distance. Outputs, by factor (see ``synthfaces.FACTORS``):

* binary factors (eyes_open, glasses): a logit; ``predict`` turns it into a probability;
* circular factors (bg_hue, shirt_hue): a (cos, sin) pair; ``predict`` turns it into the hue in [0, 1);
* every other factor: the value in its own range (a regression).

Images of any size are resized (area) to the classifier's resolution first. Weights are stored as one
``.safetensors`` file with the config in its metadata (``format = "latentlab-classifier"``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..utils import bar_disable, untrained
from .synthfaces import BINARY, FACTORS, RANGES

FORMAT = "latentlab-classifier"
CIRCULAR = ("bg_hue", "shirt_hue")


@dataclass(frozen=True)
class ClassifierConfig:
    """The classifier's architecture and what it predicts."""

    resolution: int = 64  # input side; other sizes are resized to it
    channels: tuple[int, ...] = (32, 64, 128, 256)  # feature maps per stage (each stage halves the size)
    feature_dim: int = 256  # width of the shared feature vector (the Fréchet-distance space)
    factors: tuple[str, ...] = FACTORS  # predicted factors, in output order
    binary: tuple[str, ...] = BINARY  # factors predicted as logits
    circular: tuple[str, ...] = CIRCULAR  # factors predicted as (cos, sin) of 2*pi*value
    ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(RANGES))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassifierConfig:
        d = dict(d)
        for k in ("channels", "factors", "binary", "circular"):
            d[k] = tuple(d[k])
        d["ranges"] = {k: tuple(v) for k, v in d["ranges"].items()}
        return cls(**d)


class FactorClassifier(nn.Module):
    """``images [N, 3, H, W]`` in [-1, 1] -> ``{factor: [N]}`` raw outputs (see the module docstring)."""

    def __init__(self, config: ClassifierConfig | None = None):
        super().__init__()
        self.config = c = config or ClassifierConfig()
        layers: list[nn.Module] = []
        in_ch = 3
        for ch in c.channels:
            layers += [nn.Conv2d(in_ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2),
                       nn.Conv2d(ch, ch, 3, padding=1, stride=2), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2)]  # fmt: skip
            in_ch = ch
        self.trunk = nn.Sequential(*layers)
        side = c.resolution // 2 ** len(c.channels)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * side * side, c.feature_dim), nn.LeakyReLU(0.2))
        self.head = nn.Linear(c.feature_dim, self.num_outputs)

    @property
    def num_outputs(self) -> int:
        """Width of the output layer: one per factor, two per circular factor."""
        return len(self.config.factors) + len(self.config.circular)

    def features(self, images: Tensor) -> Tensor:
        """``[N, 3, H, W]`` in [-1, 1] -> ``[N, feature_dim]`` features."""
        return self.fc(self.trunk(self._resized(images)))

    def stage_features(self, images: Tensor) -> list[Tensor]:
        """The trunk's output after each stage: ``[N, channels[i], R / 2^(i+1), R / 2^(i+1)]`` per stage
        (``R`` the classifier's resolution), for images ``[N, 3, H, W]`` in [-1, 1]."""
        per_stage = len(self.trunk) // len(self.config.channels)
        feats, h = [], self._resized(images)
        for i, layer in enumerate(self.trunk):
            h = layer(h)
            if (i + 1) % per_stage == 0:
                feats.append(h)
        return feats

    def _resized(self, images: Tensor) -> Tensor:
        """Images at the classifier's resolution: area-downsampled when larger, bilinear when smaller."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"the classifier wants RGB images [N, 3, H, W], got {tuple(images.shape)}")
        r = self.config.resolution
        if images.shape[-2:] == (r, r):
            return images
        larger = images.shape[-1] > r
        return F.interpolate(images, size=(r, r), mode="area" if larger else "bilinear",
                             align_corners=None if larger else False)  # fmt: skip

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Raw outputs: logits for binary factors, ``atan2``-decoded values in [0, 1) for circular ones, and
        regressions for the rest; each ``[N]``."""
        return self.decode(self.head(self.features(images)))

    def decode(self, raw: Tensor) -> dict[str, Tensor]:
        """Split the output layer ``[N, num_outputs]`` into named ``[N]`` outputs."""
        out, k = {}, 0
        for name in self.config.factors:
            if name in self.config.circular:
                out[name] = torch.atan2(raw[:, k + 1], raw[:, k]) / (2 * math.pi) % 1.0
                k += 2
            else:
                out[name] = raw[:, k]
                k += 1
        return out

    @torch.no_grad()
    def predict(self, images: Tensor, batch: int = 256) -> dict[str, Tensor]:
        """Factor values ``{name: [N]}`` in the factors' units: binaries as probabilities, circular factors in
        [0, 1), the rest in their ranges. Runs in eval mode, ``batch`` images at a time."""
        return self.predict_with_features(images, batch)[0]

    @torch.no_grad()
    def predict_with_features(self, images: Tensor, batch: int = 256) -> tuple[dict[str, Tensor], Tensor]:
        """:meth:`predict`'s values and the ``[N, feature_dim]`` features they came from, in one pass."""
        was = self.training
        self.eval()
        feats = torch.cat([self.features(images[i : i + batch]) for i in range(0, images.shape[0], batch)])
        self.train(was)
        out = self.values(self.decode(self.head(feats)))
        for name in self.config.binary:
            out[name] = out[name].sigmoid()
        return out, feats

    def travel(self, images: Tensor) -> dict[str, float]:
        """How far each reading moves over a sequence of images (e.g. one edit strip, ``[A, 3, H, W]`` in
        [-1, 1]), as a fraction of the factor's range: ``(max - min) / range``, in [0, 1]. A circular factor
        (a hue) counts the largest circular distance between any two images, in [0, 0.5]."""
        if images.ndim != 4 or images.shape[0] < 2:
            raise ValueError(f"travel() wants a sequence of at least 2 images [A, 3, H, W], got {tuple(images.shape)}")
        out = {}
        for name, v in self.predict(images).items():
            v = v.double()
            if name in self.config.circular:
                d = (v[:, None] - v[None]).abs()
                out[name] = float(torch.minimum(d, 1 - d).max())
            else:
                lo, hi = self.config.ranges.get(name, (0.0, 1.0))
                out[name] = float((v.max() - v.min()) / (hi - lo))
        return out

    def targets(self, factors: Tensor) -> Tensor:
        """Training targets ``[N, num_outputs]`` from factor vectors ``[N, len(factors)]`` (ranges mapped to
        [-1, 1], circular factors to (cos, sin), binaries kept as 0/1)."""
        cols, c = [], self.config
        for i, name in enumerate(c.factors):
            v = factors[:, i]
            if name in c.circular:
                cols += [torch.cos(2 * math.pi * v), torch.sin(2 * math.pi * v)]
            elif name in c.binary:
                cols.append(v)
            else:
                lo, hi = c.ranges[name]
                cols.append((v - lo) / (hi - lo) * 2 - 1)
        return torch.stack(cols, dim=1)

    def loss(self, images: Tensor, factors: Tensor) -> Tensor:
        """Mean-squared error on regressions and (cos, sin) pairs plus BCE on binaries."""
        raw = self.head(self.features(images))
        t = self.targets(factors)
        binary = self._binary_mask().to(raw.device)
        mse = F.mse_loss(raw[:, ~binary], t[:, ~binary])
        bce = F.binary_cross_entropy_with_logits(raw[:, binary], t[:, binary]) if binary.any() else raw.sum() * 0
        return mse + bce

    def values(self, raw_outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map :meth:`forward`'s regressions from [-1, 1] back to the factors' ranges (binaries untouched)."""
        out = dict(raw_outputs)
        for name in self.config.factors:
            if name not in self.config.binary and name not in self.config.circular:
                lo, hi = self.config.ranges[name]
                out[name] = (out[name] + 1) / 2 * (hi - lo) + lo
        return out

    def _binary_mask(self) -> Tensor:
        mask = []
        for name in self.config.factors:
            mask += [False, False] if name in self.config.circular else [name in self.config.binary]
        return torch.tensor(mask)


def save_classifier(path: str | os.PathLike, model: FactorClassifier, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to a ``.safetensors`` file (atomically) with its config and ``meta``."""
    from safetensors.torch import save_file

    from ..io.atomic import atomic_path

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "meta": json.dumps(meta or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def load_classifier_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> FactorClassifier:
    """Load a classifier written by :func:`save_classifier` (strict; eval mode)."""
    from safetensors import SafetensorError, safe_open

    from ..io.checkpoint import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such classifier file: {str(path)!r}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            md = f.metadata() or {}
            if md.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a latentlab classifier (format {md.get('format')!r})")
            model = untrained(FactorClassifier, ClassifierConfig.from_dict(json.loads(md["config"])))
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable classifier ({e})") from None
    model.load_state_dict(state, strict=True)
    model.meta = json.loads(md.get("meta", "{}"))
    return model.to(device).eval()


def evaluate(model: FactorClassifier, images: Tensor, factors: Tensor) -> dict[str, float]:
    """Held-out quality per factor: accuracy for binaries, R² for regressions, mean |angle error| (in turns)
    for circular factors. ``images [N, 3, H, W]`` in [-1, 1], ``factors [N, len(FACTORS)]``."""
    pred = model.predict(images)
    out = {}
    for i, name in enumerate(model.config.factors):
        y, p = factors[:, i].to(pred[name]), pred[name]
        if name in model.config.binary:
            out[f"{name}/accuracy"] = float(((p > 0.5).float() == y).float().mean())
        elif name in model.config.circular:
            d = (p - y).abs() % 1.0
            out[f"{name}/mean_error_turns"] = float(torch.minimum(d, 1 - d).mean())
        else:
            out[f"{name}/r2"] = float(1 - ((p - y) ** 2).mean() / y.var(unbiased=False).clamp_min(1e-12))
    return out


def render_batch(indices: range | list[int], resolution: int, seed: int) -> tuple[Tensor, Tensor]:
    """SynthFaces ``indices`` of dataset ``seed`` as images ``[N, 3, R, R]`` in [-1, 1] and factors ``[N, F]``."""
    from .synthfaces import render_item

    imgs, facs = [], []
    for i in indices:
        img, face = render_item(i, resolution, seed)
        imgs.append(img)
        facs.append(face.vector())
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.from_numpy(np.stack(facs))


def load_factor_dataset(path: str | os.PathLike, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """All images of a SynthFaces zip as uint8 ``[N, 3, R, R]`` and their factors ``[N, F]`` (from its labels)."""
    from .datasets import ImageDataset

    ds = ImageDataset(path, use_labels=True)
    if ds.c_dim != len(FACTORS):
        raise ValueError(f"{path}: labels have {ds.c_dim} values, SynthFaces factor vectors have {len(FACTORS)}; "
                         "write the data with `latentlab dataset synth`")  # fmt: skip
    n = ds.num_images if limit is None else min(limit, ds.num_images)
    imgs = torch.from_numpy(np.stack([ds.image(i) for i in range(n)]))
    return imgs, torch.from_numpy(ds.labels[:n].copy())


def train_classifier(
    data: str | os.PathLike,
    out: str | os.PathLike,
    epochs: int = 4,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    eval_count: int = 2000,
    eval_seed: int = 1,
    config: ClassifierConfig | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> tuple[FactorClassifier, dict[str, float]]:
    """Train a :class:`FactorClassifier` on a SynthFaces zip; evaluate on fresh renders; save it.

    Args:
        data: a zip from ``latentlab dataset synth`` (its labels are the factor vectors).
        out: the ``.safetensors`` file to write.
        epochs, batch, lr: Adam with a cosine learning-rate decay over all steps.
        seed: initialisation and shuffling.
        eval_count, eval_seed: held-out SynthFaces (a different dataset seed) for the reported figures.
        config: the architecture (default :class:`ClassifierConfig` at the data's resolution).
        limit: use only the first ``limit`` images.
        progress: show a progress bar.
    Returns:
        The model (eval mode) and its held-out figures (also stored in the file's metadata).
    """
    from tqdm.auto import tqdm

    imgs, facs = load_factor_dataset(data, limit)
    res = imgs.shape[-1]
    config = config or ClassifierConfig(resolution=res)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FactorClassifier(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(imgs) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    bar = tqdm(total=steps, desc="classifier", unit="step", disable=bar_disable(progress), leave=False)
    for _ in range(epochs):
        perm = torch.randperm(len(imgs), generator=gen)
        for k in range(len(imgs) // batch):
            idx = perm[k * batch : (k + 1) * batch]
            x = imgs[idx].float() / 127.5 - 1
            loss = model.loss(x, facs[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix_str(f"loss {loss.item():.4f}", refresh=False)
    bar.close()
    model.eval()
    x_eval, f_eval = render_batch(range(eval_count), res, eval_seed)
    figures = evaluate(model, x_eval, f_eval)
    meta = {"data": str(data), "images": len(imgs), "epochs": epochs, "batch": batch, "lr": lr, "seed": seed,
            "held_out": {"count": eval_count, "dataset_seed": eval_seed, **figures}}  # fmt: skip
    save_classifier(out, model, meta)
    model.meta = meta
    return model, figures
