"""Image datasets: folders and zips of images, NVIDIA's ``dataset_tool`` layout, and ``dataset prepare``.

One conversion rule turns any image into a training image (``to_training_pixels``):

1. EXIF orientation is applied.
2. Pixel depth: 16-bit grey (PIL modes ``I;16*`` and ``I``) is scaled to 8 bits as ``round(v * 255 / 65535)``;
   float images (mode ``F``) are taken as 0..255 and clipped. 8-bit modes pass through.
3. Transparency (RGBA, LA, palette images with a transparent colour) is composited over ``background``
   (white by default), never silently dropped.
4. Channels: ``channels=3`` gives RGB (grey is replicated); ``channels=1`` gives luma (PIL's ITU-R 601-2).
5. Geometry: ``crop="center"`` takes the largest centred square; ``crop="none"`` refuses non-square images.
   The square is then resized to ``resolution`` with Lanczos filtering (as NVIDIA's ``dataset_tool``).

A training-ready zip (what ``latentlab dataset prepare`` writes) is NVIDIA's layout: ``00000/img00000000.png``
... plus ``dataset.json`` with ``{"labels": [[name, label], ...]}`` or ``{"labels": null}``. Integer labels
become one-hot vectors, float lists are used as given (as in stylegan2-ada-pytorch).

Unreadable images never stop a run: they are listed with a reason at preparation time, skipped with a
warning when a dataset is opened, and, if an image turns out corrupt only when decoded during training,
replaced by the next readable image (a rule that depends only on its index, so every process and every
resumed run makes the same replacement).
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..io.atomic import atomic_path
from ..io.images import to_8bit_mode
from ..utils import bar_disable, short_error
from ..validate import InvalidInput, number

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MIN_SIDE = 8  # images whose shorter side is below min(this, resolution) are refused (a 1x5000 sliver is no face)
MAX_FILE_BYTES = 256 * 2**20  # one image (or dataset.json) larger than this is refused before it is read
MAX_CLASSES = 100_000  # integer labels are class indices in [0, MAX_CLASSES)
MAX_LABEL_DIM = 4096  # vector labels have at most this many entries
CROPS = ("none", "center")
# Errors Pillow raises for files that are not (complete) images.
_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class DatasetError(ValueError):
    """A dataset that cannot be used as asked: missing, empty, or with no usable image."""


# --------------------------------------------------------------------------------------------------
# The conversion rule.


def to_training_pixels(
    image: Image.Image,
    resolution: int | None,
    crop: str = "none",
    channels: int = 3,
    background: Sequence[int] = (255, 255, 255),
) -> np.ndarray:
    """Convert a PIL image to a training image by the module's documented rule.

    Args:
        image: any PIL image (8/16-bit, grey/RGB/RGBA/palette).
        resolution: output side in pixels; None keeps the (square) size.
        crop: ``"center"`` = largest centred square; ``"none"`` = the image must already be square.
        channels: 3 (RGB) or 1 (grey).
        background: RGB colour, 0..255, that transparent pixels are composited over.
    Returns:
        uint8 ``[channels, resolution, resolution]``.
    Raises:
        ValueError: a non-square image with ``crop="none"``, a side shorter than :data:`MIN_SIDE`, a float image
            with NaN or infinite pixels, or a bad argument.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    image = to_8bit_mode(image, channels, background)

    w, h = image.size
    min_side = 1 if resolution is None else min(MIN_SIDE, resolution)  # only resizing needs a minimum
    if min(w, h) < min_side:
        raise ValueError(f"too small to use ({w}x{h}; the shorter side must be >= {min_side} pixels)")
    if w != h:
        if crop == "none":
            raise ValueError(f"not square ({w}x{h}); use crop='center' (--crop center) to crop it")
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        image = image.crop((left, top, left + s, top + s))
    if resolution is not None and image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    a = np.asarray(image, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy()


def decode(data: bytes, **rule: Any) -> np.ndarray:
    """Decode image bytes and apply :func:`to_training_pixels` (``rule`` = its keyword arguments)."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return to_training_pixels(im, **rule)


# --------------------------------------------------------------------------------------------------
# Sources: a folder or a zip of images.


class _Source:
    """The image files of a folder or a zip, by relative POSIX name, plus an optional ``dataset.json``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such dataset: {str(self.path)!r}")
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            self.kind = "folder"
            names = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        elif zipfile.is_zipfile(self.path):
            self.kind = "zip"
            names = [i.filename for i in self._open_zip().infolist() if not i.is_dir()]
        else:
            raise DatasetError(f"{self.path}: a dataset must be a folder or a .zip of images")
        self.all_names = sorted(names)
        self.names = [n for n in self.all_names if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES]

    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def read(self, name: str) -> bytes:
        """The raw bytes of one file (zip CRCs are checked by ``zipfile``).

        Raises:
            DatasetError: the file is larger than :data:`MAX_FILE_BYTES` (checked before reading it).
        """
        if self.kind == "folder":
            size = (self.path / name).stat().st_size
        else:
            size = self._open_zip().getinfo(name).file_size
        if size > MAX_FILE_BYTES:
            raise DatasetError(f"{self.path}: {name} is {size:,} bytes, more than the {MAX_FILE_BYTES:,} latentlab "
                               f"reads for one file")  # fmt: skip
        if self.kind == "folder":
            return (self.path / name).read_bytes()
        return self._open_zip().read(name)

    def labels(self) -> dict[str, Any] | None:
        """``{name: label}`` from ``dataset.json`` (None when absent or ``"labels": null``)."""
        if "dataset.json" not in self.all_names:
            return None
        try:
            meta = json.loads(self.read("dataset.json"))
        except (json.JSONDecodeError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"{self.path}: dataset.json is not readable JSON ({e})") from None
        if not isinstance(meta, dict):
            raise DatasetError(f"{self.path}: dataset.json must be a JSON object {{\"labels\": ...}}, got "
                               f"{type(meta).__name__}")  # fmt: skip
        labels = meta.get("labels")
        if labels is None:
            return None
        pairs = "dataset.json 'labels' must be a list of [name, label] pairs"
        if not isinstance(labels, list):
            raise DatasetError(f"{self.path}: {pairs}, got {type(labels).__name__}")
        out: dict[str, Any] = {}
        for k, pair in enumerate(labels):
            if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
                raise DatasetError(f"{self.path}: {pairs}; entry {k} is {pair!r:.60}")
            out[pair[0]] = check_label(pair[1], f"{self.path}: dataset.json label of {pair[0]!r}")
        return out

    def __getstate__(self) -> dict:  # zip handles do not survive pickling (DataLoader workers)
        return {**self.__dict__, "_zip": None}


def check_label(label: Any, where: str) -> int | list[float]:
    """One label as stored in ``dataset.json``: a class index in ``[0, MAX_CLASSES)`` or a list of at most
    ``MAX_LABEL_DIM`` finite numbers (each within +-1e6).

    Raises:
        DatasetError: a string, a bool, a negative, fractional or huge class, NaN/Inf, or a nested list.
    """
    try:
        if isinstance(label, list):
            if not 1 <= len(label) <= MAX_LABEL_DIM:
                raise InvalidInput(f"a vector label must have 1 to {MAX_LABEL_DIM} numbers, got {len(label)}")
            return [number(v, f"[{i}]", low=-1e6, high=1e6) for i, v in enumerate(label)]
        return int(number(label, "class", integer=True, low=0, high=MAX_CLASSES - 1))
    except InvalidInput as e:
        raise DatasetError(f"{where}: {e} (a label is a class index 0..{MAX_CLASSES - 1} or a list of "
                           f"numbers)") from None


def _label_matrix(names: list[str], labels: dict[str, Any] | None, where: Path) -> np.ndarray:
    """``[N, c_dim]`` float32 labels: ints become one-hot, lists are used as given; ``[N, 0]`` without labels."""
    if labels is None:
        return np.zeros([len(names), 0], dtype=np.float32)
    missing = [n for n in names if n not in labels]
    if missing:
        raise DatasetError(f"{where}: dataset.json has no label for {missing[0]!r} ({len(missing)} images)")
    raw = [labels[n] for n in names]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        ints = np.asarray(raw, dtype=np.int64)
        if ints.min() < 0:
            raise DatasetError(f"{where}: integer labels must be >= 0, got {ints.min()}")
        onehot = np.zeros([len(raw), int(ints.max()) + 1], dtype=np.float32)
        onehot[np.arange(len(raw)), ints] = 1
        return onehot
    try:
        m = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: labels must be all integers or all equal-length lists of numbers") from None
    if m.ndim != 2:
        raise DatasetError(f"{where}: labels must be all integers or all equal-length lists of numbers")
    return m


# --------------------------------------------------------------------------------------------------
# The training dataset.


class ImageDataset:
    """A folder or zip of images served as uint8 ``[C, R, R]`` training images with labels.

    Item ``i`` of ``len(self)`` is image ``i % num_images``, mirrored left-right when ``i >= num_images`` and
    ``xflip`` is on (NVIDIA's doubling of the dataset, so an epoch shows each image once each way).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: int | None = None,  # training resolution; None = the size of the first image
        crop: str = "none",  # "center" crops non-square images; "none" skips them
        channels: int = 3,  # 3 = RGB, 1 = grey
        xflip: bool = False,  # also serve every image mirrored left-right
        use_labels: bool = True,  # read dataset.json labels when present; False = unconditional
        cache_bytes: int = 2 << 30,  # keep decoded images in memory when they fit in this many bytes
        background: Sequence[int] = (255, 255, 255),  # colour that transparency is composited over
    ):
        self.source = _Source(path)
        self.path = self.source.path
        self.channels, self.xflip = channels, xflip
        self._rule = dict(crop=crop, channels=channels, background=tuple(background))
        names, self.skipped = self._scan(self.source.names)
        if not names:
            detail = ""
            if self.skipped:
                detail = f" ({len(self.skipped)} skipped; {self.skipped[0][0]}: {self.skipped[0][1]})"
            raise DatasetError(f"{self.path}: no usable images{detail}")
        for name, reason in self.skipped:
            warnings.warn(f"{self.path}: skipping {name}: {reason}", stacklevel=2)
        self.names = names
        if resolution is None:
            resolution = self._first_size()
        if resolution < 4 or resolution & (resolution - 1):
            raise DatasetError(f"{self.path}: training resolution must be a power of two >= 4, got {resolution}")
        self.resolution = resolution
        self.labels = _label_matrix(names, self.source.labels() if use_labels else None, self.path)
        per_image = channels * resolution * resolution
        self._cache: dict[int, np.ndarray] | None = {} if per_image * len(names) <= cache_bytes else None
        self._bad: set[int] = set()

    def _scan(self, names: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """Keep the files whose header Pillow can read (cheap: no pixels are decoded)."""
        good, skipped = [], []
        for name in names:
            try:
                with Image.open(io.BytesIO(self.source.read(name))) as im:
                    w, h = im.size
                if w != h and self._rule["crop"] == "none":
                    skipped.append((name, f"not square ({w}x{h}); use crop='center' to crop it"))
                    continue
                good.append(name)
            except (*_PIL_ERRORS, zipfile.BadZipFile) as e:
                skipped.append((name, f"not a readable image ({short_error(e)})"))
        return good, skipped

    def _first_size(self) -> int:
        """The first image's shorter side, from its header (EXIF rotations do not change it)."""
        with Image.open(io.BytesIO(self.source.read(self.names[0]))) as im:
            return min(im.size)

    @property
    def num_images(self) -> int:
        """Number of distinct usable images (before x-flips)."""
        return len(self.names)

    @property
    def c_dim(self) -> int:
        """Label size (0 = no labels)."""
        return int(self.labels.shape[1])

    def __len__(self) -> int:
        return self.num_images * (2 if self.xflip else 1)

    def image(self, index: int) -> np.ndarray:
        """uint8 ``[C, R, R]`` of item ``index`` (see the class docstring for x-flips and replacements)."""
        raw = index % self.num_images
        a = self._decode(raw)
        return a[:, :, ::-1].copy() if index >= self.num_images else a

    def label(self, index: int) -> np.ndarray:
        """float32 ``[c_dim]`` label of item ``index``."""
        return self.labels[index % self.num_images]

    def _decode(self, raw: int) -> np.ndarray:
        """Decode image ``raw``; a corrupt one is replaced by the next readable image (warned once)."""
        for k in range(self.num_images):
            i = (raw + k) % self.num_images
            if i in self._bad:
                continue
            if self._cache is not None and i in self._cache:
                return self._cache[i]
            try:
                a = decode(self.source.read(self.names[i]), resolution=self.resolution, **self._rule)
            except (*_PIL_ERRORS, zipfile.BadZipFile) as e:
                self._bad.add(i)
                warnings.warn(f"{self.path}: skipping {self.names[i]}: not a readable image ({short_error(e)})",
                              stacklevel=3)  # fmt: skip
                continue
            if self._cache is not None:
                self._cache[i] = a
            return a
        raise DatasetError(f"{self.path}: none of the images could be decoded")

    def batch(self, indices: Sequence[int], pool: Executor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` as float32 images ``[N, C, R, R]`` in [-1, 1] and labels ``[N, c_dim]``.

        ``pool`` (e.g. a ``ThreadPoolExecutor``) decodes the images in parallel, in the same order.
        """
        ints = [int(i) for i in indices]
        imgs = np.stack(list(pool.map(self.image, ints)) if pool is not None else [self.image(i) for i in ints])
        labels = np.stack([self.label(int(i)) for i in indices]) if len(indices) else self.labels[:0]
        return torch.from_numpy(imgs).to(torch.float32) / 127.5 - 1, torch.from_numpy(labels.copy())

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary (what training logs and checkpoints record)."""
        return {"path": str(self.path), "kind": self.source.kind, "images": self.num_images,
                "skipped": len(self.skipped), "resolution": self.resolution, "channels": self.channels,
                "c_dim": self.c_dim, "xflip": self.xflip, "crop": self._rule["crop"]}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# dataset prepare.


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` did."""

    out: Path
    written: int
    skipped: list[tuple[str, str]]  # (source name, reason)
    resolution: int
    labels: bool


def archive_name(idx: int) -> str:
    """Image ``idx``'s name in NVIDIA's ``dataset_tool`` layout: ``00001/img00001234.png``."""
    s = f"{idx:08d}"
    return f"{s[:5]}/img{s}.png"


def prepare_dataset(
    src: str | os.PathLike,
    out: str | os.PathLike,
    resolution: int,
    crop: str = "none",
    channels: int = 3,
    background: Sequence[int] = (255, 255, 255),
    progress: bool = True,
) -> PrepareReport:
    """Convert a folder or zip of images into a training-ready zip in NVIDIA's ``dataset_tool`` layout.

    Every image is converted by :func:`to_training_pixels` and stored as PNG; files that cannot be used
    are skipped and reported with a reason. Labels from the source's ``dataset.json`` are carried over.
    The zip is written atomically: an interrupted run leaves no partial file.

    Args:
        src: folder or zip of images (png/jpg/jpeg/webp/bmp, any mode).
        out: the ``.zip`` to write.
        resolution: output side, a power of two >= 4.
        crop: ``"center"`` or ``"none"`` (non-square images are then skipped).
        channels: 3 or 1.
        background: RGB colour for transparent pixels.
        progress: show a progress bar.
    Returns:
        A :class:`PrepareReport`.
    Raises:
        DatasetError: nothing usable in ``src``.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise ValueError(f"the prepared dataset must be a .zip file, got {str(out)!r}")
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}")
    source = _Source(src)
    labels = source.labels()
    if labels is not None:  # all integers or all equal-length vectors, before anything is written
        _label_matrix(list(labels), labels, source.path)
    skipped: list[tuple[str, str]] = [(n, "not an image file (by its extension)") for n in source.all_names
                                      if n not in source.names and n != "dataset.json"]  # fmt: skip
    rule = dict(resolution=resolution, crop=crop, channels=channels, background=tuple(background))
    written: list[tuple[str, Any]] = []
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        for name in tqdm(source.names, desc="prepare", unit="img", disable=bar_disable(progress), leave=False):
            try:
                pixels = decode(source.read(name), **rule)
            except (*_PIL_ERRORS, zipfile.BadZipFile) as e:
                skipped.append((name, short_error(e) if isinstance(e, ValueError) and "square" in str(e)
                                else f"not a readable image ({short_error(e)})"))  # fmt: skip
                continue
            if labels is not None and name not in labels:
                skipped.append((name, "no label in dataset.json"))
                continue
            arc = archive_name(len(written))
            buf = io.BytesIO()
            img = Image.fromarray(pixels[0] if channels == 1 else pixels.transpose(1, 2, 0))
            img.save(buf, format="png", compress_level=6)
            z.writestr(arc, buf.getvalue())
            written.append((arc, None if labels is None else labels[name]))
        if not written:
            raise DatasetError(f"{src}: no usable images ({len(skipped)} skipped)")
        meta = {"labels": None if labels is None else [[a, lab] for a, lab in written]}
        z.writestr("dataset.json", json.dumps(meta))
    return PrepareReport(out=out, written=len(written), skipped=skipped, resolution=resolution,
                         labels=labels is not None)  # fmt: skip
