"""DAVIS region (J) and boundary (F) measures per object per frame, and per-object statistics.

All host-side numpy (+ cv2.dilate); the definitions are exactly those of the official DAVIS 2017
toolkit (davisvideochallenge/davis2017-evaluation, `davis2017/metrics.py`, `davis2017/utils.py`):

* J (region similarity, Jaccard) of a predicted mask S and a ground-truth mask G:
  |S n G| / |S u G|, and J = 1 when the union is empty (object absent from both).
* F (boundary F-measure), tolerance `bound_th` = 0.008 of the image diagonal: B_S = seg2bmap(S), B_G
  = seg2bmap(G) (1-px boundaries, see `boundary.py`); each is dilated with `cv2.dilate` and
  `disk(r)`, r = ceil(0.008 * sqrt(H^2 + W^2)). Precision P = |B_S n dil(B_G)| / |B_S|, recall R =
  |B_G n dil(B_S)| / |B_G|. Edge cases: |B_S| = 0 < |B_G| -> P=1, R=0; |B_G| = 0 < |B_S| -> P=0,
  R=1; both 0 -> P=R=1. F = 2PR / (P + R), and F = 0 when P + R = 0.
* Per-object statistics over its evaluated frames (`db_statistics`): Mean = mean; Recall = fraction
  of frames with value > 0.5 (strictly); Decay = mean(first quarter) - mean(last quarter), where the
  quarter bins are values[ids[i] : ids[i+1] + 1] with ids = round(linspace(1, n, 5) + 1e-10) - 1
  (inclusive, overlapping edges; the +1e-10 makes halves round up as in the official code). The
  official code casts ids to uint8, which wraps for n > 256 frames and gives a wrong Decay there; we
  use int64 (identical for n <= 256, which covers every DAVIS sequence). With n = 0 all three are
  NaN.

Speed: every per-object operation after the label comparison runs on the object's crop (bounding box
of S u G plus one pixel), which is exact: the boundary maps are zero outside it and the dilation
only has to be read at boundary pixels, all of which lie inside it. Objects absent from both masks
cost two comparisons. Measured (benchmarks/metrics_speed.py, 480x854, 3 objects, one process):
both dilations of F run only on the GT boundary's box grown by the tolerance radius (exact, see
`_f_from_boundaries`), so scattered noise in the predictions costs little. Speed-ups vs
vos-benchmark are printed by benchmarks/metrics_speed.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from stm_jax.evaluation.boundary import boundary_radius, disk, seg2bmap

BOUND_TH = 0.008


def _f_from_boundaries(pred_b: np.ndarray, gt_b: np.ndarray, footprint: np.ndarray) -> float:
    """Boundary F-measure from two bool boundary maps of the same (crop) shape."""
    n_fg = int(np.count_nonzero(pred_b))
    n_gt = int(np.count_nonzero(gt_b))
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        # Both dilations are only ever read within r of the GT boundary (precision reads dil(B_G),
        # which is zero farther away; recall reads dil(B_S) at B_G pixels, which depends on B_S
        # within r of them), so both run on the GT boundary's box grown by r: exact, and small
        # even when noisy predictions spread over the whole frame. cv2.dilate's default border
        # never contributes to a dilation, as with the full frame.
        near = _grown_box(gt_b, footprint.shape[0] // 2)
        gt_near, pred_near = gt_b[near], pred_b[near]
        gt_dil = cv2.dilate(gt_near.view(np.uint8), footprint).view(bool)
        pred_dil = cv2.dilate(pred_near.view(np.uint8), footprint).view(bool)
        precision = np.count_nonzero(pred_near & gt_dil) / float(n_fg)
        recall = np.count_nonzero(gt_near & pred_dil) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _grown_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Bounding box of a non-empty `mask` grown by `margin` pixels on each side (clipped)."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    height, width = mask.shape
    return (
        slice(max(y - margin, 0), min(y + h + margin, height)),
        slice(max(x - margin, 0), min(x + w + margin, width)),
    )


def _object_crop(union: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of `union` grown by one pixel on each side (clipped), or None if it is empty.

    The one-pixel margin keeps seg2bmap exact on the crop: boundary pixels lie at most one pixel
    above or left of the object, and the margin rows/columns are zeros so the crop's own last
    row/column rule (compare with one neighbour only) gives the same answer as the full frame.
    """
    x, y, w, h = cv2.boundingRect(union.view(np.uint8))
    if w == 0 or h == 0:
        return None
    height, width = union.shape
    return (
        slice(max(y - 1, 0), min(y + h + 1, height)),
        slice(max(x - 1, 0), min(x + w + 1, width)),
    )


def frame_scores(
    gt: np.ndarray, pred: np.ndarray, num_objects: int, bound_th: float = BOUND_TH
) -> tuple[np.ndarray, np.ndarray]:
    """J and F of objects 1..num_objects in one frame (definitions in the module docstring).

    Args:
      gt: (H, W) integer ground-truth label map, void already mapped to background; ids outside
        1..num_objects are ignored (background for every object), as in the official toolkit.
      pred: (H, W) integer predicted label map, same shape.
      num_objects: number of objects K; object k is the mask `labels == k`.
      bound_th: boundary tolerance (fraction of the diagonal, or pixels if >= 1).

    Returns:
      (j, f): float64 arrays of shape (K,).
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"gt {gt.shape} and pred {pred.shape} must be equal (H, W) shapes")
    footprint = disk(boundary_radius(gt.shape, bound_th))
    j = np.ones(num_objects, dtype=np.float64)
    f = np.ones(num_objects, dtype=np.float64)
    for index in range(num_objects):
        g = gt == index + 1
        p = pred == index + 1
        union = g | p
        crop = _object_crop(union)
        if crop is None:  # absent from both: J = 1 (empty union), F = 1 (no boundaries)
            continue
        g, p = g[crop], p[crop]
        j[index] = np.count_nonzero(g & p) / np.count_nonzero(union[crop])
        f[index] = _f_from_boundaries(seg2bmap(p), seg2bmap(g), footprint)
    return j, f


def sequence_scores(
    gt: np.ndarray, pred: np.ndarray, num_objects: int, bound_th: float = BOUND_TH
) -> tuple[np.ndarray, np.ndarray]:
    """J and F for every object in every given frame (the caller picks the evaluated frames).

    Args:
      gt: (T, H, W) ground-truth label maps (void already mapped to background).
      pred: (T, H, W) predicted label maps.
      num_objects: K.
      bound_th: boundary tolerance.

    Returns:
      (j, f): float64 arrays of shape (K, T).
    """
    if len(gt) != len(pred):
        raise ValueError(f"{len(gt)} ground-truth frames but {len(pred)} predicted frames")
    j = np.ones((num_objects, len(gt)), dtype=np.float64)
    f = np.ones((num_objects, len(gt)), dtype=np.float64)
    for t, (g, p) in enumerate(zip(gt, pred, strict=True)):
        j[:, t], f[:, t] = frame_scores(g, p, num_objects, bound_th)
    return j, f


def decay_bins(n: int) -> list[tuple[int, int]]:
    """The official quarter bins [start, stop) over n frames (inclusive, overlapping edges).

    Args:
      n: number of evaluated frames (>= 1).

    Returns:
      Four (start, stop) pairs; bin i is values[start:stop].
    """
    ids = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(np.int64)
    return [(int(ids[i]), int(ids[i + 1]) + 1) for i in range(4)]


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, Recall and Decay of one object's per-frame values (module docstring).

    Args:
      values: (n,) per-frame J or F of one object over its evaluated frames.

    Returns:
      (mean, recall, decay) as floats; NaN for all three when n == 0.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.nanmean(values))
    recall = float(np.mean(values > 0.5))
    bins = decay_bins(values.size)
    first, last = values[slice(*bins[0])], values[slice(*bins[3])]
    decay = float(np.nanmean(first) - np.nanmean(last))
    return mean, recall, decay
