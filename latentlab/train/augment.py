"""Adaptive discriminator augmentation (Karras et al., "Training Generative Adversarial Networks with Limited
Data", NeurIPS 2020): the "bgc" pipeline (blit, geometric, colour) and the adaptive heuristic.

Every image the discriminator sees, real or generated, is augmented; each transformation is applied
independently with probability ``p`` (the rotations split theirs between a pre- and a post-rotation so that
P(either) = p). The parameter ranges are the paper's and NVIDIA's: x-flip, 90-degree rotations, integer
translation (up to 1/8 of the image), isotropic scaling (lognormal, std 0.2 octaves), arbitrary rotation,
anisotropic scaling (0.2), fractional translation (std 1/8), brightness (std 0.2), contrast (lognormal, 0.5
octaves), luma flip, hue rotation and saturation (lognormal, 1 octave).

Geometric transforms are composed into one matrix per image and applied with ``grid_sample`` (bilinear,
reflection at the borders), which is differentiable, so G's gradient and R1 pass through it. Integer
translations, flips and 90-degree rotations land on pixel centres and are exact. Unlike NVIDIA's code,
the resampling is not done at 2x with a wavelet low-pass filter, so strong down-scaling and rotations alias
slightly more.

The heuristic (Sec. 2.3): every ``interval`` minibatches, ``r_t = E[sign(D(x_real))]`` over them; ``p`` moves
by ``sign(r_t - target) * batch * interval / (ada_kimg * 1000)``, so it can go from 0 to 1 in ``ada_kimg``
kimg, and never below 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# rand(kind, *trailing_shape) -> [n, *trailing_shape] uniform ("uniform") or standard-normal ("normal") draws
# for this process's rows of the current global batch (see loop.py).
RandFn = Callable[..., Tensor]

_LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0]) / math.sqrt(3)


def _eye(n: int, k: int, like: Tensor) -> Tensor:
    return torch.eye(k, device=like.device, dtype=like.dtype).expand(n, k, k).clone()


def _mat3(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """``[N, 3, 3]`` from nested lists of per-sample tensors ``[N]`` and scalars."""
    n = like.shape[0]
    cols = [torch.as_tensor(v, dtype=like.dtype, device=like.device).expand(n) for row in rows for v in row]
    return torch.stack(cols, dim=1).reshape(n, 3, 3)


def _scale2d(sx: Tensor, sy: Tensor | float) -> Tensor:
    return _mat3([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(theta: Tensor) -> Tensor:
    c, s = theta.cos(), theta.sin()
    return _mat3([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _mat3([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _gate(rand: RandFn, prob: float, value: Tensor, identity: float) -> Tensor:
    """``value`` where a uniform draw is below ``prob``, else ``identity`` (per sample)."""
    keep = rand("uniform", *([1] * (value.ndim - 1))) < prob
    return torch.where(keep, value, torch.full_like(value, identity))


BGC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast", "lumaflip",
       "hue", "saturation")  # fmt: skip


class AugmentPipe:
    """The "bgc" augmentation with strength ``p`` in [0, 1] (0 = identity, nothing drawn).

    Args:
        p: initial probability of each transformation.
        transforms: which of :data:`BGC` to use (default all, the paper's "bgc").
        xint_max, scale_std, rotate_max, aniso_std, xfrac_std: geometric ranges (NVIDIA's defaults).
        brightness_std, contrast_std, hue_max, saturation_std: colour ranges (NVIDIA's defaults).
    """

    def __init__(
        self,
        p: float = 0.0,
        transforms: tuple[str, ...] = BGC,  # the transformations to use, by name
        xint_max: float = 0.125,  # integer translation, fraction of the image size
        scale_std: float = 0.2,  # log2 std of isotropic scaling
        rotate_max: float = 1.0,  # rotation range, fraction of a half turn
        aniso_std: float = 0.2,  # log2 std of anisotropic scaling
        xfrac_std: float = 0.125,  # std of fractional translation, fraction of the image size
        brightness_std: float = 0.2,  # std of the brightness offset (images in [-1, 1])
        contrast_std: float = 0.5,  # log2 std of the contrast factor
        hue_max: float = 1.0,  # hue rotation range, fraction of a half turn
        saturation_std: float = 1.0,  # log2 std of the saturation factor
    ):
        unknown = sorted(set(transforms) - set(BGC))
        if unknown:
            raise ValueError(f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(BGC)}")
        self.p = float(p)
        self.transforms = tuple(transforms)
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std

    def __call__(self, images: Tensor, rand: RandFn) -> Tensor:
        """Augment ``images [N, C, H, W]`` (C = 1 or 3, roughly [-1, 1]); differentiable w.r.t. ``images``."""
        if self.p <= 0:
            return images
        images = self._geometric(images, rand)
        return self._colour(images, rand)

    # ---------------------------------------------------------------------------------------------

    def _geometric(self, images: Tensor, rand: RandFn) -> Tensor:
        n, _, h, w = images.shape
        p = self.p
        # G maps output coordinates to input coordinates (normalised to [-1, 1]), so each step multiplies
        # by the inverse of the transformation it applies to the image.
        use = set(self.transforms)
        G = _eye(n, 3, images)
        if "xflip" in use:
            i = _gate(rand, p, torch.floor(rand("uniform") * 2), 0)
            G = G @ _scale2d(1 - 2 * i, torch.ones_like(i))  # its own inverse
        if "rotate90" in use:
            i = _gate(rand, p, torch.floor(rand("uniform") * 4), 0)
            G = G @ _rotate2d(math.pi / 2 * i)
        if "xint" in use:
            t = _gate(rand, p, (rand("uniform", 2) * 2 - 1) * self.xint_max, 0)
            G = G @ _translate2d(-2 * torch.round(t[:, 0] * w) / w, -2 * torch.round(t[:, 1] * h) / h)
        if "scale" in use:
            s = _gate(rand, p, torch.exp2(rand("normal") * self.scale_std), 1)
            G = G @ _scale2d(1 / s, 1 / s)
        p_rot = 1 - math.sqrt(min(max(1 - p, 0.0), 1.0))  # P(pre or post rotation) = p
        if "rotate" in use:
            theta = _gate(rand, p_rot, (rand("uniform") * 2 - 1) * math.pi * self.rotate_max, 0)
            G = G @ _rotate2d(theta)
        if "aniso" in use:
            s = _gate(rand, p, torch.exp2(rand("normal") * self.aniso_std), 1)
            G = G @ _scale2d(1 / s, s)
        if "rotate" in use:
            theta = _gate(rand, p_rot, (rand("uniform") * 2 - 1) * math.pi * self.rotate_max, 0)
            G = G @ _rotate2d(theta)
        if "xfrac" in use:
            t = _gate(rand, p, rand("normal", 2) * self.xfrac_std, 0)
            G = G @ _translate2d(-2 * t[:, 0], -2 * t[:, 1])
        if torch.equal(G, _eye(n, 3, images)):
            return images
        grid = F.affine_grid(G[:, :2, :].to(images.dtype), list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _colour(self, images: Tensor, rand: RandFn) -> Tensor:
        n, c, h, w = images.shape
        p = self.p
        eye = _eye(n, 4, images)
        v = _LUMA.to(images)
        vv = torch.outer(v, v)
        use = set(self.transforms)
        C = eye.clone()
        if "brightness" in use:
            b = _gate(rand, p, rand("normal") * self.brightness_std, 0)
            T = eye.clone()
            T[:, :3, 3] = b[:, None]
            C = T @ C
        if "contrast" in use:
            k = _gate(rand, p, torch.exp2(rand("normal") * self.contrast_std), 1)
            S = eye.clone()
            S[:, :3, :3] *= k[:, None, None]
            C = S @ C
        if "lumaflip" in use:
            i = _gate(rand, p, torch.floor(rand("uniform") * 2), 0)
            C = (eye - 2 * vv * i[:, None, None]) @ C
        if c == 3 and "hue" in use:
            theta = _gate(rand, p, (rand("uniform") * 2 - 1) * math.pi * self.hue_max, 0)
            C = _rotate_about(v[:3], theta, images) @ C
        if c == 3 and "saturation" in use:
            s = _gate(rand, p, torch.exp2(rand("normal") * self.saturation_std), 1)
            C = (vv + (eye - vv) * s[:, None, None]) @ C
        if torch.equal(C, eye):
            return images
        flat = images.reshape(n, c, h * w)
        if c == 3:
            out = C[:, :3, :3] @ flat + C[:, :3, 3:]
        else:  # grey: the mean of the RGB rows acts on the single channel
            out = flat * C[:, :3, :3].mean(dim=[1, 2], keepdim=True) * 3 + C[:, :3, 3:].mean(dim=1, keepdim=True)
        return out.reshape(n, c, h, w)


def _rotate_about(axis: Tensor, theta: Tensor, like: Tensor) -> Tensor:
    """``[N, 4, 4]`` rotations by ``theta`` about the unit 3-vector ``axis`` (Rodrigues' formula)."""
    n = theta.shape[0]
    x, y, z = axis.tolist()
    K = torch.tensor([[0, -z, y], [z, 0, -x], [-y, x, 0]], dtype=like.dtype, device=like.device)
    s, c = theta.sin()[:, None, None], theta.cos()[:, None, None]
    R3 = torch.eye(3, dtype=like.dtype, device=like.device) + s * K + (1 - c) * (K @ K)
    R = _eye(n, 4, like)
    R[:, :3, :3] = R3
    return R


class AdaptiveP:
    """NVIDIA's ADA controller: tracks ``sign(D(real))`` and adjusts the pipe's ``p`` every ``interval`` batches."""

    def __init__(self, pipe: AugmentPipe, target: float = 0.6, interval: int = 4, ada_kimg: float = 500.0):
        self.pipe, self.target, self.interval, self.ada_kimg = pipe, target, interval, ada_kimg
        self.sign_sum = 0.0
        self.sign_count = 0

    def observe(self, real_signs_sum: float, count: int) -> None:
        """Accumulate ``sum(sign(D(real)))`` over ``count`` real images (global figures)."""
        self.sign_sum += real_signs_sum
        self.sign_count += count

    def maybe_adjust(self, batch_idx: int, batch: int) -> None:
        """After minibatch ``batch_idx`` (1-based count), adjust ``p`` when an interval is complete."""
        if batch_idx % self.interval or self.sign_count == 0:
            return
        r_t = self.sign_sum / self.sign_count
        step = math.copysign(1.0, r_t - self.target) if r_t != self.target else 0.0
        self.pipe.p = max(self.pipe.p + step * batch * self.interval / (self.ada_kimg * 1000), 0.0)
        self.sign_sum, self.sign_count = 0.0, 0

    def state_dict(self) -> dict[str, float]:
        """``{"p", "sign_sum", "sign_count"}`` (what a resumed run needs)."""
        return {"p": self.pipe.p, "sign_sum": self.sign_sum, "sign_count": self.sign_count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.pipe.p = float(state["p"])
        self.sign_sum, self.sign_count = float(state.get("sign_sum", 0.0)), int(state.get("sign_count", 0))
