"""Reading target images (for projection, and anything else that inverts photos): any file Pillow reads,
converted by the dataset rule.

The rule is :func:`latentlab.data.datasets.to_training_pixels` (EXIF orientation; 16-bit scaled to 8-bit;
alpha composited over white; grey replicated to RGB; centre crop to a square unless ``crop="none"``;
Lanczos resize to G's resolution), so a projected photo is prepared exactly like a training image.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..io.images import from_uint8
from ..validate import missing_message
from .datasets import IMAGE_SUFFIXES, MAX_FILE_BYTES, to_training_pixels


@dataclass
class Targets:
    """Images ready for projection: ``images`` ``[N, C, R, R]`` float32 in [-1, 1], their source paths, and
    the files that were skipped as ``(path, reason)``."""

    images: torch.Tensor
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[tuple[Path, str]] = field(default_factory=list)  # kept, with a warning (heavy crop or upscale)


@dataclass(frozen=True)
class TargetFiles:
    """Image files for projection, read a chunk at a time (:meth:`read`), so a job of any number of files holds
    one chunk in memory; :func:`load_targets` reads them all at once instead.

    ``paths`` are candidates: a file that turns out unreadable is skipped when its chunk is read.
    """

    paths: list[Path]
    resolution: int
    channels: int = 3
    crop: str = "center"

    def read(self, indices: Sequence[int]) -> tuple[list[int], torch.Tensor, list[tuple[Path, str]],
                                                    list[tuple[Path, str]]]:  # fmt: skip
        """The files ``indices``, read as :func:`load_targets` reads them.

        Returns:
            ``(kept, images, skipped, notes)``: the indices that were readable, their images ``[len(kept), C, R, R]``
            in [-1, 1], and ``(path, reason)`` / ``(path, warning)`` for the others and the kept ones' notes.
        """
        kept, images, skipped, notes = [], [], [], []
        for i in indices:
            p, said = Path(self.paths[i]), []
            try:
                images.append(load_target(p, self.resolution, self.channels, self.crop, notes=said))
            except (FileNotFoundError, ValueError) as e:
                skipped.append((p, str(e)))
                continue
            kept.append(i)
            notes += [(p, n) for n in said]
        return kept, _stack(images, self.channels, self.resolution), skipped, notes


def _stack(images: list[np.ndarray], channels: int, resolution: int) -> torch.Tensor:
    if images:
        return from_uint8(np.stack(images).transpose(0, 2, 3, 1))
    return torch.empty([0, channels, resolution, resolution])


def target_note(size: tuple[int, int], resolution: int, crop: str) -> str | None:
    """A warning for an image that is kept but will project poorly: the centre crop discards more than half of
    it, or its square is enlarged more than 4x to reach ``resolution``; None when neither holds."""
    w, h = size
    notes = []
    if crop == "center" and max(w, h) > 2 * min(w, h):
        notes.append(f"the centre crop keeps {min(w, h)}x{min(w, h)} of {w}x{h}")
    if min(w, h) * 4 < resolution:
        notes.append(f"enlarged {resolution / min(w, h):.0f}x to {resolution}px")
    return "; ".join(notes) or None


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files and folders -> a sorted list of files (folders contribute their images, recursively)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def load_target(path: str | os.PathLike, resolution: int, channels: int = 3, crop: str = "center",
                notes: list[str] | None = None) -> np.ndarray:  # fmt: skip
    """One image file -> uint8 ``[channels, resolution, resolution]``.

    Args:
        notes: when given, a :func:`target_note` warning about the image is appended to it.
    Raises:
        FileNotFoundError: no such file (or a symlink loop, a broken link: the message says which).
        ValueError: not an image Pillow can read, non-square with ``crop="none"``, smaller than 8 pixels on a
            side, a float image with NaN or infinite pixels, or larger than 256 MiB.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing_message(path))
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path.stat().st_size:,} bytes, more than the {MAX_FILE_BYTES:,} latentlab reads for one "
                         f"image")  # fmt: skip
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.format == "JPEG":  # decode huge JPEGs at a reduced scale straight away
                    im.draft("RGB", (resolution, resolution))
                im.load()
                pixels = to_training_pixels(im, resolution, crop=crop, channels=channels)
                note = target_note(im.size, resolution, crop)
                if note is not None and notes is not None:
                    notes.append(note)
                return pixels
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:  # fmt: skip
        raise ValueError(f"not a readable image ({type(e).__name__}: {e})") from None


def load_targets(
    paths: Sequence[str | os.PathLike],
    resolution: int,
    channels: int = 3,
    crop: str = "center",
) -> Targets:
    """Read image files for projection; unreadable ones are skipped and listed with the reason.

    Args:
        paths: image files (see :func:`expand_inputs` for folders).
        resolution: G's resolution.
        channels: G's image channels (3 or 1).
        crop: ``"center"`` (largest centred square) or ``"none"`` (non-square images are skipped).
    """
    files = TargetFiles([Path(p) for p in paths], resolution, channels, crop)
    kept, batch, skipped, notes = files.read(range(len(files.paths)))
    return Targets(batch, [files.paths[i] for i in kept], skipped, notes)
