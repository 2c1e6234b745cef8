"""Writes TensorFlow-era network pickles for tests: a latentlab network laid out as NVIDIA's TF code stored it.

The layout is written from the facts of NVIDIA's StyleGAN2 TensorFlow code and stylegan2-ada-pytorch's
``legacy.py`` (variable names and shapes), independently of latentlab's reader: kernels ``[kh, kw, in, out]``,
up-sampling kernels turned 180 degrees, dense weights ``[in, out]``, modulation biases without the ``+ 1``,
noise inputs ``synthesis/noise{i}`` of shape ``[1, 1, r, r]``. Pickles name ``dnnlib.tflib.network.Network``
through a stand-in class registered under that module only while writing.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np


class Network:
    """Pickles as dnnlib.tflib.network.Network does: its __getstate__ dict."""

    def __init__(self, name: str, func: str, kwargs: dict, variables: list, components: dict | None = None,
                 version: int = 4):  # fmt: skip
        self.state = {"version": version, "name": name, "static_kwargs": kwargs, "components": components or {},
                      "build_module_src": "raise SystemExit('never run')\n", "build_func_name": func,
                      "variables": variables}  # fmt: skip

    def __getstate__(self) -> dict:
        return self.state

    def __setstate__(self, state: dict) -> None:  # copies in tests
        self.state = state


Network.__module__ = "dnnlib.tflib.network"


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _conv(w, flip: bool = False) -> np.ndarray:
    a = _np(w).transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
    return np.ascontiguousarray(a[::-1, ::-1] if flip else a)


def tf_generator(G, name: str = "G", extra_kwargs: dict | None = None, version: int = 4) -> Network:
    """A latentlab (StyleGAN2, skip) generator as a TF ``G_main`` Network with ``mapping`` and ``synthesis``."""
    c = G.config
    sd = {k: v for k, v in G.state_dict().items()}
    kwargs = {"latent_size": c.z_dim, "dlatent_size": c.w_dim, "label_size": c.c_dim, "resolution": c.resolution,
              "num_channels": c.img_channels, "mapping_layers": c.mapping_layers, "fmap_base": c.channel_base // 2,
              "fmap_max": c.channel_max, "mapping_lrmul": c.mapping_lr_multiplier, **(extra_kwargs or {})}  # fmt: skip
    mapping = [(f"Dense{i}/{p}", _np(sd[f"mapping.fc{i}.{p}"]).T if p == "weight" else _np(sd[f"mapping.fc{i}.{p}"]))
               for i in range(c.mapping_layers) for p in ("weight", "bias")]  # fmt: skip
    syn: list[tuple[str, Any]] = [("4x4/Const/const", _np(sd["synthesis.b4.const"])[None])]

    def layer(src: str, dst: str, noise: int | None, flip: bool = False) -> None:
        syn.append((f"{dst}/weight", _conv(sd[f"{src}.weight"], flip)))
        syn.append((f"{dst}/bias", _np(sd[f"{src}.bias"])))
        syn.append((f"{dst}/mod_weight", _np(sd[f"{src}.affine.weight"]).T))
        syn.append((f"{dst}/mod_bias", _np(sd[f"{src}.affine.bias"]) - 1))
        if noise is not None:
            syn.append((f"{dst}/noise_strength", _np(sd[f"{src}.noise_strength"])))
            syn.append((f"noise{noise}", _np(sd[f"{src}.noise_const"])[None, None]))

    layer("synthesis.b4.conv1", "4x4/Conv", 0)
    layer("synthesis.b4.torgb", "4x4/ToRGB", None)
    k = 3
    while 2**k <= c.resolution:
        r = 2**k
        layer(f"synthesis.b{r}.conv0", f"{r}x{r}/Conv0_up", 2 * k - 5, flip=True)
        layer(f"synthesis.b{r}.conv1", f"{r}x{r}/Conv1", 2 * k - 4)
        layer(f"synthesis.b{r}.torgb", f"{r}x{r}/ToRGB", None)
        k += 1
    comps = {"mapping": Network(f"{name}_mapping", "training.networks_stylegan2.G_mapping", kwargs, mapping,
                                version=version),
             "synthesis": Network(f"{name}_synthesis", "training.networks_stylegan2.G_synthesis_stylegan2", kwargs,
                                  syn, version=version)}  # fmt: skip
    return Network(name, "training.networks_stylegan2.G_main", kwargs, [("dlatent_avg", _np(sd["mapping.w_avg"]))],
                   comps, version=version)  # fmt: skip


def tf_discriminator(D, version: int = 4) -> Network:
    """A latentlab (resnet) discriminator as a TF ``D_stylegan2`` Network."""
    c = D.config
    sd = D.state_dict()
    kwargs = {"label_size": c.c_dim, "resolution": c.resolution, "num_channels": c.img_channels,
              "fmap_base": c.channel_base // 2, "fmap_max": c.channel_max}  # fmt: skip
    res = c.resolution
    v = [(f"{res}x{res}/FromRGB/weight", _conv(sd[f"b{res}.fromrgb.weight"])),
         (f"{res}x{res}/FromRGB/bias", _np(sd[f"b{res}.fromrgb.bias"]))]  # fmt: skip
    r = res
    while r > 4:
        v += [(f"{r}x{r}/Conv0/weight", _conv(sd[f"b{r}.conv0.weight"])),
              (f"{r}x{r}/Conv0/bias", _np(sd[f"b{r}.conv0.bias"])),
              (f"{r}x{r}/Conv1_down/weight", _conv(sd[f"b{r}.conv1.weight"])),
              (f"{r}x{r}/Conv1_down/bias", _np(sd[f"b{r}.conv1.bias"])),
              (f"{r}x{r}/Skip/weight", _conv(sd[f"b{r}.skip.weight"]))]  # fmt: skip
        r //= 2
    v += [("4x4/Conv/weight", _conv(sd["b4.conv.weight"])), ("4x4/Conv/bias", _np(sd["b4.conv.bias"])),
          ("4x4/Dense0/weight", _np(sd["b4.fc.weight"]).T), ("4x4/Dense0/bias", _np(sd["b4.fc.bias"])),
          ("Output/weight", _np(sd["b4.out.weight"]).T), ("Output/bias", _np(sd["b4.out.bias"]))]  # fmt: skip
    return Network("D", "training.networks_stylegan2.D_stylegan2", kwargs, v, version=version)


def write_tf_pickle(path: Path, data: Any, protocol: int = 4) -> Path:
    """Pickle ``data`` (e.g. ``(G, D, Gs)`` Networks) so that it names dnnlib.tflib.network.Network."""
    names = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")
    saved = {n: sys.modules.get(n) for n in names}
    try:
        for n in names:
            sys.modules[n] = types.ModuleType(n)
        sys.modules["dnnlib.tflib.network"].Network = Network
        Path(path).write_bytes(pickle.dumps(data, protocol=protocol))
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    return Path(path)


def tf_generator_v1(G, name: str = "G", extra_kwargs: dict | None = None) -> Network:
    """A latentlab StyleGAN v1 generator as the stylegan repository's ``G_style`` Network (version 3).

    The facts (NVlabs/stylegan ``networks_stylegan.py``): mapping ``Dense{i}`` adds its bias before the sqrt(2)
    gain (latentlab stores ``b / sqrt(2)``); every layer has ``Noise/weight`` [C], ``bias``, ``StyleMod/weight``
    [w_dim, 2C] and ``StyleMod/bias``; ``noise{i}`` are [1, 1, r, r]; ``ToRGB_lod{l}`` per level; ``lod``; from 128
    px the up-sampling convolution is a fused transposed convolution whose kernel is latentlab's turned 180°.
    """
    c = G.config
    sd = G.state_dict()
    kwargs = {"latent_size": c.z_dim, "dlatent_size": c.w_dim, "resolution": c.resolution,
              "num_channels": c.img_channels, "mapping_layers": c.mapping_layers,
              "mapping_fmaps": c.mapping_layer_features or c.w_dim, "fmap_base": c.channel_base // 2,
              "fmap_max": c.channel_max, **(extra_kwargs or {})}  # fmt: skip
    mapping = []
    for i in range(c.mapping_layers):
        mapping += [(f"Dense{i}/weight", _np(sd[f"mapping.fc{i}.weight"]).T),
                    (f"Dense{i}/bias", _np(sd[f"mapping.fc{i}.bias"]) * np.float32(np.sqrt(2)))]  # fmt: skip
    syn: list[tuple[str, Any]] = [("4x4/Const/const", _np(sd["synthesis.b4.conv0.const"])[None]),
                                  ("lod", _np(sd["synthesis.lod"]))]  # fmt: skip
    idx = 0

    def layer(src: str, dst: str, turn: bool = False) -> None:
        nonlocal idx
        if f"{src}.weight" in sd:
            syn.append((f"{dst}/weight", _conv(sd[f"{src}.weight"], flip=turn)))
        syn.append((f"{dst}/bias", _np(sd[f"{src}.bias"])))
        syn.append((f"{dst}/Noise/weight", _np(sd[f"{src}.noise_strength"])))
        syn.append((f"{dst}/StyleMod/weight", _np(sd[f"{src}.affine.weight"]).T))
        syn.append((f"{dst}/StyleMod/bias", _np(sd[f"{src}.affine.bias"])))
        syn.append((f"noise{idx}", _np(sd[f"{src}.noise_const"])[None, None]))
        idx += 1

    log2 = int(np.log2(c.resolution))
    layer("synthesis.b4.conv0", "4x4/Const")
    layer("synthesis.b4.conv1", "4x4/Conv")
    syn.append((f"ToRGB_lod{log2 - 2}/weight", _conv(sd["synthesis.b4.torgb.weight"])))
    syn.append((f"ToRGB_lod{log2 - 2}/bias", _np(sd["synthesis.b4.torgb.bias"])))
    for k in range(3, log2 + 1):
        r = 2**k
        layer(f"synthesis.b{r}.conv0", f"{r}x{r}/Conv0_up", turn=r >= 128)
        layer(f"synthesis.b{r}.conv1", f"{r}x{r}/Conv1")
        syn.append((f"ToRGB_lod{log2 - k}/weight", _conv(sd[f"synthesis.b{r}.torgb.weight"])))
        syn.append((f"ToRGB_lod{log2 - k}/bias", _np(sd[f"synthesis.b{r}.torgb.bias"])))
    comps = {"mapping": Network("G_mapping", "training.networks_stylegan.G_mapping", kwargs, mapping, version=3),
             "synthesis": Network("G_synthesis", "training.networks_stylegan.G_synthesis", kwargs, syn, version=3)}
    # G_style has its own lod (assigned to synthesis/lod before each run) and dlatent_avg, in that order
    own = [("lod", _np(sd["synthesis.lod"])), ("dlatent_avg", _np(sd["mapping.w_avg"]))]
    return Network(name, "training.networks_stylegan.G_style", kwargs, own, comps, version=3)


def tf_discriminator_v1(D) -> Network:
    """A latentlab StyleGAN v1 discriminator as the stylegan repository's ``D_basic`` Network (version 3):
    ``FromRGB_lod{l}``, ``{r}x{r}/Conv0``, ``{r}x{r}/Conv1_down``, ``4x4/Conv``, ``4x4/Dense0``, ``4x4/Dense1``,
    ``lod``."""
    c = D.config
    sd = D.state_dict()
    log2 = int(np.log2(c.resolution))
    kwargs = {"num_channels": c.img_channels, "resolution": c.resolution, "fmap_base": c.channel_base // 2,
              "fmap_max": c.channel_max, "mbstd_group_size": c.mbstd_group_size or 0}  # fmt: skip
    v: list[tuple[str, Any]] = [("lod", _np(sd["lod"]))]
    for k in range(log2, 1, -1):
        r = 2**k
        v += [(f"FromRGB_lod{log2 - k}/weight", _conv(sd[f"b{r}.fromrgb.weight"])),
              (f"FromRGB_lod{log2 - k}/bias", _np(sd[f"b{r}.fromrgb.bias"]))]  # fmt: skip
        if k > 2:
            for src, dst in (("conv0", "Conv0"), ("conv1", "Conv1_down")):
                v += [(f"{r}x{r}/{dst}/weight", _conv(sd[f"b{r}.{src}.weight"])),
                      (f"{r}x{r}/{dst}/bias", _np(sd[f"b{r}.{src}.bias"]))]  # fmt: skip
    v += [("4x4/Conv/weight", _conv(sd["b4.conv.weight"])), ("4x4/Conv/bias", _np(sd["b4.conv.bias"])),
          ("4x4/Dense0/weight", _np(sd["b4.fc.weight"]).T), ("4x4/Dense0/bias", _np(sd["b4.fc.bias"])),
          ("4x4/Dense1/weight", _np(sd["b4.out.weight"]).T), ("4x4/Dense1/bias", _np(sd["b4.out.bias"]))]  # fmt: skip
    return Network("D", "training.networks_stylegan.D_basic", kwargs, v, version=3)
