"""Small shared helpers: device choice, seed lists, building networks to load, the glibc allocator setting."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys
from collections.abc import Callable
from typing import TypeVar

import torch

from .validate import InvalidInput

T = TypeVar("T")

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) -> cuda if available, then mps, then cpu; other names and devices are checked.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or a ``torch.device``.
    Returns:
        A ``torch.device`` of type cpu, cuda or mps that exists on this machine.
    Raises:
        InvalidInput (a ValueError): another type, an unknown name, a device type latentlab does not render on
            (``meta``, ``xla``, ...), or a device that is not available here (e.g. cuda on a CPU-only machine,
            or ``cuda:3`` with two GPUs).
    """
    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        dev = device
    else:
        if not isinstance(device, str):
            raise InvalidInput(f"device must be a name such as 'cpu' or 'cuda:0', or a torch.device; got "
                               f"{type(device).__name__}")  # fmt: skip
        name = device.strip().lower()
        if name == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError):
            raise InvalidInput(f"unknown device {device!r}; use one of {', '.join(DEVICE_CHOICES)} "
                               f"(or e.g. cuda:1)") from None  # fmt: skip
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InvalidInput(f"device {str(dev)!r} is not one latentlab runs on; use one of "
                           f"{', '.join(DEVICE_CHOICES)}")  # fmt: skip
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInput(f"device {str(dev)!r} asked for, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidInput(f"device {str(dev)!r} asked for, but this machine has {torch.cuda.device_count()} "
                               f"CUDA device(s)")  # fmt: skip
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InvalidInput(f"device {str(dev)!r} asked for, but MPS is not available on this machine")
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise InvalidInput(f"device {str(dev)!r}: the CPU has no index other than 0")
    return dev


_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


def bar_disable(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a progress bar: True (off) without ``progress``; otherwise None, which tqdm reads as
    "on when its stream is a terminal", so logs written by a scheduler or a pipe stay free of bars."""
    return None if progress else True


def untrained(factory: Callable[..., T], *args) -> T:
    """``factory(*args)`` (a network to load weights into) with the global CPU random state restored afterwards.

    Loading a file first builds the network with random initial weights, then overwrites them. Without this,
    every load would move the caller's ``torch.manual_seed`` stream.
    """
    with torch.random.fork_rng(devices=[]):
        return factory(*args)


def short_error(e: BaseException) -> str:
    """The first line of an exception's message (its type name when empty), at most 200 characters."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


SEED_MAX = 2**32 - 1  # seeds are uint32, as NVIDIA's np.random.RandomState seeds


def parse_int_list(text: str, what: str = "seeds", max_count: int = 100_000, low: int = 0,
                   high: int = SEED_MAX) -> list[int]:  # fmt: skip
    """Parse ``"0-7,12"`` -> ``[0, 1, ..., 7, 12]`` (inclusive ranges, order kept, duplicates kept).

    Values must lie in ``[low, high]`` (by default the uint32 range of seeds).

    Raises:
        ValueError: with the offending piece, for empty pieces, non-integers, reversed or huge ranges, values
            out of range.
    """
    if text is None or not str(text).strip():
        raise ValueError(f"{what}: empty list")
    out: list[int] = []
    for piece in str(text).split(","):
        m = _RANGE.match(piece)
        if not m:
            raise ValueError(f"{what}: cannot parse {piece.strip()!r} (expected e.g. '0-7,12')")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"{what}: range {piece.strip()!r} runs backwards")
        if lo < low or hi > high:
            raise InvalidInput(f"{what}: {piece.strip()!r} is outside {low}..{high}")
        if len(out) + hi - lo + 1 > max_count:
            raise ValueError(f"{what}: more than {max_count} values")
        out.extend(range(lo, hi + 1))
    return out


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper bound on 64-bit systems


def tune_allocator() -> bool:
    """Keep large tensor buffers in the heap instead of fresh ``mmap`` pages (glibc only).

    By default glibc serves allocations above a (dynamic) threshold with ``mmap`` and hands them back with
    ``munmap`` on free, so every forward pass page-faults its activations in anew. Raising the mmap
    threshold to its maximum (32 MiB) and the trim threshold lets freed buffers be reused. This is
    process-wide, so only latentlab's command-line entry points call it (disable with
    ``LATENTLAB_TUNE_MALLOC=0``); library users may call it themselves. See docs/performance.md.

    Returns:
        True if the settings were applied.
    """
    if os.environ.get("LATENTLAB_TUNE_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 2**30) == 1 and ok
    return ok
