"""Side-by-side sheets: sampled frames as rows, columns frame | prediction (| ground truth), each row
labelled with its frame number. The jobs write one per sequence (`<name>_sheet.png`) and training
logs them to TensorBoard for its held-out videos.
"""

from __future__ import annotations

import cv2
import numpy as np

from stm_jax.evaluation.overlay import (
    MAX_DISPLAY_WIDTH,
    MIN_DISPLAY_WIDTH,
    caption,
    display_size,
    outline_width,
    overlay,
    resize_pair,
)
from stm_jax.evaluation.overlay_colours import choose_colours

GAP = 4  # pixels between tiles
BACKGROUND = (32, 32, 32)  # sheet background and header strip


def sampled_rows(count: int, rows: int) -> np.ndarray:
    """Up to `rows` frame indices evenly spread over `count` frames, first and last included."""
    return np.unique(np.linspace(0, count - 1, min(count, rows)).round().astype(int))


def _header(width: int, titles: list[str], tile_w: int, title: str) -> np.ndarray:
    strip = np.full((28, width, 3), BACKGROUND, np.uint8)
    for column, text in enumerate(titles):
        x = column * (tile_w + GAP) + 6
        if column == 0 and title:
            text = f"{title}: {text}"
        cv2.putText(
            strip, text, (x, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (235, 235, 235), 1, cv2.LINE_AA
        )
    return strip


def side_by_side(
    frames: np.ndarray,
    predictions: np.ndarray,
    ground_truth: np.ndarray | None = None,
    frame_numbers=None,
    colours: np.ndarray | None = None,
    rows: int = 6,
    max_width: int = MAX_DISPLAY_WIDTH // 2,
    min_width: int = MIN_DISPLAY_WIDTH,
    title: str = "",
) -> np.ndarray:
    """One image: for `rows` sampled frames, the frame, its prediction overlaid, and its ground
    truth overlaid (when given), left to right; "frame t" on each row's first tile.

    Args:
      frames: (T, H, W, 3) uint8 RGB.
      predictions: (T, H, W) predicted ids.
      ground_truth: (T, H, W) annotated ids, or None (two columns).
      frame_numbers: the number printed per frame (default 0..T-1).
      colours: (256, 3) colour table (default: chosen from the ground truth, else the prediction).
      rows: at most this many frames.
      max_width, min_width: tiles wider than max_width are shrunk, narrower than min_width
        enlarged by a whole factor (`display_size`).
      title: printed in the header before the first column's name (e.g. the sequence name).

    Returns:
      (header + rows x tile height, columns x tile width, 3) uint8, with GAP-pixel gutters.
    """
    frames = np.asarray(frames, np.uint8)
    if len(frames) != len(predictions) or (
        ground_truth is not None and len(ground_truth) != len(frames)
    ):
        raise ValueError("frames, predictions and ground truth need one entry per frame")
    numbers = list(range(len(frames))) if frame_numbers is None else list(frame_numbers)
    if colours is None:
        colours = choose_colours(frames, predictions if ground_truth is None else ground_truth)
    tile_h, tile_w = display_size(*frames.shape[1:3], max_width, min_width)
    thickness = outline_width(tile_w)
    columns = [None, predictions] + ([] if ground_truth is None else [ground_truth])
    titles = ["frame", "prediction", "ground truth"][: len(columns)]
    width = len(columns) * tile_w + (len(columns) - 1) * GAP
    picks = sampled_rows(len(frames), rows)
    body = np.full((len(picks) * (tile_h + GAP), width, 3), BACKGROUND, np.uint8)
    for r, t in enumerate(picks):
        y = r * (tile_h + GAP)
        for c, labels in enumerate(columns):
            frame, mask = resize_pair(
                frames[t], None if labels is None else labels[t], (tile_h, tile_w)
            )
            tile = frame if mask is None else overlay(frame, mask, colours, thickness=thickness)
            if c == 0:
                tile = caption(tile, f"frame {numbers[t]}")
            x = c * (tile_w + GAP)
            body[y : y + tile_h, x : x + tile_w] = tile
    return np.concatenate([_header(width, titles, tile_w, title), body[:-GAP]], axis=0)
