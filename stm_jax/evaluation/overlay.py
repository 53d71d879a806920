"""Visual checks of predictions: overlay animations (GIF, or MP4 with imageio-ffmpeg) and contact sheets.

Overlay rule: every pixel with object id k > 0 is blended as (1 - alpha) * frame + alpha * colour(k),
and the object's contour (pixels whose id differs from a 4-neighbour, on the object side) is drawn in
colour(k) at full opacity; colour(k) is the DAVIS palette entry k (the colours of the PNG masks).
GIF is the default because it needs no ffmpeg; GIF frames are quantised to 256 colours, so read-back
pixels can differ slightly from the overlay arrays.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np

from stm_jax.io.atomic import atomic_path
from stm_jax.io.images import DAVIS_PALETTE, read_label_mask, read_rgb, write_rgb

PALETTE = np.array(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)


def contours(labels: np.ndarray) -> np.ndarray:
    """Object-side contour pixels: id > 0 and different from one of the 4 neighbours (or the border).

    Args:
      labels: (H, W) integer ids.

    Returns:
      (H, W) bool.
    """
    padded = np.pad(labels, 1, mode="constant", constant_values=0)
    centre = padded[1:-1, 1:-1]
    differs = (
        (centre != padded[:-2, 1:-1])
        | (centre != padded[2:, 1:-1])
        | (centre != padded[1:-1, :-2])
        | (centre != padded[1:-1, 2:])
    )
    return differs & (centre > 0)


def overlay(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blends DAVIS palette colours of `labels` over `frame` and draws contours (module docstring).

    Args:
      frame: (H, W, 3) uint8 RGB.
      labels: (H, W) integer ids (0 = background, left untouched).
      alpha: opacity of the fill.

    Returns:
      (H, W, 3) uint8 RGB.
    """
    if frame.shape[:2] != labels.shape:
        raise ValueError(f"frame {frame.shape[:2]} and labels {labels.shape} differ in size")
    labels = np.asarray(labels).astype(np.uint8)
    colours = PALETTE[labels]
    out = frame.astype(np.float32)
    inside = labels > 0
    out[inside] = (1 - alpha) * out[inside] + alpha * colours[inside]
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    edge = contours(labels)
    out[edge] = colours[edge]
    return out


def overlay_sequence(frames: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """`overlay` on every frame. Args: (T, H, W, 3) frames, (T, H, W) labels. Returns (T, H, W, 3)."""
    if len(frames) != len(labels):
        raise ValueError(f"{len(frames)} frames but {len(labels)} label maps")
    return np.stack([overlay(f, m, alpha) for f, m in zip(frames, labels, strict=True)])


def has_ffmpeg() -> bool:
    """Whether imageio can write MP4 (the imageio-ffmpeg package is installed)."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def write_animation(path: str | Path, frames: np.ndarray, fps: float = 10.0) -> Path:
    """Writes (T, H, W, 3) uint8 frames as a looping GIF, or an MP4 if `path` ends in .mp4.

    Args:
      path: output file; the suffix picks the format (.gif or .mp4).
      frames: the images.
      fps: frames per second.

    Returns:
      The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames, dtype=np.uint8)
    suffix = path.suffix.lower()
    if suffix == ".mp4" and not has_ffmpeg():
        raise RuntimeError(f"{path}: MP4 needs `pip install imageio-ffmpeg`; or write a .gif")
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"{path}: unsupported animation format {suffix!r}; use .gif or .mp4")
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".gif":
            # duration is per frame in ms; loop=0 loops forever.
            iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            iio.imwrite(tmp, frames, extension=".mp4", fps=fps)
    return path


def contact_sheet(
    images: np.ndarray, columns: int = 4, max_tiles: int = 12, tile_width: int = 320
) -> np.ndarray:
    """A grid of evenly sampled images (first and last always included), resized to `tile_width`.

    Args:
      images: (T, H, W, 3) uint8.
      columns: tiles per row.
      max_tiles: at most this many tiles.
      tile_width: width of each tile in pixels (height keeps the aspect ratio).

    Returns:
      (rows * tile_h, columns * tile_width, 3) uint8, black where the grid is not full.
    """
    count = len(images)
    picks = np.unique(np.linspace(0, count - 1, min(count, max_tiles)).round().astype(int))
    height, width = images.shape[1:3]
    tile_h = max(1, round(height * tile_width / width))
    rows = -(-len(picks) // columns)
    sheet = np.zeros((rows * tile_h, columns * tile_width, 3), dtype=np.uint8)
    for i, index in enumerate(picks):
        # INTER_AREA averages when shrinking, which keeps thin contours visible.
        tile = cv2.resize(images[index], (tile_width, tile_h), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, columns)
        sheet[r * tile_h : (r + 1) * tile_h, c * tile_width : (c + 1) * tile_width] = tile
    return sheet


def write_sequence_overlay(
    outdir: str | Path,
    name: str,
    frames: np.ndarray,
    labels: np.ndarray,
    fmt: str = "gif",
    fps: float = 10.0,
    alpha: float = 0.5,
) -> tuple[Path, Path]:
    """Writes `<outdir>/<name>.<fmt>` (overlay animation) and `<outdir>/<name>_sheet.png`.

    Args:
      outdir: output folder.
      name: sequence name.
      frames: (T, H, W, 3) uint8 RGB.
      labels: (T, H, W) ids.
      fmt: 'gif', 'mp4', or 'auto' (mp4 if imageio-ffmpeg is installed, else gif).
      fps: animation frame rate.
      alpha: fill opacity.

    Returns:
      (animation path, contact sheet path).
    """
    if fmt == "auto":
        fmt = "mp4" if has_ffmpeg() else "gif"
    images = overlay_sequence(frames, labels, alpha)
    outdir = Path(outdir)
    animation = write_animation(outdir / f"{name}.{fmt}", images, fps)
    sheet = outdir / f"{name}_sheet.png"
    write_rgb(sheet, contact_sheet(images))
    return animation, sheet


def write_davis_overlays(
    gt_root: str | Path,
    pred_root: str | Path,
    sequences: Sequence[str],
    outdir: str | Path,
    resolution: str = "480p",
    fmt: str = "gif",
) -> list[Path]:
    """Overlays predictions on DAVIS frames (`<gt_root>/JPEGImages/<res>/<seq>/*.jpg`).

    Args:
      gt_root: DAVIS root.
      pred_root: predictions `<pred_root>/<seq>/<frame>.png`.
      sequences: names to render.
      outdir: output folder.
      resolution: '480p' or 'Full-Resolution'.
      fmt: see `write_sequence_overlay`.

    Returns:
      The animation paths written.
    """
    written = []
    for name in sequences:
        jpgs = sorted((Path(gt_root) / "JPEGImages" / resolution / name).glob("*.jpg"))
        pairs = [(j, Path(pred_root) / name / f"{j.stem}.png") for j in jpgs]
        pairs = [(j, p) for j, p in pairs if p.is_file()]
        if not pairs:
            continue
        frames = np.stack([read_rgb(j) for j, _ in pairs])
        labels = np.stack([read_label_mask(p) for _, p in pairs])
        written.append(write_sequence_overlay(outdir, name, frames, labels, fmt)[0])
    return written
