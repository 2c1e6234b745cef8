"""NVIDIA's network pickles, read without running them.

stylegan2-ada-pytorch (and the StyleGAN2 networks of the stylegan3 repository) pickle each network as a
call to ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` carries the *source
code* of the network's module, the class name and the object's ``__dict__``. NVIDIA's loader executes that
source. This reader never does: a restricted unpickler resolves only the handful of globals such a file
legitimately names (tensor and storage rebuilders, ``OrderedDict``, NumPy scalars, ``EasyDict`` and the
persistence hook, which here only records ``class_name`` and ``state``) and refuses every other global
before anything is called. Storages embedded in the pickle are read with ``torch.load(weights_only=True)``.

What comes out is, per network, its class name, constructor keyword arguments and tensors; the tensors
carry the same names as latentlab's parameters, so conversion is a config translation plus a strict load.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..nn.config import DiscriminatorConfig, GeneratorConfig
from ..nn.layers import setup_filter
from .checkpoint import CheckpointError

PICKLE_NETWORKS = ("G_ema", "G", "D")


class UnsafePickleError(CheckpointError):
    """A pickle that names a global latentlab will not resolve; nothing in it was executed."""


class UnsupportedModelError(CheckpointError):
    """A well-formed foreign file describing a network latentlab does not implement."""


@dataclass
class PersistentRecord:
    """What NVIDIA's ``_reconstruct_persistent_obj`` would have rebuilt, kept as inert data."""

    class_name: str
    state: dict[str, Any]
    source_sha256: str  # hash of the embedded module source (identifies the code version; never run)


class EasyDict(dict):
    """Stand-in for ``dnnlib.EasyDict`` (a dict with attribute access); here just a dict."""


def _reconstruct_persistent(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("persistent object with unexpected metadata (expected type='class')")
    name, state, src = meta.get("class_name"), meta.get("state"), meta.get("module_src", "")
    if not isinstance(name, str) or not isinstance(state, dict):
        raise UnsafePickleError("persistent object without a class name or state dict")
    digest = hashlib.sha256(src.encode("utf-8") if isinstance(src, str) else b"").hexdigest()
    return PersistentRecord(name, dict(state), digest)


def _load_storage(data: bytes) -> Any:
    # Storages pickle themselves as a nested torch.save() blob; torch's weights-only loader reads it.
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("embedded storage is not a byte string")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UnsafePickleError("an embedded storage names objects torch's weights-only loader refuses") from None


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("refusing a NumPy scalar of object dtype (only plain numbers are read)")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError("refusing a NumPy array subclass")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    """``numpy._core.numeric._frombuffer``, what NumPy >= 1.16 pickles arrays with at protocol 5 (the bytes in
    band): only plain numeric data is rebuilt, as a writable copy."""
    if not isinstance(buf, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("refusing a NumPy array from a buffer that is not plain bytes of a numeric dtype")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape) or order not in ("C", "F"):
        raise UnsafePickleError("refusing a NumPy array from a buffer with a malformed shape or order")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy(order="K")


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any] | type]:
    import torch._utils as tu

    allowed: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
        ("torch.storage", "_load_from_bytes"): _load_storage,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("dnnlib", "EasyDict"): EasyDict,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state"):  # fmt: skip
        if hasattr(tu, name):
            allowed[("torch._utils", name)] = getattr(tu, name)
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # NumPy 1.x and 2.x spellings
        allowed[(mod, "scalar")] = _numpy_scalar
        allowed[(mod, "_reconstruct")] = _numpy_reconstruct
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = _numpy_frombuffer
    from .tfpickle import allowed_globals  # TensorFlow-era pickles: Network records (imports this module)

    allowed.update(allowed_globals())
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :func:`_allowed_globals`; every other global is refused before it can be called."""

    def __init__(self, file, allowed):
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is not None:
            return found
        raise UnsafePickleError(
            f"refused to load global {module}.{name}: latentlab reads network pickles without executing "
            "them and only rebuilds tensors, dicts and network records (nothing was run)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id: not a plain network pickle")


@dataclass
class ForeignNetwork:
    """One network read from a foreign file: what it was, how it was built, and its tensors."""

    class_name: str  # e.g. "Generator"
    kwargs: dict[str, Any]  # constructor keyword arguments (positional ones named)
    tensors: dict[str, torch.Tensor]  # parameters and persistent buffers under their original names
    submodules: dict[str, str] = field(default_factory=dict)  # dotted name -> class name
    source_sha256: str = ""
    tf_options: dict[str, Any] | None = None  # a TensorFlow-era network's static_kwargs, as the pickle has them


def read_pickle_data(path: str | os.PathLike) -> Any:
    """Unpickle ``path`` with the restricted unpickler.

    Raises:
        UnsafePickleError: the file names a global outside the allow-list (nothing is executed).
        UnsupportedModelError: a pickle of something other than networks.
        CheckpointError: truncated or corrupt file.
    """
    path = Path(path)
    allowed = _allowed_globals()
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, allowed).load()
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RuntimeError, MemoryError, OverflowError, UnicodeDecodeError) as e:  # fmt: skip
        text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: truncated or corrupt pickle ({text})") from None


_G_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_D_ARGS = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
           "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs")  # fmt: skip


def _network(record: Any, where: str) -> ForeignNetwork:
    if not isinstance(record, PersistentRecord):
        raise UnsupportedModelError(f"{where} is a {type(record).__name__}, not an NVIDIA network record")
    state = record.state
    kwargs = dict(state.get("_init_kwargs") or {})
    args = tuple(state.get("_init_args") or ())
    names = _G_ARGS if record.class_name == "Generator" else _D_ARGS
    if len(args) > len(names):
        raise UnsupportedModelError(f"{where}: {len(args)} positional constructor arguments, expected <= {len(names)}")
    for n, a in zip(names, args, strict=False):
        kwargs.setdefault(n, a)
    tensors: dict[str, torch.Tensor] = {}
    submodules: dict[str, str] = {}
    _collect(record, "", tensors, submodules, where)
    return ForeignNetwork(record.class_name, kwargs, tensors, submodules, record.source_sha256)


def _collect(record: PersistentRecord, prefix: str, tensors: dict, submodules: dict, where: str) -> None:
    state = record.state
    non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(t, torch.Tensor):
                raise UnsupportedModelError(f"{where}: {prefix}{name} is a {type(t).__name__}, not a tensor")
            tensors[prefix + name] = t.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise UnsupportedModelError(f"{where}: submodule {prefix}{name} is not an NVIDIA network record")
        submodules[prefix + name] = child.class_name
        _collect(child, f"{prefix}{name}.", tensors, submodules, where)


def read_nvidia_pickle(path: str | os.PathLike) -> tuple[dict[str, ForeignNetwork], dict[str, Any]]:
    """The networks (``G_ema``, ``G``, ``D`` as present) and the other top-level entries of an NVIDIA pickle.

    Returns:
        ``(networks, extras)``; ``extras`` holds e.g. ``training_set_kwargs`` (a dict) and the names of
        entries that were skipped (``augment_pipe``).
    """
    path = Path(path)
    data = read_pickle_data(path)
    from .tfpickle import TFNetwork, is_tf_pickle, tf_networks

    if isinstance(data, TFNetwork):
        raise UnsupportedModelError(f"{path}: a single TensorFlow Network; NVIDIA's TensorFlow-era pickles hold the "
                                    f"tuple (G, D, Gs)")  # fmt: skip
    if is_tf_pickle(data):  # (G, D, Gs) of the TensorFlow code: converted by legacy.py's rules
        nets, skipped = tf_networks(data, str(path))
        extras: dict[str, Any] = {"format": "nvidia-tf-pkl", "tf_version": data[0].version}
        if skipped:
            extras["skipped"] = skipped
        return nets, extras
    if not isinstance(data, dict):
        raise UnsupportedModelError(f"{path}: top level is a {type(data).__name__}, expected NVIDIA's dict of networks")
    nets = {k: _network(data[k], f"{path}: {k}") for k in PICKLE_NETWORKS if data.get(k) is not None}
    if not nets:
        raise UnsupportedModelError(f"{path}: no G, G_ema or D entry (keys: {', '.join(map(str, data)) or 'none'})")
    extras: dict[str, Any] = {}
    if isinstance(data.get("training_set_kwargs"), dict):
        extras["training_set_kwargs"] = jsonable(data["training_set_kwargs"])
    skipped = sorted(str(k) for k in data if k not in PICKLE_NETWORKS and k != "training_set_kwargs")
    if skipped:
        extras["skipped"] = skipped
    return nets, extras


def jsonable(x: Any) -> Any:
    """``x`` with NumPy scalars made Python numbers and anything else unknown made its ``repr``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


# --- Constructor options -> latentlab configs ------------------------------------------------------------
# Each NVIDIA option either maps to a config field, is ignored with a note (it changes speed or training
# only), or must hold the one value latentlab implements.

_IGNORED = {
    "num_fp16_res": "the discriminator runs in float32 (or bf16); the generator's is read",
    "fp16_channels_last": "memory layout only",
    "channels_last": "memory layout only",
    "fused_modconv_default": "fused and grouped modulated convs give the same result",
    "freeze_layers": "training-only option",
}
_FIXED = {"activation": "lrelu", "kernel_size": 3}


def _taps(value: Any) -> Any:
    """A pickled ``resample_filter`` as a tuple, integral taps as ints; anything odd is left for the config's
    checks to name."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return value
    taps = [v.item() if isinstance(v, np.generic) else v for v in value]
    return tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in taps)


def _take(opts: dict, mapping: dict[str, str], out: dict, notes: list, what: str, where: str) -> None:
    for key, value in opts.items():
        if isinstance(value, np.generic):
            value = value.item()
        if key in mapping:
            out[mapping[key]] = _taps(value) if key == "resample_filter" else value
        elif key in _IGNORED:
            if value not in (None, 0, False):
                notes.append(f"{what}.{key}={value!r}: ignored; {_IGNORED[key]}")
        elif key in _FIXED:
            if value != _FIXED[key]:
                raise UnsupportedModelError(
                    f"{where}: {what}.{key}={value!r} is not supported (latentlab implements {key}={_FIXED[key]!r})"
                )
        else:
            raise UnsupportedModelError(f"{where}: {what} option {key}={value!r} is not supported by latentlab")


def generator_config(net: ForeignNetwork, where: str = "G") -> tuple[GeneratorConfig, list[str]]:
    """Translate a stylegan2-ada-pytorch / stylegan3-repo ``Generator``'s kwargs into a config.

    Returns:
        ``(config, notes)``; notes list options that were ignored and why.
    Raises:
        UnsupportedModelError: an option or value latentlab does not implement (the message names it).
    """
    from .tfpickle import V1_CLASS

    if net.class_name == V1_CLASS:  # a StyleGAN v1 generator from a TensorFlow pickle: a latentlab config already
        try:
            return GeneratorConfig.from_dict(net.kwargs), []
        except (TypeError, ValueError) as e:
            raise UnsupportedModelError(f"{where}: {e}") from None
    if net.class_name != "Generator":
        raise UnsupportedModelError(f"{where}: class {net.class_name!r} is not a StyleGAN2 Generator")
    if any(c == "SynthesisInput" or n.startswith("synthesis.L0_") for n, c in net.submodules.items()):
        raise UnsupportedModelError(f"{where}: a StyleGAN3 (alias-free) generator; only StyleGAN2 is supported")
    kw = dict(net.kwargs)
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    synthesis = dict(kw.pop("synthesis_kwargs", None) or {})
    out: dict[str, Any] = {}
    notes: list[str] = []
    top = {"z_dim": "z_dim", "c_dim": "c_dim", "w_dim": "w_dim", "img_resolution": "resolution",
           "img_channels": "img_channels"}  # fmt: skip
    for key in list(kw):
        if key in top:
            value = kw.pop(key)
            out[top[key]] = value.item() if isinstance(value, np.generic) else value  # the config checks it
    synthesis.update(kw)  # the stylegan3 repository passes synthesis options flat to Generator
    _take(mapping, {"num_layers": "mapping_layers", "embed_features": "embed_features",
                    "layer_features": "mapping_layer_features", "lr_multiplier": "mapping_lr_multiplier",
                    "w_avg_beta": "w_avg_beta"}, out, notes, "mapping_kwargs", where)  # fmt: skip
    _take(synthesis, {"channel_base": "channel_base", "channel_max": "channel_max", "architecture": "architecture",
                      "conv_clamp": "conv_clamp", "use_noise": "use_noise", "resample_filter": "resample_filter",
                      "num_fp16_res": "num_fp16_res"},
          out, notes, "synthesis_kwargs", where)  # fmt: skip
    missing = [k for k in ("z_dim", "c_dim", "w_dim", "resolution", "img_channels") if k not in out]
    if missing:
        raise UnsupportedModelError(f"{where}: constructor arguments lack {', '.join(missing)}")
    try:
        return GeneratorConfig(**out), notes
    except (TypeError, ValueError) as e:
        raise UnsupportedModelError(f"{where}: {e}") from None


def discriminator_config(net: ForeignNetwork, where: str = "D") -> tuple[DiscriminatorConfig, list[str]]:
    """Translate a stylegan2-ada-pytorch ``Discriminator``'s kwargs into a config; see :func:`generator_config`."""
    from .tfpickle import V1_D_CLASS

    if net.class_name == V1_D_CLASS:  # StyleGAN v1's D_basic from a TensorFlow pickle: a latentlab config already
        try:
            return DiscriminatorConfig.from_dict(net.kwargs), []
        except (TypeError, ValueError) as e:
            raise UnsupportedModelError(f"{where}: {e}") from None
    if net.class_name != "Discriminator":
        raise UnsupportedModelError(f"{where}: class {net.class_name!r} is not a StyleGAN2 Discriminator")
    kw = dict(net.kwargs)
    block = dict(kw.pop("block_kwargs", None) or {})
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    epilogue = dict(kw.pop("epilogue_kwargs", None) or {})
    out: dict[str, Any] = {}
    notes: list[str] = []
    _take(kw, {"c_dim": "c_dim", "img_resolution": "resolution", "img_channels": "img_channels",
               "architecture": "architecture", "channel_base": "channel_base", "channel_max": "channel_max",
               "conv_clamp": "conv_clamp", "cmap_dim": "cmap_dim"}, out, notes, "Discriminator", where)  # fmt: skip
    _take(block, {"resample_filter": "resample_filter"}, out, notes, "block_kwargs", where)
    _take(mapping, {"num_layers": "mapping_layers"}, out, notes, "mapping_kwargs", where)
    _take(epilogue, {"mbstd_group_size": "mbstd_group_size", "mbstd_num_channels": "mbstd_num_channels"},
          out, notes, "epilogue_kwargs", where)  # fmt: skip
    try:
        return DiscriminatorConfig(**out), notes
    except (TypeError, ValueError) as e:
        raise UnsupportedModelError(f"{where}: {e}") from None


def latentlab_tensors(net: ForeignNetwork, taps: tuple[int, ...], where: str) -> dict[str, torch.Tensor]:
    """``net``'s tensors under latentlab's names: NVIDIA's ``resample_filter`` buffers are checked and dropped."""
    expected = setup_filter(taps)
    out = {}
    for name, t in net.tensors.items():
        if name == "resample_filter" or name.endswith(".resample_filter"):
            if t.shape != expected.shape or not torch.allclose(t.float(), expected, atol=1e-6):
                raise UnsupportedModelError(f"{where}: {name} does not match resample_filter={list(taps)}")
            continue
        out[name] = t.float() if t.is_floating_point() else t
    return out
