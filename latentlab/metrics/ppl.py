"""Perceptual path length (StyleGAN, Karras et al. 2019, Sec. 3.3; StyleGAN2 Sec. 3), as in NVIDIA's
stylegan2-ada-pytorch ``metrics/perceptual_path_length.py``.

For each sample: two latents, an interpolation point ``t`` (uniform in [0, 1] for ``full``, 0 for ``end``),
the images at ``t`` and ``t + epsilon`` (slerp in Z, lerp in W; constant noise), optionally cropped to the
face (rows 3/8-7/8, columns 2/8-6/8 of the image), box-downsampled to 256 when larger, and
``LPIPS(img_t, img_t+eps) / epsilon²``. The result is the mean of the distances between the 1st and 99th
percentiles.

NVIDIA's names: ``ppl_zfull``, ``ppl_wfull``, ``ppl_zend``, ``ppl_wend`` (cropped) and ``ppl2_wend``
(uncropped, the StyleGAN2 paper's). The distance is LPIPS-VGG (:class:`~latentlab.perceptual.LPIPSLoss`);
any callable ``(a, b) -> [N]`` can replace it, and the result is then named after it (``ppl_wend:NAME``), not
PPL's. :func:`classifier_distance` is the offline one: LPIPS's formula on a factor classifier's stages.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..nn.generator import Generator
from ..parallel import World, map_tasks

Distance = Callable[[Tensor, Tensor], Tensor]

CHUNK = 256  # samples per block of random draws
VARIANTS = {  # name -> (space, sampling, crop)
    "ppl_zfull": ("z", "full", True),
    "ppl_wfull": ("w", "full", True),
    "ppl_zend": ("z", "end", True),
    "ppl_wend": ("w", "end", True),
    "ppl2_wend": ("w", "end", False),
}


def slerp_unit(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the directions of ``a`` and ``b`` ``[N, D]``; unit-length results (NVIDIA's
    PPL slerp: the mapping network normalises z anyway)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def face_crop(img: Tensor) -> Tensor:
    """NVIDIA's PPL crop of square images ``[N, C, R, R]``: rows ``3R/8..7R/8``, columns ``2R/8..6R/8``."""
    if img.shape[-1] != img.shape[-2]:
        raise ValueError(f"the PPL face crop needs square images, got {tuple(img.shape)}")
    c = img.shape[-1] // 8
    return img[:, :, c * 3 : c * 7, c * 2 : c * 6]


def box_downsample(img: Tensor, side: int = 256) -> Tensor:
    """Average ``factor x factor`` boxes so that the image is at most ``side`` (integer factors, as NVIDIA's)."""
    factor = img.shape[-1] // side
    if factor <= 1:
        return img
    n, ch, h, w = img.shape
    return img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))


def path_lengths(
    G: Generator,
    distance: Distance,
    num_samples: int,
    space: str = "w",
    sampling: str = "end",
    crop: bool = True,
    epsilon: float = 1e-4,
    seed: int = 0,
    class_idx: int | None = None,
    batch_size: int = 16,
    progress: bool = True,
    world: World | None = None,
) -> np.ndarray:
    """``[num_samples]`` per-sample ``distance(img_t, img_t+eps) / eps²`` (see the module docstring).

    Draws come from one ``torch.Generator(seed)`` on the CPU in chunks of ``CHUNK`` samples (the last one
    shorter): ``z`` ``[2n, z_dim]`` (pairs are rows ``2i, 2i+1``), then ``t`` ``[n, 1]`` (uniform, times 0
    for ``end``). The result therefore does not depend on ``batch_size``.

    With ``world`` (a ``torchrun`` job's processes) batch ``k`` is measured by process ``k % size`` (every
    process makes the same draws) and every process returns all distances: bit-identical to one process with
    the same ``batch_size`` and threads.
    """
    if space not in ("z", "w") or sampling not in ("full", "end"):
        raise ValueError(f"space must be 'z' or 'w' and sampling 'full' or 'end', got {space!r}, {sampling!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    world = world if world is not None else World()
    # the batches in draw order: (chunk start, offset in the chunk, size)
    batches = [(chunk, s, min(batch_size, min(CHUNK, num_samples - chunk) - s))
               for chunk in range(0, num_samples, CHUNK) for s in range(0, min(CHUNK, num_samples - chunk), batch_size)]
    gen = torch.Generator().manual_seed(seed)
    drawn: dict[str, object] = {"chunk": -1}
    bar = tqdm(total=num_samples, desc=f"ppl {space}{sampling}", unit="pair", disable=world.bar_disable(progress))

    def measure(k: int) -> Tensor:
        chunk, s, n = batches[k]
        while drawn["chunk"] < chunk:  # every process draws every chunk, in order, to keep the stream
            nxt = drawn["chunk"] + CHUNK if drawn["chunk"] >= 0 else 0
            m = min(CHUNK, num_samples - nxt)
            drawn.update(chunk=nxt, z=torch.randn([2 * m, G.z_dim], generator=gen),
                         t=torch.rand([m, 1], generator=gen) * (1.0 if sampling == "full" else 0.0))
        z, t = drawn["z"][2 * s : 2 * (s + n)], drawn["t"][s : s + n]
        return _pair_distances(G, distance, z, t, space, crop, epsilon, class_idx)

    def on_round(done: dict[int, Tensor], fresh: list[int]) -> None:
        bar.update(sum(batches[k][2] for k in fresh))

    try:
        out = map_tasks(world, len(batches), measure, on_round=on_round)
    finally:
        bar.close()
    return torch.cat(out).numpy().astype(np.float64)


def _pair_distances(G, distance: Distance, z: Tensor, t: Tensor, space: str, crop: bool, epsilon: float,
                    class_idx: int | None) -> Tensor:  # fmt: skip
    """``[n]`` distances / eps² for the pairs ``z[2i], z[2i+1]`` at ``t [n, 1]``."""
    from ..render import class_labels

    device = G.w_avg.device
    z0, z1 = z[0::2], z[1::2]
    c = class_labels(G, z.shape[0], class_idx)
    with torch.no_grad():
        if space == "z":
            zt0, zt1 = slerp_unit(z0, z1, t), slerp_unit(z0, z1, t + epsilon)
            ws = G.mapping(torch.stack([zt0, zt1], 1).flatten(0, 1).to(device), c)
        else:
            w = G.mapping(z.to(device), c)[:, 0]
            w0, w1 = w[0::2], w[1::2]
            td = t.to(device)
            wt = torch.stack([w0.lerp(w1, td), w0.lerp(w1, td + epsilon)], 1).flatten(0, 1)
            ws = wt.unsqueeze(1).repeat(1, G.num_ws, 1)
        img = G.synthesis(ws, noise_mode="const")
        if crop:
            img = face_crop(img)
        img = box_downsample(img)
        return distance(img[0::2], img[1::2]).reshape(-1).float().cpu() / epsilon**2


def _trimmed(dist: np.ndarray) -> tuple[float, float, float]:
    """``(mean over [lo, hi], lo, hi)`` with lo/hi the 1st (lower) and 99th (higher) percentiles."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean()), float(lo), float(hi)


def trimmed_mean(dist: np.ndarray) -> float:
    """NVIDIA's reduction of ``[N]`` path lengths: the mean over [1st percentile (lower), 99th (higher)]."""
    return _trimmed(dist)[0]


def summarize(dist: np.ndarray, resamples: int = 500, seed: int = 0) -> dict[str, float]:
    """:func:`trimmed_mean` of ``[N]`` path lengths, the percentiles, and a 95% bootstrap interval of the mean
    (``resamples`` draws with replacement from ``np.random.default_rng(seed)``; ``ci_lo``/``ci_hi``)."""
    rng = np.random.default_rng(seed)
    boot = [trimmed_mean(dist[rng.integers(0, dist.size, dist.size)]) for _ in range(resamples)]
    lo, hi = np.percentile(boot, [2.5, 97.5]) if resamples else (float("nan"), float("nan"))
    mean, p1, p99 = _trimmed(dist)
    return {"mean": mean, "p1": p1, "p50": float(np.median(dist)), "p99": p99, "ci_lo": float(lo),
            "ci_hi": float(hi), "num_samples": float(dist.size)}  # fmt: skip


MIN_LPIPS_SIDE = 32  # VGG16's last LPIPS layer sits after four 2x poolings


def lpips_vgg_distance(download: bool = True, weights=None, random_backbone: bool = False) -> Distance:
    """LPIPS-VGG as a PPL distance on images in [-1, 1].

    Images smaller than ``MIN_LPIPS_SIDE`` (the face crop of a 16x16 or 32x32 model) are bilinearly enlarged
    to it first, since VGG cannot pool them; 64x64 models and larger are measured as they are.

    Args:
        download: allow fetching torchvision's VGG16 file into the torch hub cache.
        weights: that file, when it is elsewhere.
        random_backbone: a randomly initialised VGG (tests and timing only; not comparable to papers).
    Raises:
        WeightsUnavailable: the file is not there and cannot be downloaded (the message says where to put it).
    """
    import torch.nn.functional as F

    from ..perceptual import LPIPSLoss, build_loss

    if random_backbone:
        loss = LPIPSLoss("vgg", random_backbone=True)
    else:
        loss = build_loss("lpips-vgg", download=download, lpips_weights=weights)

    def dist(a: Tensor, b: Tensor) -> Tensor:
        loss.to(a.device)
        if min(a.shape[-2:]) < MIN_LPIPS_SIDE:
            a, b = (F.interpolate(x, size=(MIN_LPIPS_SIDE, MIN_LPIPS_SIDE), mode="bilinear", align_corners=False)
                    for x in (a, b))  # fmt: skip
        return loss(a, loss.prepare(b))

    return dist


def classifier_distance(classifier) -> Distance:
    """The offline PPL distance: LPIPS's formula (no learned weights) on a factor classifier's stages.

    Each stage output of :meth:`~latentlab.data.classifier.FactorClassifier.stage_features` is unit-normalised
    over channels; the squared differences are summed over channels, averaged over pixels and summed over
    stages, as ``lpips.LPIPS(lpips=False)`` does with VGG. On SynthFaces models it stands in for LPIPS-VGG
    where no VGG16 weights can be had; results are named ``ppl_*:classifier`` and are not comparable to
    published PPL. Images ``[N, 3, H, W]`` in [-1, 1]; returns ``[N]``. The classifier is put in eval mode
    (batch-norm statistics fixed) and frozen.
    """
    from ..perceptual.offline import stage_distance, unit_channels

    classifier.eval().requires_grad_(False)

    def dist(a: Tensor, b: Tensor) -> Tensor:
        classifier.to(a.device)
        return stage_distance([unit_channels(f) for f in classifier.stage_features(a)],
                              [unit_channels(f) for f in classifier.stage_features(b)])  # fmt: skip

    return dist


def distance_label(distance: Distance | None, name: str | None) -> str:
    """What a PPL distance is called: ``name`` if given, else ``"lpips-vgg"`` for the default (None) and
    ``"custom"`` for any other callable."""
    return name or ("lpips-vgg" if distance is None else "custom")


def ppl(
    G: Generator,
    variant: str = "ppl_wend",
    num_samples: int = 50_000,
    epsilon: float = 1e-4,
    distance: Distance | None = None,
    distance_name: str | None = None,
    seed: int = 0,
    class_idx: int | None = None,
    batch_size: int = 16,
    progress: bool = True,
    world: World | None = None,
) -> dict[str, float]:
    """One of NVIDIA's PPL variants (``VARIANTS``); with ``world`` the samples are shared out over a ``torchrun``
    job's processes (:func:`path_lengths`) and every process returns the result.

    Args:
        distance: ``(a, b) -> [N]`` on images in [-1, 1]; None = LPIPS-VGG (downloaded when allowed).
        distance_name: what ``distance`` is; any name but ``"lpips-vgg"`` is appended to the keys. Default:
            ``"lpips-vgg"`` when ``distance`` is None, else ``"custom"``.
    Returns:
        ``{key: mean, key + "/p1", "/p50", "/p99", "/ci_lo", "/ci_hi", "/num_samples"}`` with ``key`` the
        variant, or ``variant:distance_name`` for other distances than LPIPS-VGG.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown PPL variant {variant!r}; known: {', '.join(VARIANTS)}")
    space, sampling, crop = VARIANTS[variant]
    distance_name = distance_label(distance, distance_name)
    key = variant if distance_name == "lpips-vgg" else f"{variant}:{distance_name}"
    distance = distance or lpips_vgg_distance()
    d = path_lengths(G, distance, num_samples, space, sampling, crop, epsilon, seed, class_idx, batch_size, progress,
                     world)
    s = summarize(d, seed=seed)
    return {key: s.pop("mean"), **{f"{key}/{k}": v for k, v in s.items()}}
