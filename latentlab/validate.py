"""Checks at the boundary: every value that comes from a user, a file or a caller passes through here once.

The CLI and the public API call the same checks, so a bad input is refused with the same message either way.
Every refusal is an :class:`InvalidInput` (a ``ValueError``) whose message names where the value came from
(a file, an option, an argument), the field, what was found and what was expected. NaN is refused
everywhere a number is expected: a range check written as ``x < 0`` lets NaN through, these do not.

Bounds (all checked before anything is allocated):

* :data:`MAX_CODE_ABS`: latent codes (z, w) and direction steps must satisfy ``|x| <= 1e4``; real codes lie
  within a few tens of the origin, and larger values only overflow the synthesis network into NaN images.
* :data:`MAX_COUNT`: at most 10^6 codes, frames or alphas from one option.
* Network sizes: see :func:`latentlab.nn.config.check_sizes`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

MAX_CODE_ABS = 1e4
MAX_COUNT = 1_000_000
MAX_IMAGE_SIDE = 65_536


class InvalidInput(ValueError):
    """A value from a user, a file or a caller that latentlab refuses; the message says where, what and why."""


def _where(where: str | None, name: str) -> str:
    return f"{where}: {name}" if where else name


def number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    where: str | None = None,
) -> float | int:
    """``value`` as a finite float (or an int with ``integer=True``) within ``[low, high]``.

    Args:
        value: a Python or NumPy number (or a 0-d tensor); bools and strings are refused.
        name: what it is, for the message (an option such as ``--lr``, or a field).
        low, high: bounds (None = unbounded); ``low_open``/``high_open`` exclude them.
        integer: require an integral value and return an ``int``.
        where: the file or argument it came from, prefixed to the message.
    Raises:
        InvalidInput: not a number, NaN or infinite, not integral, or out of range.
    """
    label = _where(where, name)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise InvalidInput(f"{label} must be {kind}, got {type(value).__name__} {_short(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{label} must be a finite number, got {value}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise InvalidInput(f"{label} must be an integer, got {value}")
        value = int(value)
    else:
        value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise InvalidInput(f"{label} must be {'>' if low_open else '>='} {_fmt(low)}{_range_tail(high, high_open)}, "
                           f"got {_fmt(value)}")  # fmt: skip
    if high is not None and (value > high or (high_open and value == high)):
        head = f">{'' if low_open else '='} {_fmt(low)} and " if low is not None else ""
        raise InvalidInput(f"{label} must be {head}{'<' if high_open else '<='} {_fmt(high)}, got {_fmt(value)}")
    return value


def _fmt(v: float | int) -> str:
    if isinstance(v, int) or (float(v).is_integer() and abs(v) < 1e15):
        return str(int(v))
    return f"{v:g}"


def _range_tail(high: float | None, high_open: bool) -> str:
    return "" if high is None else f" and {'<' if high_open else '<='} {_fmt(high)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def optional_number(value: Any, name: str, **kwargs: Any) -> float | int | None:
    """:func:`number`, passing None through."""
    return None if value is None else number(value, name, **kwargs)


def string(value: Any, name: str, *, where: str | None = None, choices: Iterable[str] | None = None,
           optional: bool = False) -> str | None:  # fmt: skip
    """``value`` as a non-empty string (one of ``choices`` when given); None passes with ``optional=True``.

    Raises:
        InvalidInput: another type, an empty string, or not one of ``choices``.
    """
    if value is None and optional:
        return None
    label = _where(where, name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{label} must be a non-empty string, got {type(value).__name__} {_short(value)}")
    if choices is not None:
        choices = tuple(choices)
        if value not in choices:
            raise InvalidInput(f"{label} must be one of {', '.join(choices)}, got {value!r}")
    return value


def json_object(value: Any, name: str, *, where: str | None = None) -> dict[str, Any]:
    """``value`` (parsed JSON) as a dict with string keys.

    Raises:
        InvalidInput: a list, a number, a string or anything else that is not a JSON object.
    """
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{_where(where, name)} must be a JSON object {{...}}, got {type(value).__name__} "
                           f"{_short(value)}")  # fmt: skip
    return dict(value)


def int_list(value: Any, name: str, *, where: str | None = None, low: int | None = None,
             high: int | None = None) -> list[int]:  # fmt: skip
    """``value`` as a list of integers within ``[low, high]`` (a JSON list such as a direction's ``layers``).

    Raises:
        InvalidInput: not a list, or an element that is not an integer in range.
    """
    label = _where(where, name)
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{label} must be a list of integers, got {type(value).__name__} {_short(value)}")
    return [number(v, f"{name}[{i}]", where=where, integer=True, low=low, high=high) for i, v in enumerate(value)]


def str_list(value: Any, name: str, *, where: str | None = None) -> list[str]:
    """``value`` as a list of non-empty strings.

    Raises:
        InvalidInput: not a list, or an element that is not a non-empty string.
    """
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{_where(where, name)} must be a list of strings, got {type(value).__name__} "
                           f"{_short(value)}")  # fmt: skip
    return [string(v, f"{name}[{i}]", where=where) for i, v in enumerate(value)]


def float_array(
    a: Any,
    name: str,
    *,
    where: str | None = None,
    ndim: int | tuple[int, ...] | None = None,
    max_abs: float | None = MAX_CODE_ABS,
    allow_empty: bool = False,
) -> np.ndarray:
    """``a`` (NumPy array or tensor) as float32 after checking its dtype, rank, emptiness and values.

    Args:
        a: the array. Integer, bool, complex, object and string arrays are refused: a code or a direction
            stored as integers has lost its values.
        ndim: the allowed rank(s); None = any.
        max_abs: refuse values with ``|x| > max_abs`` (None = only finiteness is checked).
        allow_empty: accept arrays with no elements.
    Returns:
        A float32 NumPy array of the same shape.
    Raises:
        InvalidInput: naming the array, its dtype or shape, and the first bad value with its index.
    """
    label = _where(where, f"{name!r}")
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise InvalidInput(f"{label} must hold floating-point values, got dtype {a.dtype}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in ranks:
            raise InvalidInput(f"{label} must have {' or '.join(map(str, ranks))} dimensions, got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise InvalidInput(f"{label} is empty (shape {a.shape})")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidInput(f"{label} holds {int(bad.sum())} non-finite value(s) (NaN or Inf), the first at index "
                           f"{list(idx)}: {a[idx]}")  # fmt: skip
    if max_abs is not None and a.size:
        big = np.abs(a.astype(np.float64)) > max_abs
        if big.any():
            idx = tuple(int(i) for i in np.argwhere(big)[0])
            raise InvalidInput(f"{label} holds {int(big.sum())} value(s) beyond +-{max_abs:g}, the first at index "
                               f"{list(idx)}: {a[idx]:g}")  # fmt: skip
    with np.errstate(over="ignore"):
        out = a.astype(np.float32)
    if max_abs is None and out.size and not np.isfinite(out).all():
        raise InvalidInput(f"{label} holds values too large for float32")
    return out


def count(value: Any, name: str, *, low: int = 1, high: int = MAX_COUNT, where: str | None = None) -> int:
    """An integer count within ``[low, high]`` (frames, steps, samples...)."""
    return int(number(value, name, low=low, high=high, integer=True, where=where))


def float_tensor(
    t: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] | None = None,
    max_abs: float | None = MAX_CODE_ABS,
    allow_empty: bool = False,
    where: str | None = None,
):
    """Check a ``torch.Tensor`` argument (codes, images, steps) without moving it off its device.

    Args:
        t: the tensor; a NumPy array or anything else is refused with the type it was (convert with
            ``torch.from_numpy`` first), as are integer, bool and complex tensors.
        ndim, max_abs, allow_empty: as for :func:`float_array`.
    Returns:
        ``t`` itself.
    Raises:
        InvalidInput: the wrong type, dtype, rank, an empty tensor, or a non-finite or too large value.
    """
    import torch

    label = _where(where, name)
    if not isinstance(t, torch.Tensor):
        raise InvalidInput(f"{label} must be a torch.Tensor, got {type(t).__module__}.{type(t).__name__}")
    if not t.is_floating_point():
        raise InvalidInput(f"{label} must be a floating-point tensor, got {t.dtype}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in ranks:
            raise InvalidInput(f"{label} must have {' or '.join(map(str, ranks))} dimensions, got shape "
                               f"{tuple(t.shape)}")  # fmt: skip
    if t.numel() == 0:
        if allow_empty:
            return t
        raise InvalidInput(f"{label} is empty (shape {tuple(t.shape)})")
    with torch.no_grad():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            raise InvalidInput(f"{label} holds {int((~finite).sum())} non-finite value(s) (NaN or Inf)")
        if max_abs is not None:
            peak = float(t.detach().abs().max())
            if peak > max_abs:
                raise InvalidInput(f"{label} holds values up to {peak:g}, beyond +-{max_abs:g}")
    return t


def path_text(value: Any, name: str) -> str:
    """A path or name argument as a non-empty string (``str`` or ``os.PathLike``).

    Raises:
        InvalidInput: None, another type, or an empty / blank string.
    """
    import os

    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a path or a name (str or os.PathLike), got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{name} is empty")
    return value


def why_missing(path: Any) -> str:
    """Why ``path`` cannot be opened as a file, in words: ``"no such file"``, ``"a symlink loop"``, ...

    For messages about a path that ``Path.is_file()`` refused (it says False for all of these alike).
    """
    import errno
    import os

    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symlink loop"
        if e.errno == errno.EACCES:
            return "permission denied"
        if os.path.islink(path):
            return "a broken symlink"
        if e.errno == errno.ENAMETOOLONG:
            return "a name too long for this file system"
        return "no such file"
    import stat

    if stat.S_ISDIR(st.st_mode):
        return "a directory, not a file"
    return "not a regular file"


def image_batch(t: Any, name: str = "images", *, channels: int | None = None, resolution: int | None = None):
    """Check an image batch argument: a float ``torch.Tensor`` ``[N, C, H, W]`` with N >= 1, finite, in [-1, 1].

    Values up to +-16 pass (a generator's own renderings overshoot [-1, 1], an untrained one by several
    units); anything larger is an image in another range (0..255 pixels as floats, say), which would project
    to garbage.

    Raises:
        InvalidInput: a NumPy array or another type (the message says how to convert), integer pixels, the
            wrong shape for ``channels``/``resolution``, an empty batch, NaN/Inf, or values beyond +-2.
    """
    import torch

    if isinstance(t, np.ndarray) or (isinstance(t, torch.Tensor) and not t.is_floating_point()):
        dtype = t.dtype
        raise InvalidInput(f"{name} must be a float tensor [N, C, H, W] in [-1, 1], got {type(t).__name__} of "
                           f"{dtype}; convert uint8 [N, H, W, C] pixels with latentlab.io.from_uint8")  # fmt: skip
    float_tensor(t, name, ndim=4, max_abs=None)
    if channels is not None and resolution is not None and t.shape[1:] != (channels, resolution, resolution):
        raise InvalidInput(f"{name} must be [N, {channels}, {resolution}, {resolution}] for this generator, got "
                           f"{tuple(t.shape)}")  # fmt: skip
    peak = float(t.detach().abs().max())
    if peak > 16:
        raise InvalidInput(f"{name} must lie in [-1, 1], but reach {peak:g}; were they 0..255 pixels? (use "
                           f"latentlab.io.from_uint8)")  # fmt: skip
    return t


class Bound(NamedTuple):
    """The range of one numeric field: ``[low, high]`` (``low`` excluded with ``low_open``), integral or not."""

    low: float | None
    high: float | None
    integer: bool = False
    low_open: bool = False


def number_fields(obj: Any, bounds: Mapping[str, tuple], where: str, *, allow_none: bool = False) -> None:
    """Check the numeric fields of a (frozen) dataclass instance against ``bounds``, in place.

    Args:
        obj: the instance; integer fields are stored back as ``int`` (``64.0`` -> ``64``), others as given.
        bounds: ``{field: (low, high[, integer[, low_open]])}`` (see :class:`Bound`).
        where: the class name, for the message.
        allow_none: let None through (for optional fields).
    Raises:
        InvalidInput: the first field that is not a finite number in its range.
    """
    for name, spec in bounds.items():
        value = getattr(obj, name)
        if value is None and allow_none:
            continue
        b = Bound(*spec)
        checked = number(value, name, where=where, low=b.low, high=b.high, integer=b.integer, low_open=b.low_open)
        if b.integer:
            object.__setattr__(obj, name, checked)


def missing_message(path: Any, what: str = "file") -> str:
    """``"no such file: 'p'"``, or ``"'p': a symlink loop"`` (and so on) when :func:`why_missing` knows better."""
    why = why_missing(path)
    return f"no such {what}: {str(path)!r}" if why == "no such file" else f"{str(path)!r}: {why}"
