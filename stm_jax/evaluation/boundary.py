"""Boundary maps and structuring elements of the DAVIS boundary F-measure, without scikit-image.

Definitions (identical to davisvideochallenge/davis2017-evaluation `davis2017/metrics.py`):
* `seg2bmap(seg)`: a pixel is a boundary pixel if its value differs (XOR) from its east, south or
  south-east neighbour. Neighbours outside the image are *not* compared: the last row compares only
  with the east neighbour, the last column only with the south neighbour, and the bottom-right pixel
  is never a boundary. The map is 1 px wide and offset half a pixel towards the origin, so an object
  touching the image border has no boundary along that border (on any of the four sides).
* `disk(r)`: scikit-image's `skimage.morphology.disk(r)` (default `strict_radius=True`, no
  decomposition): the (2r+1) x (2r+1) uint8 footprint of offsets (dy, dx) with dx^2 + dy^2 <= r^2.
* `boundary_radius(shape, bound_th)`: the tolerance radius in pixels, `ceil(bound_th * sqrt(H^2 +
  W^2))` for bound_th < 1 (480x854 -> 8, 1080x1920 -> 18), or `bound_th` itself when bound_th >= 1
  (as official).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def boundary_radius(shape: tuple[int, int], bound_th: float = 0.008) -> int:
    """Tolerance radius of the boundary F-measure.

    Args:
      shape: (H, W) of the full frame (always the full frame, never a crop).
      bound_th: fraction of the image diagonal (< 1) or an absolute radius in pixels (>= 1).

    Returns:
      The radius r in pixels; the dilation footprint is `disk(r)`.
    """
    if bound_th >= 1:
        return int(bound_th)
    # float64 like the official np.ceil(bound_th * np.linalg.norm(shape)).
    return int(math.ceil(bound_th * float(np.linalg.norm(np.asarray(shape[:2], dtype=np.float64)))))


@lru_cache(maxsize=16)
def _disk_cached(radius: int) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(offsets, offsets)
    footprint = (dx**2 + dy**2 <= radius**2).astype(np.uint8)
    footprint.setflags(write=False)
    return footprint


def disk(radius: int) -> np.ndarray:
    """A disk footprint equal to `skimage.morphology.disk(radius)` (uint8, (2r+1, 2r+1), read-only).

    Args:
      radius: non-negative integer radius.

    Returns:
      uint8 array with 1 where dx^2 + dy^2 <= radius^2.
    """
    if radius < 0:
        raise ValueError(f"disk radius must be >= 0, got {radius}")
    return _disk_cached(int(radius))


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """1-px boundary map of binary masks, exactly the official `_seg2bmap` (see module docstring).

    Args:
      seg: (..., H, W) masks; nonzero = foreground. Leading axes are independent masks.

    Returns:
      bool array of the same shape; True on boundary pixels.
    """
    seg = np.asarray(seg).astype(bool, copy=False)
    boundary = np.zeros(seg.shape, dtype=bool)
    if seg.shape[-1] == 0 or seg.shape[-2] == 0:
        return boundary
    # Interior pixels (not in the last row or column) compare with east, south and south-east.
    centre = seg[..., :-1, :-1]
    boundary[..., :-1, :-1] = (
        (centre ^ seg[..., :-1, 1:]) | (centre ^ seg[..., 1:, :-1]) | (centre ^ seg[..., 1:, 1:])
    )
    # Last row: east neighbour only; last column: south neighbour only; bottom-right: never.
    boundary[..., -1, :-1] = seg[..., -1, :-1] ^ seg[..., -1, 1:]
    boundary[..., :-1, -1] = seg[..., :-1, -1] ^ seg[..., 1:, -1]
    return boundary
