"""TensorBoard images of in-training evaluations: for the first held-out videos, a side-by-side sheet
(frame | prediction | ground truth, frame numbers on the rows), so a run shows how its masks look,
not only its J&F.
"""

from __future__ import annotations

import numpy as np

from stm_jax.evaluation.side_by_side import side_by_side

ROWS = 4  # frames per sheet: enough to see tracking over time, small enough to log every eval
TILE_WIDTH = 192  # narrower videos are enlarged to at least this (a 96-px video: 2x)


def prediction_sheets(videos, predictions: dict, count: int) -> dict[str, np.ndarray]:
    """{'predictions/<name>': sheet} for the first `count` videos that have predictions.

    Args:
      videos: [(name, frames [T, H, W, 3], labels [T, H, W])] (`load_eval_videos`).
      predictions: {name: [T, H, W] predicted ids} (`evaluate(..., return_predictions=True)`).
      count: at most this many videos (0 = none).
    Returns:
      Tag -> (H, W, 3) uint8 image.
    """
    sheets = {}
    for name, frames, labels in videos:
        if len(sheets) >= count:
            break
        if name in predictions:
            sheet = side_by_side(
                frames, predictions[name], labels, rows=ROWS, min_width=TILE_WIDTH, title=name
            )
            sheets[f"predictions/{name}"] = sheet
    return sheets
