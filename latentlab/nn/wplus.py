"""The W+ layer table: which code drives which layers, and the StyleGAN paper's coarse/middle/fine names.

W+ code ``i`` drives resolution ``2**(i//2 + 2)`` (two convolutions per resolution, the first code drives the
4x4 block's single convolution, each ToRGB reads the code after its block's convolutions). The StyleGAN
paper (Karras et al. 2019, Sec. 3.1, Fig. 3) groups them as coarse (4-8 px), middle (16-32 px) and fine
(64 px and up). The table is a property of the network, so everything that names layers (edits, mixing,
``latentlab info``) reads it from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .generator import Generator

GROUPS = ("coarse", "middle", "fine")
LayerSpec = str | int | slice | range | Sequence[int] | None


def layer_indices(layers: LayerSpec, num_ws: int) -> list[int]:
    """The W+ code indices a layer selection names, sorted and without repeats.

    Args:
        layers: None or ``"all"`` (every code); a group name ``"coarse"``, ``"middle"``, ``"fine"`` (or several
            joined by ``+``, e.g. ``"coarse+middle"``); a string of indices and inclusive ranges (``"0-3"``,
            ``"0,2,5-7"``); an int, a ``slice``/``range`` or a sequence of ints.
        num_ws: number of W+ codes of the generator (``2*log2(resolution) - 2``).
    Returns:
        Indices in ``[0, num_ws)``; never empty.
    Raises:
        ValueError: an unknown name, an index out of range, or a selection that names no layer.
    """
    if layers is None or (isinstance(layers, str) and layers.strip().lower() == "all"):
        return list(range(num_ws))
    if isinstance(layers, slice):
        out = list(range(num_ws))[layers]
    elif isinstance(layers, int):
        out = [layers]
    elif isinstance(layers, str):
        out = []
        for part in layers.replace(" ", "").lower().split("+"):
            if part in GROUPS:
                out += [i for i in range(num_ws) if layer_group(i) == part]
            elif re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", part):
                for item in part.split(","):
                    lo, _, hi = item.partition("-")
                    if hi and int(hi) < int(lo):
                        raise ValueError(f"layer range {item!r} runs backwards")
                    out += list(range(int(lo), int(hi or lo) + 1))
            else:
                raise ValueError(f"unknown layer selection {part!r}: use all, {', '.join(GROUPS)} (joined with +), "
                                 "or indices and ranges such as 0-3,6")  # fmt: skip
    else:
        out = [int(i) for i in layers]
    bad = [i for i in out if not 0 <= i < num_ws]
    if bad:
        raise ValueError(f"layer index {bad[0]} is out of range for a generator with {num_ws} W+ codes "
                         f"(0-{num_ws - 1})")
    if not out:
        raise ValueError(f"the layer selection {layers!r} names no layer of a generator with {num_ws} W+ codes")
    return sorted(set(out))



def layer_resolution(index: int) -> int:
    """The resolution in pixels that W+ code ``index`` drives: ``2**(index//2 + 2)``."""
    return 2 ** (index // 2 + 2)


def layer_group(index: int) -> str:
    """The StyleGAN paper's name for W+ code ``index``: coarse (4-8 px), middle (16-32 px), fine (64+ px)."""
    res = layer_resolution(index)
    return "coarse" if res <= 8 else "middle" if res <= 32 else "fine"


def layer_table(G: Generator) -> list[dict[str, Any]]:
    """One row per W+ code: index, resolution, the layers it drives, their channels and the group name."""
    rows: list[dict[str, Any]] = [
        {"index": i, "resolution": layer_resolution(i), "layers": [], "channels": None, "group": layer_group(i)}
        for i in range(G.num_ws)
    ]
    for i, (name, layer) in enumerate(G.synthesis.noise_layers()):  # conv layer i is driven by code i
        rows[i]["layers"].append(name)
        rows[i]["channels"] = layer.out_channels
    w_idx = 0
    for block in G.synthesis.blocks():  # a ToRGB reads the code after its block's convs
        w_idx += block.num_conv
        if block.num_torgb:
            row = rows[w_idx]
            row["layers"].append(f"b{block.resolution}.torgb")
            if row["channels"] is None:  # the last code drives only the last ToRGB
                row["channels"] = block.conv1.out_channels
    return rows
