"""The figures behind ``latentlab edit``, ``mix``, ``interpolate`` and ``noise``: uint8 RGB arrays ``[H, W, 3]``.

Rendering goes through :func:`latentlab.render.render_codes` (one image at a time, with a projection's
noise maps when given), so a code renders the same in every figure and in ``latentlab generate --latents``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..io.images import make_grid, to_uint8
from ..nn.generator import Generator
from ..render import render_codes
from .directions import Direction
from .ops import LayerSpec, interpolate, mix_grid, noise_variation, sweep

PAD = 2  # white pixels between cells


def grid(cells: np.ndarray, cols: int) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` in rows of ``cols`` on a white background with ``PAD`` between cells."""
    return 255 - make_grid(255 - cells, cols=cols, pad=PAD)  # make_grid pads with black: pad the negative


def _noise_rows(noise: Sequence[Tensor | None] | None, repeats: int) -> list[Tensor | None] | None:
    """Per-layer noise ``[N, 1, r, r]`` repeated for each of ``repeats`` renders of every code."""
    if noise is None:
        return None
    return [None if x is None else x.repeat_interleave(repeats, dim=0) for x in noise]


def edited_codes(
    G: Generator,
    direction: Direction | Tensor,
    alphas: Sequence[float],
    ws: Tensor,
    z: Tensor | None = None,
    layers: LayerSpec = None,
) -> Tensor:
    """Every code moved by every alpha: W+ codes ``[N, A, num_ws, w_dim]``.

    A Z direction moves ``z`` ``[N, z_dim]`` and maps the results (no truncation); any other moves ``ws``
    ``[N, num_ws, w_dim]`` on ``layers`` (see :func:`latentlab.edit.ops.edit`).
    """
    if isinstance(direction, Direction) and direction.space == "z":
        if z is None:
            raise ValueError(f"direction {direction.name!r} lives in Z, but these codes have no z (projected codes "
                             "are W/W+ only); use a W direction")  # fmt: skip
        if layers is not None:
            raise ValueError("layers= applies to W directions; a Z direction moves the whole code")
        zs = sweep(z, direction, alphas)
        with torch.no_grad():
            mapped = G.mapping(zs.flatten(0, 1).to(G.w_avg.device), None).cpu()
        return mapped.reshape(*zs.shape[:2], G.num_ws, G.w_dim)
    return sweep(ws, direction, alphas, layers)


def render_strip(
    G: Generator,
    codes: Tensor,
    noise: Sequence[Tensor | None] | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``codes [N, A, num_ws, w_dim]`` as one row per code and one column per step.

    Args:
        noise: per-layer maps of the N codes (a projection's), each ``[N, 1, r, r]``; None = constant noise.
    Returns:
        ``(strip uint8 [N*R, A*R (+pads), 3], images uint8 [N, A, R, R, 3])``.
    """
    n, a = codes.shape[:2]
    images = to_uint8(render_codes(G, codes.flatten(0, 1), _noise_rows(noise, a), progress=progress))
    return grid(images, cols=a), images.reshape(n, a, *images.shape[1:])


def mixing_figure(
    G: Generator,
    ws_cols: Tensor,
    ws_rows: Tensor,
    styles: Sequence[LayerSpec] = ("coarse", "middle", "fine"),
    progress: bool = False,
) -> np.ndarray:
    """The StyleGAN paper's Fig. 3: the column sources on top, and for each style group one block of rows,
    each starting with its row source, then the column sources with that row's codes on the group's layers.

    Args:
        ws_cols: source A ``[C, num_ws, w_dim]``.
        ws_rows: source B ``[R, num_ws, w_dim]``.
        styles: layer selections, one block of rows each.
    Returns:
        uint8 ``[(1 + len(styles)*R) * res (+pads), (1 + C) * res (+pads), 3]``; the top-left cell is white.
    """
    c, r = ws_cols.shape[0], ws_rows.shape[0]
    cells = [ws_cols]
    for s in styles:
        cells.append(mix_grid(ws_cols, ws_rows, s).flatten(0, 1))
    pix = to_uint8(render_codes(G, torch.cat([ws_rows, *cells]), progress=progress))
    rows_px, cols_px, rest = pix[:r], pix[r : r + c], pix[r + c :]
    blank = np.full_like(pix[0], 255)
    out = [blank, *cols_px]
    for k in range(len(styles)):
        for i in range(r):
            out += [rows_px[i], *rest[(k * r + i) * c : (k * r + i + 1) * c]]
    return grid(np.stack(out), cols=c + 1)


def interpolation_frames(
    G: Generator,
    a: Tensor,
    b: Tensor,
    steps: int,
    method: str = "lerp",
    space: str = "w",
    truncation_psi: float = 1.0,
    progress: bool = False,
) -> np.ndarray:
    """Frames from code ``a`` to ``b``: uint8 ``[steps, R, R, 3]``.

    Args:
        a, b: ``[num_ws, w_dim]`` W+ codes (``space="w"``), or ``[z_dim]`` latents (``space="z"``, mapped
            frame by frame, with ``truncation_psi``).
        method: ``"lerp"`` or ``"slerp"`` (see :func:`latentlab.edit.ops.interpolate`).
    """
    path = interpolate(a, b, steps, method)
    if space == "z":
        with torch.no_grad():
            path = G.mapping(path.to(G.w_avg.device), None, truncation_psi=truncation_psi).cpu()
    return to_uint8(render_codes(G, path, progress=progress))


def noise_figure(
    G: Generator,
    ws: Tensor,
    draws: int = 16,
    shown: int = 4,
    layer_sets: Sequence[LayerSpec] = (None,),
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, float]]:
    """The StyleGAN paper's stochastic-variation figure (Figs. 4-5), one row per code and layer set: ``shown``
    of the ``draws`` renders, then the per-pixel standard deviation over all draws as a heat map.

    The heat maps share one scale (the largest std in the figure), so rows compare.

    Returns:
        ``(figure uint8, {layer set: mean std in [-1, 1] units})``.
    """
    import cv2

    shown = min(shown, draws)
    rows, stds, means = [], [], {}
    for spec in layer_sets:
        images, std = noise_variation(G, ws, draws=draws, layers=spec, seed=seed)
        rows.append(to_uint8(images[:, :shown].flatten(0, 1)).reshape(ws.shape[0], shown, *images.shape[-2:], -1))
        stds.append(std)
        means[str(spec or "all")] = float(std.mean())
    top = max(float(s.max()) for s in stds) or 1.0
    cells = []
    for i in range(ws.shape[0]):
        for px, std in zip(rows, stds, strict=True):
            heat = (std[i] / top * 255).clamp(0, 255).to(torch.uint8).numpy()
            heat = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
            cells += [*px[i], heat]
    return grid(np.stack(cells), cols=shown + 1), means
