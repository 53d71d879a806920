"""Reading frames and label masks, writing DAVIS palette PNGs (atomically).

Conventions (documented for users in the README):
* Frames are returned as uint8 RGB (H, W, 3). Grayscale frames are replicated to RGB, RGBA frames lose
  their alpha channel, 16-bit frames are scaled to 8 bits (>> 8). Anything else is refused.
* Label masks are returned as uint8 (H, W) object ids. Palette ('P') PNGs give their indices, 8-bit
  grayscale ('L') PNGs their values, 16-bit grayscale PNGs their values if all are <= 255. RGB(A) masks are
  refused: their colours are ambiguous (save them as palette PNGs instead).
Every failure raises `ImageFileError` naming the file and what to do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


class ImageFileError(ValueError):
    """An image or mask file that cannot be used; the message names the file and the fix."""


def _davis_palette() -> list[int]:
    """The PASCAL VOC / DAVIS colour map (bit-interleaved), 256 RGB triples flattened."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette.extend((r, g, b))
    return palette


DAVIS_PALETTE: list[int] = _davis_palette()


def _open(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"{path}: file not found. Check the path and the dataset layout.")
    try:
        image = Image.open(path)
        image.load()
    except Exception as error:  # PIL raises many types for broken files
        raise ImageFileError(
            f"{path}: cannot be read as an image ({error}). Re-export or re-download this file."
        ) from error
    return image


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Reads a frame as uint8 RGB (H, W, 3); see the module docstring for accepted modes."""
    image = _open(path)
    mode = image.mode
    if mode in ("RGB", "L", "P", "RGBA", "LA", "CMYK", "YCbCr"):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.int64)
        if array.max(initial=0) > 65535 or array.min(initial=0) < 0:
            raise ImageFileError(f"{path}: 32-bit frame values out of range; save frames as 8-bit.")
        gray = (array >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    raise ImageFileError(
        f"{path}: image mode {mode!r} is not supported for frames; save it as 8-bit RGB JPEG or PNG."
    )


def read_label_mask(path: str | os.PathLike) -> np.ndarray:
    """Reads an object-id mask as uint8 (H, W); see the module docstring for accepted modes."""
    image = _open(path)
    mode = image.mode
    if mode in ("P", "L"):
        return np.asarray(image, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.int64)
        if array.min(initial=0) < 0 or array.max(initial=0) > 255:
            raise ImageFileError(
                f"{path}: 16-bit mask has ids outside 0..255; save it as an 8-bit palette PNG."
            )
        return array.astype(np.uint8)
    if mode == "1":
        return np.asarray(image, dtype=np.uint8)
    raise ImageFileError(
        f"{path}: mask mode {mode!r} is ambiguous (colours, not object ids); save it as an 8-bit "
        "palette ('P') PNG whose indices are the object ids (0 = background)."
    )


def write_palette_png(path: str | os.PathLike, labels: np.ndarray) -> None:
    """Writes an (H, W) label map as a DAVIS palette PNG, atomically (temp file + rename)."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: labels must be (H, W), got shape {labels.shape}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError(f"{path}: labels must lie in 0..255")
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(DAVIS_PALETTE)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png.tmp")
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_rgb(path: str | os.PathLike, frame: np.ndarray, quality: int = 95) -> None:
    """Writes a uint8 RGB frame (JPEG by suffix, else PNG), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    try:
        Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(tmp, format=fmt, quality=quality)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
