"""The copy-the-first-frame baseline: frame 0's mask predicted for every frame, the floor any
tracker must beat. The one copy used by in-training evaluation and the demo."""

from __future__ import annotations

import numpy as np

from stm_jax.io.images import VOID_LABEL


def copy_first_frame(first_labels: np.ndarray, num_frames: int) -> np.ndarray:
    """[H, W] frame-0 ids (void counts as background) -> [num_frames, H, W] uint8 predictions."""
    first = np.where(first_labels == VOID_LABEL, 0, first_labels).astype(np.uint8)
    return np.repeat(first[None], num_frames, axis=0)
