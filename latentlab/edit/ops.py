"""Edit operations on latent codes: pure functions over tensors.

* :func:`edit`: move codes along a direction, optionally on chosen W+ layers only (InterFaceGAN's linear edit,
  Shen et al. 2020, applied per layer as in the StyleGAN paper's layer-wise style control);
* :func:`mix`, :func:`mix_grid`: style mixing, copying the codes of chosen layers from one source to another
  (StyleGAN, Karras et al. 2019, Sec. 3.1 and Fig. 3);
* :func:`interpolate`: lerp (for W) or slerp (for Z, the sphere the Gaussian concentrates on);
* :func:`truncate`: the truncation trick (re-exported from :mod:`latentlab.nn.mapping`);
* :func:`noise_variation`: the StyleGAN paper's stochastic-variation view (Sec. 3.2, Figs. 4-5): the same
  codes rendered under many noise draws, with noise on all, some or none of the layers.

Layer selections (``layers=``) follow the StyleGAN paper's grouping: W+ code ``i`` drives resolution
``2**(i//2 + 2)``; ``"coarse"`` is 4-8 px, ``"middle"`` 16-32 px, ``"fine"`` 64 px and up (see
:func:`layer_indices`, which lives with the network in :mod:`latentlab.nn.wplus`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..nn.mapping import truncate
from ..nn.wplus import GROUPS, LayerSpec, layer_indices
from ..validate import MAX_CODE_ABS, count, float_tensor, number

if TYPE_CHECKING:
    from ..nn.generator import Generator
    from .directions import Direction

__all__ = ["GROUPS", "edit", "interpolate", "layer_indices", "lerp", "mix", "mix_grid", "noise_variation",
           "parse_alphas", "slerp", "sweep", "truncate"]  # fmt: skip

def _vector(direction: Tensor | Direction, codes: Tensor) -> Tensor:
    """The direction as a ``[dim]`` tensor on the codes' device, after the space and size checks."""
    from .directions import Direction

    if isinstance(direction, Direction):
        direction.check_codes(codes)
        direction = direction.vector
    if not isinstance(direction, Tensor) or direction.ndim != 1:
        got = tuple(direction.shape) if isinstance(direction, Tensor) else type(direction).__name__
        raise ValueError(f"a direction must be a vector [dim], got {got}")
    if direction.shape[0] != codes.shape[-1]:
        raise ValueError(f"the direction has {direction.shape[0]} dimensions but the codes have {codes.shape[-1]} "
                         f"(codes of shape {tuple(codes.shape)})")  # fmt: skip
    return direction.to(device=codes.device, dtype=codes.dtype)


def edit(
    ws: Tensor,
    direction: Tensor | Direction,
    alpha: float | Tensor,
    layers: LayerSpec = None,
) -> Tensor:
    """Move codes by ``alpha`` along ``direction``: ``ws + alpha * n`` (on ``layers`` only, for W+ codes).

    Args:
        ws: W+ codes ``[N, num_ws, w_dim]``, or single codes ``[N, dim]`` (Z or W; then ``layers`` must be None).
        direction: a :class:`~latentlab.edit.directions.Direction` (its space and model are checked against
            the codes) or a vector ``[dim]``. Fitted directions are unit vectors, so ``alpha`` is a distance
            in the code space.
        alpha: a float, or ``[N]`` one step per code.
        layers: which W+ codes move (see :func:`layer_indices`); None = the direction's own ``layers`` when
            it has them (a SeFa or one-layer direction), else all.
    Returns:
        A new tensor of the shape of ``ws``; the other layers are copied unchanged.
    """
    if isinstance(ws, Tensor) and ws.ndim not in (2, 3):
        raise ValueError(f"edit() wants W+ codes [N, num_ws, w_dim] or codes [N, dim], got shape {tuple(ws.shape)}")
    float_tensor(ws, "codes", ndim=(2, 3))  # integer codes would make every step round away to nothing
    n = _vector(direction, ws)
    if isinstance(alpha, Tensor):
        float_tensor(alpha, "alpha", ndim=(0, 1))
    else:
        number(alpha, "alpha", low=-MAX_CODE_ABS, high=MAX_CODE_ABS)
    alpha = torch.as_tensor(alpha, dtype=ws.dtype, device=ws.device)
    if alpha.ndim > 1 or (alpha.ndim == 1 and alpha.shape[0] != ws.shape[0]):
        raise ValueError(f"alpha must be a number or [N={ws.shape[0]}] values, got shape {tuple(alpha.shape)}")
    step = alpha.reshape(-1, *[1] * (ws.ndim - 1)) * n
    if ws.ndim == 2:
        if layers is not None:
            raise ValueError("layers= applies to W+ codes [N, num_ws, w_dim]; these are single codes [N, dim]")
        return ws + step
    if layers is None and getattr(direction, "layers", None) is not None:
        layers = list(direction.layers)  # a direction fitted for some layers moves those by default
    idx = layer_indices(layers, ws.shape[1])
    out = ws.clone()
    out[:, idx] += step
    return out


def _check_pair(a: Tensor, b: Tensor, what: str) -> None:
    float_tensor(a, f"{what}: the first codes")
    float_tensor(b, f"{what}: the second codes")
    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(f"{what} wants W+ codes [N, num_ws, w_dim], got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"{what}: the codes come from different generators: {tuple(a.shape)} vs {tuple(b.shape)}")


def mix(ws_a: Tensor, ws_b: Tensor, layers: LayerSpec) -> Tensor:
    """Style mixing: ``ws_a`` with the codes of ``layers`` copied from ``ws_b``.

    As in the StyleGAN paper's Fig. 3, source B's coarse codes bring its pose and face shape, its middle
    codes its smaller features, its fine codes its colours.

    Args:
        ws_a: ``[N, num_ws, w_dim]`` (or ``[1, ...]``, broadcast).
        ws_b: ``[N, num_ws, w_dim]`` (or ``[1, ...]``, broadcast).
        layers: the layers taken from B (see :func:`layer_indices`).
    Returns:
        ``[max(N_a, N_b), num_ws, w_dim]``.
    """
    _check_pair(ws_a, ws_b, "mix()")
    if ws_a.shape[0] != ws_b.shape[0] and 1 not in (ws_a.shape[0], ws_b.shape[0]):
        raise ValueError(f"mix(): {ws_a.shape[0]} codes cannot pair with {ws_b.shape[0]} (give equal counts or one)")
    idx = layer_indices(layers, ws_a.shape[1])
    n = max(ws_a.shape[0], ws_b.shape[0])
    out = ws_a.expand(n, -1, -1).clone()
    out[:, idx] = ws_b.expand(n, -1, -1)[:, idx]
    return out


def mix_grid(ws_cols: Tensor, ws_rows: Tensor, layers: LayerSpec) -> Tensor:
    """The StyleGAN paper's style-mixing figure: cell ``(r, c)`` is column source ``c`` with row source ``r``'s
    codes on ``layers``.

    Args:
        ws_cols: source A, ``[C, num_ws, w_dim]`` (the paper's top row).
        ws_rows: source B, ``[R, num_ws, w_dim]`` (the paper's left column).
        layers: the layers copied from B (see :func:`layer_indices`).
    Returns:
        ``[R, C, num_ws, w_dim]``.
    """
    _check_pair(ws_cols, ws_rows, "mix_grid()")
    rows = [mix(ws_cols, ws_rows[r : r + 1], layers) for r in range(ws_rows.shape[0])]
    return torch.stack(rows)


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation ``a + t (b - a)``, exactly ``a`` at ``t = 0`` and exactly ``b`` at ``t = 1``
    (``a + 1 * (b - a)`` need not round to ``b``); ``t`` broadcasts against ``a``'s leading dimensions."""
    return torch.lerp(a, b, torch.as_tensor(t, dtype=a.dtype, device=a.device))


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation over the last dimension: the angle moves linearly, the length linearly too.

    Two codes of equal length give points on that sphere for every ``t``. Parallel codes (no plane to turn
    in) fall back to :func:`lerp`.

    Args:
        a, b: ``[..., dim]``.
        t: broadcastable against ``a[..., :1]``; 0 gives ``a``, 1 gives ``b``.
    """
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    safe = sin.abs() > 1e-4
    s = torch.where(safe, sin, torch.ones_like(sin))
    unit = torch.where(safe, (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / s, lerp(ua, ub, t))
    unit = unit / unit.norm(dim=-1, keepdim=True).clamp_min(eps)
    return unit * lerp(na, nb, t)


def interpolate(a: Tensor, b: Tensor, steps: int, method: str = "lerp") -> Tensor:
    """``steps`` codes from ``a`` to ``b``, both ends included.

    Use ``"slerp"`` for Z (the Gaussian's mass lies near a sphere, which lerp cuts through) and ``"lerp"``
    for W and W+ (the StyleGAN paper's PPL uses the same pair).

    Args:
        a, b: codes of one shape, e.g. ``[z_dim]``, ``[N, w_dim]`` or ``[N, num_ws, w_dim]``.
        steps: >= 2.
        method: ``"lerp"`` or ``"slerp"`` (over the last dimension, so per W+ layer).
    Returns:
        ``[steps, *a.shape]``.
    """
    float_tensor(a, "interpolate(): a")
    float_tensor(b, "interpolate(): b")
    if a.shape != b.shape:
        raise ValueError(f"interpolate() needs codes of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    count(steps, "interpolate(): steps", low=2)
    if method not in ("lerp", "slerp"):
        raise ValueError(f"interpolation method must be 'lerp' or 'slerp', got {method!r}")
    t = torch.linspace(0, 1, steps, dtype=a.dtype, device=a.device).reshape(steps, *[1] * a.ndim)
    f = lerp if method == "lerp" else slerp
    out = f(a.unsqueeze(0), b.unsqueeze(0), t)
    out[0], out[-1] = a, b  # exact ends, whatever the rounding
    return out


@torch.no_grad()
def noise_variation(
    G: Generator,
    ws: Tensor,
    draws: int = 16,
    layers: LayerSpec = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """The stochastic-variation figure: each code rendered under ``draws`` noise draws, and the per-pixel std.

    Noise is drawn (standard normal, as in training) on the conv layers that ``layers`` selects and set to
    zero on the others, as in the StyleGAN paper's Fig. 5 ("noise in fine layers only", ...).

    Args:
        G: the generator (its device is used).
        ws: ``[N, num_ws, w_dim]``.
        draws: renders per code, >= 2.
        layers: the conv layers that get noise (see :func:`layer_indices`; conv layer ``i`` is driven by
            code ``i``, so the last code, which drives only the last ToRGB, has no noise); None = all.
        seed: seeds one ``torch.Generator`` per code, so each code's draws do not depend on the others.
    Returns:
        ``images [N, draws, C, R, R]`` float32 on the CPU roughly in [-1, 1], and ``std [N, R, R]``: the
        standard deviation over draws of each pixel, averaged over channels (in [-1, 1] units).
    """
    float_tensor(ws, "codes", ndim=3)
    if ws.shape[1:] != (G.num_ws, G.w_dim):
        raise ValueError(f"codes must be [N, {G.num_ws}, {G.w_dim}] for this generator, got {tuple(ws.shape)}")
    count(draws, "noise_variation(): draws", low=2, high=10_000)
    idx = set(layer_indices(layers, G.num_ws))
    device = G.w_avg.device
    noise_layers = G.synthesis.noise_layers()
    out = []
    for i in range(ws.shape[0]):
        gen = torch.Generator().manual_seed(seed + i)
        maps = []
        for k, (_, layer) in enumerate(noise_layers):
            shape = [draws, 1, layer.resolution, layer.resolution]
            x = torch.randn(shape, generator=gen) if k in idx else torch.zeros(shape)
            maps.append(x.to(device))
        code = ws[i : i + 1].to(device).expand(draws, -1, -1)
        out.append(G.synthesis(code, noise=maps).cpu())
    images = torch.stack(out)
    std = images.std(dim=1).mean(dim=1)
    return images, std


def sweep(ws: Tensor, direction: Tensor | Direction, alphas: Sequence[float], layers: LayerSpec = None) -> Tensor:
    """Every code edited at every alpha: ``[N, len(alphas), *ws.shape[1:]]`` (rows of an edit strip)."""
    if len(alphas) == 0:
        raise ValueError("sweep() needs at least one alpha")
    return torch.stack([edit(ws, direction, a, layers) for a in alphas], dim=1)


MAX_ALPHAS = 1000  # columns of one edit strip
MAX_ALPHA = 1000.0  # |alpha| of a parsed sweep: far beyond any useful edit, and it keeps edited codes savable


def parse_alphas(text: str, max_count: int = MAX_ALPHAS) -> list[float]:
    """``"-3:3:7"`` (start:stop:count, both ends included) or ``"-2,0,2"`` -> a list of finite floats.

    Every alpha must satisfy ``|alpha| <= 1000`` and there may be at most ``max_count`` of them.

    Raises:
        InvalidInput: a malformed text, NaN or Inf, an alpha beyond +-1000, or too many alphas.
    """
    from ..validate import InvalidInput

    text = str(text).strip()
    usage = f"alphas must be start:stop:count (e.g. -3:3:7) or a list (e.g. -2,0,2), got {text!r:.60}"
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise InvalidInput(usage)
            lo, hi, count = float(parts[0]), float(parts[1]), int(parts[2])
            values = [lo, hi]
        else:
            values = [float(x) for x in text.split(",")]
            count = len(values)
    except ValueError:
        raise InvalidInput(usage) from None
    for v in values:
        number(v, "alpha", low=-MAX_ALPHA, high=MAX_ALPHA)
    number(count, "the number of alphas", low=1, high=max_count, integer=True)
    if ":" not in text:
        return values
    if count == 1:
        return [lo]
    return [lo + (hi - lo) * k / (count - 1) for k in range(count)]
