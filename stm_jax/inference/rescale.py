"""Segmenting at a smaller size than the input's: frames down, masks back up (`inference.downscale`).

    size = fitting_size(height, width, fits)          # the largest stride-16 size that fits
    small = downscale_frame(frame, size)              # uint8, bilinear
    labels0 = downscale_labels(mask, size)            # ids, nearest
    labels = upscale_probs(probs, (height, width))    # [h, w, K] -> [H, W] ids

Frames are resized with PyTorch's bilinear (align_corners=False, no antialias; the same weights as
`stm_jax.model.layers.resize_bilinear`), in numpy by two-tap gathers so a 4K frame costs
milliseconds on the host. Masks come back by resizing the probabilities bilinearly and taking the
argmax, not by nearest-neighbour on the labels: the model's own output is a bilinear x4 of its
logits, so this continues it, and object boundaries stay smooth instead of showing the small grid
as stair steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

STRIDE = 16


def fitting_size(height: int, width: int, fits: Callable[[int, int], bool]) -> tuple[int, int]:
    """The largest (h, w) with h, w multiples of 16 at the frame's aspect ratio, no larger than
    (height, width), for which fits(h, w); None if not even 16 pixels high does."""
    for rows in range(max(1, height // STRIDE), 0, -1):
        h = rows * STRIDE
        w = max(STRIDE, int(width * h / height / STRIDE + 0.5) * STRIDE)  # half up
        if fits(h, w):
            return h, w
    return None


def _taps(in_size: int, out_size: int):
    """PyTorch bilinear (align_corners=False): source indices i0, i1 and the weight of i1."""
    src = np.maximum((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, (src - i0).astype(np.float32)


def resize_bilinear_np(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of [H, W, C] to size (h, w), float32."""
    r0, r1, rl = _taps(x.shape[0], size[0])
    c0, c1, cl = _taps(x.shape[1], size[1])
    x = x.astype(np.float32, copy=False)
    rows = x[r0] * (1 - rl)[:, None, None] + x[r1] * rl[:, None, None]
    return rows[:, c0] * (1 - cl)[None, :, None] + rows[:, c1] * cl[None, :, None]


def downscale_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 [H, W, 3] frame at size (h, w), bilinear, rounded back to uint8."""
    if tuple(frame.shape[:2]) == tuple(size):
        return frame
    return np.clip(np.rint(resize_bilinear_np(frame, size)), 0, 255).astype(np.uint8)


def downscale_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Object ids [H, W] at size (h, w), nearest (PyTorch's 'nearest': floor(dst * in / out))."""
    labels = np.asarray(labels)
    rows = np.minimum((np.arange(size[0]) * labels.shape[0]) // size[0], labels.shape[0] - 1)
    cols = np.minimum((np.arange(size[1]) * labels.shape[1]) // size[1], labels.shape[1] - 1)
    return labels[rows[:, None], cols[None, :]]


def upscale_probs(probs: np.ndarray, size: tuple[int, int], objects: int | None = None):
    """[h, w, K] probabilities -> [H, W] uint8 ids: bilinear to `size`, then argmax. Only the
    background and the first `objects` slots are resized (the padded slots are never chosen)."""
    probs = np.asarray(probs)
    if objects is not None:
        probs = probs[..., : objects + 1]
    return np.argmax(resize_bilinear_np(probs, size), axis=-1).astype(np.uint8)


def upscale_probs_full(probs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[h, w, K] probabilities at `size` [H, W, K] float32 (bilinear), for return_probs callers."""
    return resize_bilinear_np(np.asarray(probs), size)


def downscaled_task(task, size: tuple[int, int]):
    """A `VideoTask` (stm_jax.inference.scheduler) whose frames, given masks and corrections are
    at `size`."""

    def loader(frame):
        return lambda: downscale_frame(frame() if callable(frame) else frame, size)

    given = {
        index: (downscale_labels(labels, size), ids)
        for index, (labels, ids) in (task.given_labels or {}).items()
    }
    corrections = {
        index: downscale_labels(labels, size) for index, labels in (task.corrections or {}).items()
    }
    return dataclasses.replace(
        task,
        frames=[loader(frame) for frame in task.frames],
        first_labels=downscale_labels(task.first_labels, size),
        given_labels=given or None,
        corrections=corrections or None,
    )
