"""Image conversion at the library's edges.

Inside latentlab images are float32 ``[N, C, H, W]`` in [-1, 1]; at the edges (files, PIL, OpenCV) they are
uint8 ``[H, W, C]`` RGB. These two helpers are the only places that convert between the two.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                 ".tif": "TIFF", ".tiff": "TIFF"}  # what save_image writes, by extension  # fmt: skip


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` (or ``[C, H, W]``) in [-1, 1] -> uint8 ``[N, H, W, C]`` (or ``[H, W, C]``).

    Uses NVIDIA's mapping ``floor(clip(x * 127.5 + 128, 0, 255))`` (-1 -> 0.5 -> 0, 1 -> 255), so that
    outputs compare bit for bit with theirs.
    """
    if images.ndim not in (3, 4):
        raise ValueError(f"to_uint8 wants [N, C, H, W] or [C, H, W] images, got shape {tuple(images.shape)}")
    x = (images.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    x = x.movedim(-3, -1)
    return x.cpu().numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W, C]`` (or ``[H, W, C]``, or grey ``[H, W]``) -> float32 ``[N, C, H, W]`` in [-1, 1]."""
    a = np.asarray(images)
    if a.dtype != np.uint8:
        raise ValueError(f"from_uint8 wants uint8 pixels, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"from_uint8 wants [N, H, W, C], [H, W, C] or [H, W], got shape {a.shape}")
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:  # e.g. np.asarray(PIL image); torch wants writable memory
        a = a.copy()
    return torch.from_numpy(a).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1


def to_8bit_mode(image: Image.Image, channels: int = 3, background: Sequence[int] = (255, 255, 255)) -> Image.Image:
    """Any PIL image -> 8-bit ``RGB`` (``channels=3``) or ``L`` (``channels=1``), upright.

    The EXIF orientation is applied; 16-bit grey (modes ``I;16*`` and ``I``) is scaled as
    ``round(v * 255 / 65535)``; float images (mode ``F``) are taken as 0..255 and clipped; transparency
    (RGBA, LA, palette images with a transparent colour) is composited over ``background``; CMYK and the rest
    are converted by Pillow.

    Raises:
        ValueError: a float image with NaN or infinite pixels.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16") or image.mode == "I":
        a = np.asarray(image).astype(np.float64)
        image = Image.fromarray(np.clip(np.rint(a * 255 / 65535), 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        a = np.asarray(image)
        bad = int((~np.isfinite(a)).sum())
        if bad:
            raise ValueError(f"a float image with {bad} of {a.size} pixels NaN or infinite")
        image = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = image.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, tuple(int(v) for v in background) + (255,))
        image = Image.alpha_composite(bg, rgba)
    return image.convert("RGB" if channels == 3 else "L")


def save_image(path: str | os.PathLike, image: np.ndarray | torch.Tensor) -> Path:
    """Write one image atomically; format from the extension (``.png``, ``.jpg``, ``.webp``).

    Args:
        image: uint8 ``[H, W, C]`` (C = 1 or 3), or a float tensor ``[C, H, W]`` / ``[1, C, H, W]`` in [-1, 1].
    """
    if isinstance(image, torch.Tensor):
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        image = to_uint8(image)
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] not in (1, 3) or a.dtype != np.uint8:
        raise ValueError(f"save_image wants uint8 [H, W, 1 or 3], got {a.dtype} {a.shape}")
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{str(path)!r}: unknown image file extension {path.suffix!r}; use one of "
                         f"{', '.join(IMAGE_FORMATS)}")  # fmt: skip
    pil = Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")
    with atomic_path(path) as tmp:
        pil.save(tmp, format=fmt)
    return path


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB ``[H, W, 3]``, as :func:`to_8bit_mode` makes it: EXIF orientation applied,
    16-bit grey scaled to 8 bits, transparency composited over white.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an image Pillow can read (or a float image with NaN or infinite pixels).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {str(path)!r}")
    try:
        with Image.open(path) as im:
            return np.asarray(to_8bit_mode(im, 3))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 0) -> np.ndarray:
    """Tile uint8 ``[N, H, W, C]`` images row-major into one ``[rows*H, cols*W, C]`` image.

    ``cols`` defaults to ``ceil(sqrt(N))``; empty cells are black; ``pad`` pixels of black between cells.
    """
    a = np.asarray(images)
    if a.ndim != 4:
        raise ValueError(f"make_grid wants [N, H, W, C] images, got shape {a.shape}")
    n, h, w, c = a.shape
    if n == 0:
        raise ValueError("make_grid needs at least one image")
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), dtype=a.dtype)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, k * (w + pad) : k * (w + pad) + w] = a[i]
    return grid


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 30, min_height: int = 256) -> Path:
    """Write uint8 frames ``[T, H, W, C]`` (RGB or grey) as an MP4 (OpenCV, mp4v), atomically.

    Small frames are enlarged by an integer factor (nearest neighbour) to at least ``min_height`` pixels, so
    that players show something visible at 64x64.
    """
    import cv2

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"write_video wants uint8 frames [T, H, W, C] with T >= 1, got {frames.dtype} "
                         f"{frames.shape}")  # fmt: skip
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"{str(path)!r}: videos are written as .mp4, got extension {path.suffix!r}")
    h, w = frames.shape[1:3]
    scale = max(1, min_height // h)
    size = (w * scale, h * scale)
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise OSError(f"OpenCV could not open an MP4 writer for {path}")
        try:
            for f in frames:
                if f.shape[2] == 1:
                    f = np.repeat(f, 3, axis=2)
                f = cv2.resize(f, size, interpolation=cv2.INTER_NEAREST)
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path
