"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def remove_temporaries(folder: str | os.PathLike, names: tuple[str, ...] | None = None) -> None:
    """Delete the temporaries :func:`atomic_path` left in ``folder`` when a process was killed mid-write: those of
    the target file ``names`` only, or every one (``.<name>.tmp-*``) when None."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for p in folder.glob(".*.tmp-*"):
        if names is None or any(p.name.startswith(f".{n}.tmp-") for n in names):
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    A crash or exception at any moment leaves either the old file or the complete new one, never a torn
    file, and removes the temporary. ``suffix`` (default: the target's) lets writers that pick a format
    from the extension (Pillow, OpenCV) see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden name with ".tmp-" in it, ending in the target's extension so format sniffers agree.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix if suffix is None else suffix,
                               dir=path.parent)  # fmt: skip
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs should read like any other file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
