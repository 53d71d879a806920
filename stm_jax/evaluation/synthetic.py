"""Synthetic label-map sequences (random moving ellipses) for metric tests and speed benchmarks.

Not a data set: these exist so tests and `benchmarks/metrics_speed.py` can exercise the scorer on
DAVIS-like masks (several objects, smooth motion, occasional occlusion) without downloading
anything.
"""

from __future__ import annotations

import cv2
import numpy as np


def blob_sequence(
    rng: np.random.Generator, frames: int, height: int, width: int, num_objects: int
) -> np.ndarray:
    """Ground-truth-like label maps: each object is one or two ellipses drifting over time.

    Every object is drawn in frame 0 (later objects may occlude earlier ones elsewhere, and objects
    may leave the frame).

    Args:
      rng: random generator (the sequence is a pure function of its state).
      frames: T.
      height: H.
      width: W.
      num_objects: K; ids are 1..K.

    Returns:
      (T, H, W) uint8 label maps.
    """
    labels = np.zeros((frames, height, width), dtype=np.uint8)
    shapes = []
    for k in range(1, num_objects + 1):
        for _ in range(int(rng.integers(1, 3))):
            centre = rng.uniform([0.15 * width, 0.15 * height], [0.85 * width, 0.85 * height])
            axes = rng.uniform([0.04 * width, 0.04 * height], [0.2 * width, 0.2 * height])
            velocity = rng.normal(0.0, 0.01 * max(height, width), size=2)
            angle = float(rng.uniform(0, 180))
            shapes.append((k, centre, axes, velocity, angle))
    for t in range(frames):
        for k, centre, axes, velocity, angle in shapes:
            cx, cy = centre + t * velocity
            cv2.ellipse(
                labels[t],
                (int(round(cx)), int(round(cy))),
                (max(int(axes[0]), 1), max(int(axes[1]), 1)),
                angle + 3 * t,
                0,
                360,
                int(k),
                -1,
            )
    return labels


def perturb(
    rng: np.random.Generator, labels: np.ndarray, max_shift: int = 4, noise: float = 0.002
) -> np.ndarray:
    """A prediction-like copy: per-frame random shifts, some eroded/dilated objects, label noise.

    Args:
      rng: random generator.
      labels: (T, H, W) uint8 label maps.
      max_shift: largest shift in pixels along each axis.
      noise: fraction of pixels set to a random id (scattered false positives/negatives).

    Returns:
      (T, H, W) uint8 label maps with the same ids.
    """
    out = np.empty_like(labels)
    kernel = np.ones((5, 5), np.uint8)
    for t, frame in enumerate(labels):
        dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
        moved = np.roll(frame, (dy, dx), axis=(0, 1))
        op = int(rng.integers(0, 3))
        if op == 1:
            moved = cv2.dilate(moved, kernel)
        elif op == 2:
            moved = cv2.erode(moved, kernel)
        noise = rng.random(frame.shape) < noise
        moved[noise] = rng.integers(0, int(labels.max(initial=0)) + 1, size=int(noise.sum()))
        out[t] = moved
    return out
