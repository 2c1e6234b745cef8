"""NVIDIA's TensorFlow-era network pickles (StyleGAN, StyleGAN2, StyleGAN2-ADA-TF), read without TensorFlow and
without running anything in them.

Such a file pickles a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` objects. Each pickles a dict:
``version`` (3 in the stylegan repository, 4 in stylegan2, 5 in stylegan2-ada's TensorFlow code), ``name``,
``static_kwargs`` (the build function's options), ``components`` (more Networks: G's ``mapping`` and
``synthesis``), ``build_module_src`` (the Python source of the networks: never run, only hashed),
``build_func_name`` and ``variables`` (a list of ``(name, NumPy array)``). The restricted unpickler of
:mod:`latentlab.io.nvidia` turns every ``Network`` into an inert :class:`TFNetwork` and rebuilds NumPy arrays;
every other global is refused with its name.

StyleGAN2 configs E and F (skip generator, residual discriminator: every released StyleGAN2 model) are
converted to NVIDIA's PyTorch names and constructor options with the rules of stylegan2-ada-pytorch's
``legacy.py`` (a ``[kh, kw, in, out]`` kernel becomes ``[out, in, kh, kw]``, up-sampling kernels are also
flipped in space, modulation biases gain ``+ 1``, noise inputs are matched to layers by index), then built
like any NVIDIA pickle. One difference: ``legacy.py`` gives the discriminator ``mbstd_group_size=None`` (the
whole minibatch) when the pickle does not name it, while the TensorFlow network used its default of 4; latentlab
keeps 4, what the network was trained with. StyleGAN (v1) pickles (``G_style``, ``D_basic``) convert to latentlab's
v1 networks (:mod:`latentlab.nn.stylegan1`). StyleGAN2 configs A-D are recognized and refused with their name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .nvidia import ForeignNetwork, UnsafePickleError, UnsupportedModelError


@dataclass
class TFNetwork:
    """What ``dnnlib.tflib.network.Network.__setstate__`` would have rebuilt, kept as inert data."""

    version: int = 0
    name: str = ""
    static_kwargs: dict[str, Any] = field(default_factory=dict)
    components: dict[str, TFNetwork] = field(default_factory=dict)
    build_func_name: str = ""
    source_sha256: str = ""
    variables: dict[str, np.ndarray] = field(default_factory=dict)

    def __setstate__(self, state: Any) -> None:
        """Record the pickled dict's fields after checking their types (nothing is called)."""
        if not isinstance(state, dict):
            raise UnsafePickleError("a TensorFlow Network whose state is not a dict")
        version, name = state.get("version"), state.get("name")
        kwargs, comps, variables = state.get("static_kwargs", {}), state.get("components", {}), state.get("variables")
        src, func = state.get("build_module_src", ""), state.get("build_func_name", "")
        if not isinstance(version, int) or not isinstance(name, str) or not isinstance(func, str):
            raise UnsupportedModelError("a TensorFlow Network without an integer version, a name and a build function")
        if not isinstance(kwargs, dict) or not isinstance(comps, dict) or not isinstance(variables, (list, tuple)):
            raise UnsupportedModelError(f"TensorFlow Network {name!r}: malformed static_kwargs, components or "
                                        f"variables")  # fmt: skip
        self.version, self.name, self.build_func_name = version, name, func
        self.static_kwargs = dict(kwargs)
        self.source_sha256 = hashlib.sha256(src.encode("utf-8") if isinstance(src, str) else b"").hexdigest()
        self.components = {}
        for key, comp in comps.items():
            if not isinstance(comp, TFNetwork):
                raise UnsupportedModelError(f"TensorFlow Network {name!r}: component {key!r} is not a Network")
            self.components[str(key)] = comp
        self.variables = {}
        for item in variables:
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
                raise UnsupportedModelError(f"TensorFlow Network {name!r}: a variable that is not (name, array)")
            value = item[1]
            if isinstance(value, np.generic):
                value = np.asarray(value)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
                raise UnsupportedModelError(f"TensorFlow Network {name!r}: variable {item[0]!r} is not a numeric "
                                            f"array")  # fmt: skip
            self.variables[item[0]] = value

    def params(self) -> dict[str, np.ndarray]:
        """Every variable of this network and its components, as ``component/.../name``."""
        out = dict(self.variables)
        for key, comp in self.components.items():
            out.update({f"{key}/{k}": v for k, v in comp.params().items()})
        return out


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """``copyreg._reconstructor`` for protocol-0/1 pickles: only an inert :class:`TFNetwork` is made."""
    if cls is not TFNetwork or base is not object or state is not None:
        raise UnsafePickleError("refused copyreg._reconstructor of anything but a TensorFlow Network record")
    return TFNetwork.__new__(TFNetwork)


def _latin1_bytes(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for byte strings (NumPy array data): latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused _codecs.encode of anything but a latin-1 string (a protocol-2 byte string)")
    return text.encode("latin1")


def allowed_globals() -> dict[tuple[str, str], Any]:
    """The extra globals a TensorFlow-era pickle may name (added to :mod:`latentlab.io.nvidia`'s list)."""
    return {("dnnlib.tflib.network", "Network"): TFNetwork, ("copyreg", "_reconstructor"): _reconstructor,
            ("builtins", "object"): object, ("_codecs", "encode"): _latin1_bytes}  # fmt: skip


def is_tf_pickle(data: Any) -> bool:
    """True for the top level of a TensorFlow-era network pickle: a tuple of Networks ``(G, D, Gs)``."""
    return isinstance(data, tuple) and len(data) >= 1 and all(isinstance(n, TFNetwork) for n in data)


# --- Recognizing what a pickle holds -----------------------------------------------------------------------

def _funcs(net: TFNetwork) -> set[str]:
    """The short build-function names of a network and its components."""
    return {f.rsplit(".", 1)[-1] for f in (net.build_func_name, *(c.build_func_name for c in net.components.values()))}


def is_v1(net: TFNetwork) -> bool:
    """A StyleGAN (v1) network: the stylegan repository's G_style / G_synthesis / D_basic."""
    return bool(_funcs(net) & {"G_style", "G_synthesis", "D_basic"})


def _kind(net: TFNetwork, role: str, where: str) -> None:
    """Refuse, by name, the architectures latentlab does not convert (StyleGAN v1, StyleGAN2 configs A-D)."""
    short = _funcs(net)
    if net.version < 4 or short & {"G_style", "G_synthesis", "D_basic"}:
        raise UnsupportedModelError(
            f"{where}: a StyleGAN (v1) {role} (TensorFlow pickle version {net.version}, {', '.join(sorted(short))}); "
            "beside StyleGAN2 networks in one pickle; latentlab converts a (G, D, Gs) of one family"
        )
    if short & {"G_synthesis_stylegan_revised", "D_stylegan"}:
        raise UnsupportedModelError(f"{where}: a StyleGAN2 config A {role} (the revised StyleGAN baseline); "
                                    f"latentlab converts configs E and F")  # fmt: skip
    arch = net.static_kwargs.get("architecture", "skip" if role == "generator" else "resnet")
    if arch == "orig":
        raise UnsupportedModelError(f"{where}: a StyleGAN2 config B, C or D {role} (architecture 'orig'); "
                                    f"latentlab converts configs E and F (architecture 'skip' / 'resnet')")  # fmt: skip
    want = "skip" if role == "generator" else "resnet"
    if arch != want:
        raise UnsupportedModelError(f"{where}: a StyleGAN2 {role} with architecture {arch!r}; latentlab converts "
                                    f"configs E and F ({role} architecture {want!r})")  # fmt: skip


class _Kwargs:
    """The static kwargs, with every key read recorded so that unknown ones can be named."""

    def __init__(self, kwargs: dict[str, Any], where: str):
        self.kwargs, self.where, self.known = kwargs, where, set()

    def __call__(self, name: str, default: Any = None, none: Any = None) -> Any:
        self.known.add(name)
        value = self.kwargs.get(name, default)
        if isinstance(value, np.generic):
            value = value.item()
        return none if value is None else value

    def require(self, fixed: dict[str, Any]) -> None:
        """Refuse, by name, any of ``fixed``'s options the pickle sets to another value than latentlab implements."""
        for name, want in fixed.items():
            got = self(name, want)
            if (list(got) if isinstance(got, (list, tuple)) else got) != want:
                raise UnsupportedModelError(f"{self.where}: TensorFlow option {name}={got!r} is not supported "
                                            f"(latentlab's StyleGAN v1 implements {name}={want!r})")  # fmt: skip

    def check(self) -> None:
        unknown = sorted(set(self.kwargs) - self.known)
        if unknown:
            raise UnsupportedModelError(f"{self.where}: TensorFlow option {unknown[0]}="
                                        f"{self.kwargs[unknown[0]]!r:.60} is not supported by latentlab")  # fmt: skip


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C"))  # (ascontiguousarray would make 0-d 1-d)


def _conv(a: np.ndarray, flip: bool = False) -> torch.Tensor:
    """TensorFlow ``[kh, kw, in, out]`` -> ``[out, in, kh, kw]``; ``flip`` also turns it 180 degrees (the
    transposed up-sampling convolutions)."""
    if a.ndim != 4:
        raise UnsupportedModelError(f"a convolution kernel of shape {list(a.shape)}, expected [kh, kw, in, out]")
    if flip:
        a = a[::-1, ::-1]
    return _t(a.transpose(3, 2, 0, 1))


def _dense(a: np.ndarray) -> torch.Tensor:
    if a.ndim != 2:
        raise UnsupportedModelError(f"a dense weight of shape {list(a.shape)}, expected [in, out]")
    return _t(a.T)


class _Params:
    def __init__(self, params: dict[str, np.ndarray], where: str, family: str = "StyleGAN2"):
        self.params, self.where, self.family, self.used = params, where, family, set()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.params:
            raise UnsupportedModelError(f"{self.where}: the pickle has no variable {name!r}")
        self.used.add(name)
        return self.params[name]

    def __contains__(self, name: str) -> bool:
        return name in self.params

    def check(self) -> None:
        left = sorted(set(self.params) - self.used)
        if left:
            raise UnsupportedModelError(f"{self.where}: variable {left[0]!r} has no place in a {self.family} network "
                                        f"({len(left)} unused)")  # fmt: skip


def _record(net: TFNetwork, class_name: str, kwargs: dict[str, Any],
            tensors: dict[str, torch.Tensor]) -> ForeignNetwork:  # fmt: skip
    """The converted network, with the pickle's source hash and its TensorFlow options as they were."""
    return ForeignNetwork(class_name, kwargs, tensors, source_sha256=net.source_sha256, tf_options=net.static_kwargs)


def convert_generator(net: TFNetwork, where: str = "G") -> ForeignNetwork:
    """A TensorFlow StyleGAN2 (config E/F) ``G`` or ``Gs`` as NVIDIA's PyTorch ``Generator`` record."""
    _kind(net, "generator", where)
    kw = _Kwargs(net.static_kwargs, where)
    res = int(kw("resolution", 1024))
    kwargs = {
        "z_dim": kw("latent_size", 512), "c_dim": kw("label_size", 0), "w_dim": kw("dlatent_size", 512),
        "img_resolution": res, "img_channels": kw("num_channels", 3),
        "mapping_kwargs": {"num_layers": kw("mapping_layers", 8), "embed_features": kw("label_fmaps"),
                           "layer_features": kw("mapping_fmaps"), "activation": kw("mapping_nonlinearity", "lrelu"),
                           "lr_multiplier": kw("mapping_lrmul", 0.01),
                           "w_avg_beta": kw("w_avg_beta", kw("dlatent_avg_beta", 0.995), none=1)},
        "synthesis_kwargs": {"channel_base": kw("fmap_base", 16384) * 2, "channel_max": kw("fmap_max", 512),
                             "num_fp16_res": kw("num_fp16_res", 0), "conv_clamp": kw("conv_clamp"),
                             "architecture": kw("architecture", "skip"),
                             "resample_filter": list(kw("resample_kernel", [1, 3, 3, 1])),
                             "use_noise": kw("use_noise", True), "activation": kw("nonlinearity", "lrelu")},
    }  # fmt: skip
    for name in ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "is_template_graph",
                 "randomize_noise", "dlatent_avg_beta"):  # fmt: skip
        kw(name)  # run-time and training options: not part of the network
    for name, want in (("mapping_func", "G_mapping"), ("synthesis_func", "G_synthesis_stylegan2")):
        got = kw(name, want)
        if str(got).rsplit(".", 1)[-1] != want:
            raise UnsupportedModelError(f"{where}: {name}={got!r}; latentlab converts StyleGAN2's {want}")
    kw.check()
    p = _Params(net.params(), where)
    out: dict[str, torch.Tensor] = {"mapping.w_avg": _t(p["dlatent_avg"])}
    for i in range(int(kwargs["mapping_kwargs"]["num_layers"])):
        out[f"mapping.fc{i}.weight"] = _dense(p[f"mapping/Dense{i}/weight"])
        out[f"mapping.fc{i}.bias"] = _t(p[f"mapping/Dense{i}/bias"])
    if kwargs["c_dim"]:
        out["mapping.embed.weight"] = _dense(p["mapping/LabelEmbed/weight"])
        out["mapping.embed.bias"] = _t(p["mapping/LabelEmbed/bias"])
    s = "synthesis"

    def layer(dst: str, src: str, noise: int | None, flip: bool = False) -> None:
        out[f"{dst}.weight"] = _conv(p[f"{src}/weight"], flip)
        out[f"{dst}.bias"] = _t(p[f"{src}/bias"])
        out[f"{dst}.affine.weight"] = _dense(p[f"{src}/mod_weight"])
        out[f"{dst}.affine.bias"] = _t(p[f"{src}/mod_bias"]) + 1  # TensorFlow adds the 1 in the graph
        if noise is not None:
            out[f"{dst}.noise_const"] = _t(p[f"{s}/noise{noise}"][0, 0])
            out[f"{dst}.noise_strength"] = _t(p[f"{src}/noise_strength"])

    out["synthesis.b4.const"] = _t(p[f"{s}/4x4/Const/const"][0])
    layer("synthesis.b4.conv1", f"{s}/4x4/Conv", 0)
    layer("synthesis.b4.torgb", f"{s}/4x4/ToRGB", None)
    log2 = int(np.log2(res))
    if 2**log2 != res or res < 4:
        raise UnsupportedModelError(f"{where}: resolution {res} is not a power of two >= 4")
    for k in range(3, log2 + 1):
        r = 2**k
        layer(f"synthesis.b{r}.conv0", f"{s}/{r}x{r}/Conv0_up", 2 * k - 5, flip=True)
        layer(f"synthesis.b{r}.conv1", f"{s}/{r}x{r}/Conv1", 2 * k - 4)
        layer(f"synthesis.b{r}.torgb", f"{s}/{r}x{r}/ToRGB", None)
    for name in [n for n in p.params if re.fullmatch(rf"{s}/noise\d+", n)]:
        p[name]  # every noise input is used above; one more is a layout this reader does not know  # noqa: B018
    p.check()
    return _record(net, "Generator", kwargs, out)


def convert_discriminator(net: TFNetwork, where: str = "D") -> ForeignNetwork:
    """A TensorFlow StyleGAN2 (config E/F) ``D`` as NVIDIA's PyTorch ``Discriminator`` record."""
    _kind(net, "discriminator", where)
    kw = _Kwargs(net.static_kwargs, where)
    res = int(kw("resolution", 1024))
    kwargs = {
        "c_dim": kw("label_size", 0), "img_resolution": res, "img_channels": kw("num_channels", 3),
        "architecture": kw("architecture", "resnet"), "channel_base": kw("fmap_base", 16384) * 2,
        "channel_max": kw("fmap_max", 512), "num_fp16_res": kw("num_fp16_res", 0), "conv_clamp": kw("conv_clamp"),
        "cmap_dim": kw("mapping_fmaps"),
        "block_kwargs": {"activation": kw("nonlinearity", "lrelu"),
                         "resample_filter": list(kw("resample_kernel", [1, 3, 3, 1])),
                         "freeze_layers": kw("freeze_layers", 0)},
        "mapping_kwargs": {"num_layers": kw("mapping_layers", 0)} if kw("label_size", 0) else {},
        "epilogue_kwargs": {"mbstd_group_size": kw("mbstd_group_size", 4),
                            "mbstd_num_channels": kw("mbstd_num_features", 1)},
    }  # fmt: skip
    if kwargs["epilogue_kwargs"]["mbstd_group_size"] <= 1:  # TensorFlow's "0 = disable"
        kwargs["epilogue_kwargs"] = {"mbstd_group_size": None, "mbstd_num_channels": 0}
    kw("mapping_lrmul")
    kw("mapping_layers")
    kw("structure")
    kw("is_template_graph")
    kw.check()
    p = _Params(net.params(), where)
    out: dict[str, torch.Tensor] = {}
    log2 = int(np.log2(res))
    if 2**log2 != res or res < 4:
        raise UnsupportedModelError(f"{where}: resolution {res} is not a power of two >= 4")
    out[f"b{res}.fromrgb.weight"] = _conv(p[f"{res}x{res}/FromRGB/weight"])
    out[f"b{res}.fromrgb.bias"] = _t(p[f"{res}x{res}/FromRGB/bias"])
    for k in range(log2, 2, -1):
        r = 2**k
        out[f"b{r}.conv0.weight"] = _conv(p[f"{r}x{r}/Conv0/weight"])
        out[f"b{r}.conv0.bias"] = _t(p[f"{r}x{r}/Conv0/bias"])
        out[f"b{r}.conv1.weight"] = _conv(p[f"{r}x{r}/Conv1_down/weight"])
        out[f"b{r}.conv1.bias"] = _t(p[f"{r}x{r}/Conv1_down/bias"])
        out[f"b{r}.skip.weight"] = _conv(p[f"{r}x{r}/Skip/weight"])
    if kwargs["c_dim"]:
        out["mapping.embed.weight"] = _dense(p["LabelEmbed/weight"])
        out["mapping.embed.bias"] = _t(p["LabelEmbed/bias"])
        for i in range(int(kwargs["mapping_kwargs"]["num_layers"])):
            out[f"mapping.fc{i}.weight"] = _dense(p[f"Mapping{i}/weight"])
            out[f"mapping.fc{i}.bias"] = _t(p[f"Mapping{i}/bias"])
    out["b4.conv.weight"] = _conv(p["4x4/Conv/weight"])
    out["b4.conv.bias"] = _t(p["4x4/Conv/bias"])
    out["b4.fc.weight"] = _dense(p["4x4/Dense0/weight"])
    out["b4.fc.bias"] = _t(p["4x4/Dense0/bias"])
    out["b4.out.weight"] = _dense(p["Output/weight"])
    out["b4.out.bias"] = _t(p["Output/bias"])
    p.check()
    return _record(net, "Discriminator", kwargs, out)


V1_CLASS = "GeneratorV1"  # a ForeignNetwork whose kwargs are a latentlab GeneratorConfig dict already


def convert_generator_v1(net: TFNetwork, where: str = "G") -> ForeignNetwork:
    """A TensorFlow StyleGAN (v1) ``G`` or ``Gs`` (``G_style``) as a latentlab v1 generator record."""
    if "G_style" not in _funcs(net) or set(net.components) != {"mapping", "synthesis"}:
        raise UnsupportedModelError(f"{where}: a StyleGAN v1 network that is not G_style with mapping and synthesis")
    kw = _Kwargs(net.static_kwargs, where)
    res = int(kw("resolution", 1024))
    log2 = int(np.log2(res))
    if 2**log2 != res or res < 4:
        raise UnsupportedModelError(f"{where}: resolution {res} is not a power of two >= 4")
    if kw("label_size", 0):
        raise UnsupportedModelError(f"{where}: a conditional StyleGAN v1 (LabelConcat) is not supported")
    fixed = {"use_styles": True, "const_input_layer": True, "nonlinearity": "lrelu", "use_wscale": True,
             "use_pixel_norm": False, "use_instance_norm": True, "blur_filter": [1, 2, 1], "fmap_decay": 1.0,
             "normalize_latents": True, "mapping_nonlinearity": "lrelu", "fused_scale": "auto"}  # fmt: skip
    kw.require(fixed)
    for name in ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                 "dlatent_avg_beta", "style_mixing_prob", "structure", "is_template_graph", "randomize_noise",
                 "dlatent_broadcast", "dtype", "force_clean_graph"):  # fmt: skip
        kw(name)  # run-time and training options
    w_dim = kw("dlatent_size", 512)
    config = {"arch": "stylegan1", "resolution": res, "z_dim": kw("latent_size", 512), "w_dim": w_dim,
              "img_channels": kw("num_channels", 3), "mapping_layers": kw("mapping_layers", 8),
              "mapping_layer_features": kw("mapping_fmaps", 512), "mapping_lr_multiplier": kw("mapping_lrmul", 0.01),
              "w_avg_beta": kw("dlatent_avg_beta", 0.995), "channel_base": int(kw("fmap_base", 8192)) * 2,
              "channel_max": kw("fmap_max", 512), "use_noise": bool(kw("use_noise", True))}  # fmt: skip
    if config["mapping_layer_features"] == w_dim:
        config["mapping_layer_features"] = None
    kw.check()
    p = _Params(net.params(), where, "StyleGAN v1")
    out: dict[str, torch.Tensor] = {"mapping.w_avg": _t(p["dlatent_avg"])}
    for i in range(int(config["mapping_layers"])):
        out[f"mapping.fc{i}.weight"] = _dense(p[f"mapping/Dense{i}/weight"])
        out[f"mapping.fc{i}.bias"] = _t(p[f"mapping/Dense{i}/bias"]) / np.sqrt(2)  # v1 adds it before the gain
    s = "synthesis"

    def layer(dst: str, src: str, index: int, turn: bool = False) -> None:
        if f"{src}/weight" in p:
            out[f"{dst}.weight"] = _conv(p[f"{src}/weight"], flip=turn)
        out[f"{dst}.bias"] = _t(p[f"{src}/bias"])
        out[f"{dst}.affine.weight"] = _dense(p[f"{src}/StyleMod/weight"])
        out[f"{dst}.affine.bias"] = _t(p[f"{src}/StyleMod/bias"])
        if config["use_noise"]:
            out[f"{dst}.noise_strength"] = _t(p[f"{src}/Noise/weight"])
            out[f"{dst}.noise_const"] = _t(p[f"{s}/noise{index}"][0, 0])

    out["synthesis.b4.conv0.const"] = _t(p[f"{s}/4x4/Const/const"][0])
    layer("synthesis.b4.conv0", f"{s}/4x4/Const", 0)
    layer("synthesis.b4.conv1", f"{s}/4x4/Conv", 1)
    for k in range(2, log2 + 1):
        r = 2**k
        if k > 2:
            # NVIDIA fuses the up-sampling into a transposed convolution from 128 px: its kernel is turned.
            layer(f"synthesis.b{r}.conv0", f"{s}/{r}x{r}/Conv0_up", 2 * k - 4, turn=r >= 128)
            layer(f"synthesis.b{r}.conv1", f"{s}/{r}x{r}/Conv1", 2 * k - 3)
        out[f"synthesis.b{r}.torgb.weight"] = _conv(p[f"{s}/ToRGB_lod{log2 - k}/weight"])
        out[f"synthesis.b{r}.torgb.bias"] = _t(p[f"{s}/ToRGB_lod{log2 - k}/bias"])
    # G_style's own lod is what it assigns to synthesis/lod before every run (the level NVIDIA's G renders at)
    out["synthesis.lod"] = _t(p["lod"] if "lod" in p else p[f"{s}/lod"])
    if "lod" in p and f"{s}/lod" in p:
        p[f"{s}/lod"]  # noqa: B018 - overwritten at run time; read so that it counts as known
    p.check()
    return _record(net, V1_CLASS, config, out)


V1_D_CLASS = "DiscriminatorV1"


def convert_discriminator_v1(net: TFNetwork, where: str = "D") -> ForeignNetwork:
    """A TensorFlow StyleGAN (v1) ``D_basic`` as a latentlab v1 discriminator record. NVIDIA's fused
    down-sampling convolution (from 128 px) equals the convolution then the 2x2 average pool, so no kernel turns."""
    if "D_basic" not in _funcs(net):
        raise UnsupportedModelError(f"{where}: a StyleGAN v1 discriminator that is not D_basic")
    kw = _Kwargs(net.static_kwargs, where)
    res = int(kw("resolution", 32))
    log2 = int(np.log2(res))
    if 2**log2 != res or res < 8:
        raise UnsupportedModelError(f"{where}: resolution {res} is not a power of two >= 8")
    if kw("label_size", 0):
        raise UnsupportedModelError(f"{where}: a conditional StyleGAN v1 discriminator is not supported")
    fixed = {"nonlinearity": "lrelu", "use_wscale": True, "blur_filter": [1, 2, 1], "fmap_decay": 1.0,
             "fused_scale": "auto"}  # fmt: skip
    kw.require(fixed)
    for name in ("structure", "is_template_graph", "dtype"):
        kw(name)
    group = kw("mbstd_group_size", 4)
    config = {"arch": "stylegan1", "resolution": res, "img_channels": kw("num_channels", 1),
              "channel_base": int(kw("fmap_base", 8192)) * 2, "channel_max": kw("fmap_max", 512),
              "mbstd_group_size": group if group > 1 else None,
              "mbstd_num_channels": kw("mbstd_num_features", 1) if group > 1 else 0}  # fmt: skip
    kw.check()
    p = _Params(net.params(), where, "StyleGAN v1")
    out: dict[str, torch.Tensor] = {"lod": _t(p["lod"])}
    for k in range(log2, 1, -1):
        r = 2**k
        out[f"b{r}.fromrgb.weight"] = _conv(p[f"FromRGB_lod{log2 - k}/weight"])
        out[f"b{r}.fromrgb.bias"] = _t(p[f"FromRGB_lod{log2 - k}/bias"])
        if k > 2:
            for dst, src in (("conv0", "Conv0"), ("conv1", "Conv1_down")):
                out[f"b{r}.{dst}.weight"] = _conv(p[f"{r}x{r}/{src}/weight"])
                out[f"b{r}.{dst}.bias"] = _t(p[f"{r}x{r}/{src}/bias"])
    out["b4.conv.weight"] = _conv(p["4x4/Conv/weight"])
    out["b4.conv.bias"] = _t(p["4x4/Conv/bias"])
    for dst, src in (("fc", "Dense0"), ("out", "Dense1")):
        out[f"b4.{dst}.weight"] = _dense(p[f"4x4/{src}/weight"])
        out[f"b4.{dst}.bias"] = _t(p[f"4x4/{src}/bias"])
    p.check()
    return _record(net, V1_D_CLASS, config, out)


def tf_networks(data: tuple, where: str) -> tuple[dict[str, ForeignNetwork], list[str]]:
    """``({"G": ..., "D": ..., "G_ema": ...}, skipped)`` from a TensorFlow pickle's ``(G, D, Gs)``."""
    if len(data) != 3:
        raise UnsupportedModelError(f"{where}: a tuple of {len(data)} TensorFlow Networks, expected (G, D, Gs)")
    G, D, Gs = data
    if is_v1(G) and is_v1(Gs):
        return {"G": convert_generator_v1(G, f"{where}: G"), "D": convert_discriminator_v1(D, f"{where}: D"),
                "G_ema": convert_generator_v1(Gs, f"{where}: Gs")}, []  # fmt: skip
    return {"G": convert_generator(G, f"{where}: G"), "D": convert_discriminator(D, f"{where}: D"),
            "G_ema": convert_generator(Gs, f"{where}: Gs")}, []  # fmt: skip
