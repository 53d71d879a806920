"""Overlays of predictions on their frames: animations (GIF, or MP4 with imageio-ffmpeg) and
side-by-side sheets, written per sequence by the demo, segment, evaluate and score jobs.

Overlay rule: every pixel with object id k (0 < k < 255) becomes
(1 - alpha) * grey(frame) + alpha * colour(k) (grey: the frame's luma, so the fill shows colour(k) and
the frame's texture, not a mix of two colours); the object's outline (its pixels within `thickness` of a
pixel with another id, or of the border) is drawn in colour(k) at full opacity, and the background
pixels just outside it in black, so the outline reads on light and dark scenes alike. colour(k) comes
from `overlay_colours.choose_colours` (vivid colours unlike the object and the scene; not the masks'
DAVIS palette). Void (255) and background pixels keep the frame. Small videos are enlarged for
viewing (`display_size`) before drawing, so outlines stay thin and sharp. GIF frames are quantised to
256 colours, so read-back pixels can differ slightly from the overlay arrays.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np

from stm_jax.evaluation.overlay_colours import VOID, choose_colours, default_colours
from stm_jax.io.atomic import atomic_path
from stm_jax.io.images import read_label_mask, read_rgb, write_rgb

MIN_DISPLAY_WIDTH = 320  # narrower videos are enlarged by a whole factor (96 px -> 384 px)
MAX_DISPLAY_WIDTH = 640  # wider ones are shrunk to this width in sheets


def display_size(
    height: int, width: int, max_width: int | None = None, min_width: int = MIN_DISPLAY_WIDTH
) -> tuple[int, int]:
    """(height, width) to show a frame at: frames narrower than `min_width` enlarged by the
    smallest whole factor that reaches it; frames wider than `max_width` (if given) shrunk to it."""
    if width < min_width:
        factor = -(-min_width // width)
        return height * factor, width * factor
    if max_width and width > max_width:
        return max(1, round(height * max_width / width)), max_width
    return height, width


def resize_pair(frame: np.ndarray, labels: np.ndarray | None, size: tuple[int, int]):
    """(frame, labels) at `size` (H, W): the frame smoothly, the labels by nearest neighbour."""
    height, width = size
    if frame.shape[:2] == (height, width):
        return frame, labels
    shrink = width < frame.shape[1]
    frame = cv2.resize(
        frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
    if labels is not None:
        labels = cv2.resize(
            np.asarray(labels, np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
        )
    return frame, labels


def outline_width(display_width: int) -> int:
    """Outline thickness for an image of this width: 1 pixel up to 300 wide, 2 up to 500, ..."""
    return max(1, round(display_width / 200))


def _near_other_id(labels: np.ndarray, radius: int) -> np.ndarray:
    """Pixels with a different id (or the image border) within `radius` (square window)."""
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    padded = cv2.copyMakeBorder(labels, radius, radius, radius, radius, cv2.BORDER_REPLICATE)
    high = cv2.dilate(padded, kernel)[radius:-radius, radius:-radius]
    low = cv2.erode(padded, kernel)[radius:-radius, radius:-radius]
    border = np.zeros(labels.shape, bool)
    border[:radius], border[-radius:], border[:, :radius], border[:, -radius:] = (True,) * 4
    return (high != low) | border


def outlines(labels: np.ndarray, thickness: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(edge, halo): object pixels within `thickness` of another id or the border, and background
    pixels next to an object (1 pixel wide). Both (H, W) bool."""
    labels = np.asarray(labels, np.uint8)
    objects = (labels > 0) & (labels != VOID)
    edge = _near_other_id(labels, max(1, thickness)) & objects
    grown = cv2.dilate(objects.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    halo = grown & (labels == 0)
    return edge, halo


def overlay(
    frame: np.ndarray,
    labels: np.ndarray,
    colours: np.ndarray | None = None,
    alpha: float = 0.5,
    thickness: int = 1,
) -> np.ndarray:
    """Draws `labels` over `frame` at the frame's size (module docstring).

    Args:
      frame: (H, W, 3) uint8 RGB.
      labels: (H, W) integer ids (0 = background and 255 = void are left untouched).
      colours: (256, 3) uint8 table by id (`choose_colours`); default `default_colours()`.
      alpha: opacity of the fill.
      thickness: outline width in pixels.

    Returns:
      (H, W, 3) uint8 RGB.
    """
    if frame.shape[:2] != np.shape(labels):
        raise ValueError(f"frame {frame.shape[:2]} and labels {np.shape(labels)} differ in size")
    labels = np.asarray(labels).astype(np.uint8)
    table = default_colours() if colours is None else np.asarray(colours, np.uint8)
    colour = table[labels]
    inside = (labels > 0) & (labels != VOID)
    out = frame.astype(np.float32)
    # Under the fill the frame is shown in grey, so the overlay colour is what one sees there
    # (a blend with a strongly coloured object would give a muddy mix of both).
    grey = out[inside] @ np.array([0.299, 0.587, 0.114], np.float32)
    out[inside] = (1 - alpha) * grey[:, None] + alpha * colour[inside]
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    edge, halo = outlines(labels, thickness)
    out[halo] = 0
    out[edge] = colour[edge]
    return out


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of `image` with `text` in white on a dark box at its top left (sized to the image)."""
    out = np.ascontiguousarray(image, np.uint8).copy()
    scale = max(0.35, min(out.shape[1] / 640.0, 0.8))
    thickness = 1 if scale < 0.6 else 2
    (text_w, text_h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, text_h // 3)
    box = out[: text_h + base + 2 * pad, : text_w + 2 * pad]
    box[:] = (0.35 * box).astype(np.uint8)  # darken, so the scene still shows through
    cv2.putText(
        out,
        text,
        (pad, pad + text_h),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return out


def overlay_sequence(
    frames: np.ndarray,
    labels: np.ndarray,
    colours: np.ndarray | None = None,
    alpha: float = 0.5,
    numbered: bool = True,
) -> np.ndarray:
    """`overlay` on every frame at its display size, with "frame t" in the corner.

    Args:
      frames: (T, H, W, 3) uint8; labels: (T, H, W) ids.
      colours: colour table (default: `choose_colours(frames, labels)`).
      alpha: fill opacity.
      numbered: draw the frame index.

    Returns:
      (T, H', W', 3) uint8 at `display_size(H, W)`.
    """
    if len(frames) != len(labels):
        raise ValueError(f"{len(frames)} frames but {len(labels)} label maps")
    colours = choose_colours(frames, labels) if colours is None else colours
    size = display_size(*np.shape(frames)[1:3])
    thickness = outline_width(size[1])
    images = []
    for t, (frame, mask) in enumerate(zip(frames, labels, strict=True)):
        image = overlay(*resize_pair(frame, mask, size), colours, alpha, thickness)
        images.append(caption(image, f"frame {t}") if numbered else image)
    return np.stack(images)


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


def write_sequence_overlay(
    outdir: str | Path,
    name: str,
    frames: np.ndarray,
    labels: np.ndarray,
    ground_truth: np.ndarray | None = None,
    fmt: str = "gif",
    fps: float = 10.0,
) -> tuple[Path, Path]:
    """Writes `<outdir>/<name>.<fmt>` (the overlay animation) and `<outdir>/<name>_sheet.png`
    (sampled frames side by side: frame | prediction | ground truth when given).

    Args:
      outdir: output folder.
      name: sequence name.
      frames: (T, H, W, 3) uint8 RGB.
      labels: (T, H, W) predicted ids.
      ground_truth: (T, H, W) annotated ids, or None.
      fmt: 'gif', 'mp4', or 'auto' (mp4 if imageio-ffmpeg is installed, else gif).
      fps: animation frame rate.

    Returns:
      (animation path, sheet path).
    """
    from stm_jax.evaluation.side_by_side import side_by_side

    if fmt == "auto":
        fmt = "mp4" if has_ffmpeg() else "gif"
    # One colour per object for the whole sequence, in the animation and both sheet columns.
    colours = choose_colours(frames, labels if ground_truth is None else ground_truth)
    outdir = Path(outdir)
    animation = write_animation(
        outdir / f"{name}.{fmt}", overlay_sequence(frames, labels, colours), fps
    )
    sheet = outdir / f"{name}_sheet.png"
    write_rgb(sheet, side_by_side(frames, labels, ground_truth, colours=colours, title=name))
    return animation, sheet


def write_davis_overlays(
    gt_root: str | Path,
    pred_root: str | Path,
    sequences: Sequence[str],
    outdir: str | Path,
    resolution: str = "480p",
    fmt: str = "gif",
    merge_objects: bool = False,
) -> list[Path]:
    """Overlays predictions on DAVIS frames (`<gt_root>/JPEGImages/<res>/<seq>/*.jpg`), with the
    annotations (`Annotations/<res>/<seq>/*.png`) as the sheets' ground truth when every frame has one.

    Args:
      gt_root: DAVIS root.
      pred_root: predictions `<pred_root>/<seq>/<frame>.png`.
      sequences: names to render.
      outdir: output folder.
      resolution: '480p' or 'Full-Resolution'.
      fmt: see `write_sequence_overlay`.
      merge_objects: DAVIS-2016 scoring: every annotated id > 0 is one object.

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
        annotations = Path(gt_root) / "Annotations" / resolution / name
        truth = [annotations / f"{j.stem}.png" for j, _ in pairs]
        ground_truth = None
        if all(p.is_file() for p in truth):
            ground_truth = np.stack([read_label_mask(p) for p in truth])
            if merge_objects:
                ground_truth = (ground_truth > 0).astype(np.uint8)
        written.append(write_sequence_overlay(outdir, name, frames, labels, ground_truth, fmt)[0])
    return written
