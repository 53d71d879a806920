"""Clip augmentation (spec C.2) in numpy/OpenCV: one composed affine warp per frame.

Per clip: shared horizontal flip (p 0.5) and shared rescale (frames first brought to a shorter side
of `resize_shorter`, then scaled by s in `scale_range`, never below the crop size). Per frame:
rotation, shear, translation and x/y scale, each applied with probability `affine_prob` in random
order. A crop of `crop_size` covers the union box of frame 0's objects, with a per-frame offset
jitter. Everything is composed into one 2x3 matrix per frame so each frame is resampled once
(bilinear; labels nearest). Pixels from outside the image become 0 (background). Deterministic given
the generator.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from stm_jax.io.images import VOID_LABEL

_REFERENCE_SHORTER = 480.0  # pixel amounts below are given at DAVIS 480p / a 384 crop, and scaled
_REFERENCE_CROP = 384.0


@dataclasses.dataclass(frozen=True)
class AugmentParams:
    """Augmentation ranges (defaults: Training-Code-of-STM stage 2)."""

    crop_size: int = 384
    resize_shorter: int = 480
    scale_range: tuple[float, float] = (0.8, 1.1)
    flip_prob: float = 0.5
    affine_prob: float = 0.5
    rotation: float = 30.0
    shear: float = 15.0
    translate: float = 15.0
    frame_scale: tuple[float, float] = (0.8, 1.2)
    crop_jitter: float = 20.0


def _translation(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0, x], [0, 1.0, y], [0, 0, 1.0]])


def frame_affine(
    rng: np.random.Generator, centre: tuple[float, float], params: AugmentParams, pixel_scale: float
) -> np.ndarray:
    """A random 3x3 per-frame affine around `centre` (random subset of ops, in random order).

    Args:
      rng: random generator.
      centre: (x, y) the ops are centred on.
      params: ranges.
      pixel_scale: factor applied to pixel amounts (translation) for the working resolution.

    Returns:
      The 3x3 matrix.
    """
    ops = []
    if rng.random() < params.affine_prob:
        theta = np.deg2rad(rng.uniform(-params.rotation, params.rotation))
        c, s = np.cos(theta), np.sin(theta)
        ops.append(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]))
    if rng.random() < params.affine_prob:
        k = np.tan(np.deg2rad(rng.uniform(-params.shear, params.shear)))
        ops.append(np.array([[1.0, k, 0], [0, 1.0, 0], [0, 0, 1.0]]))
    if rng.random() < params.affine_prob:
        t = params.translate * pixel_scale
        ops.append(_translation(rng.uniform(-t, t), rng.uniform(-t, t)))
    if rng.random() < params.affine_prob:
        sx, sy = rng.uniform(*params.frame_scale, size=2)
        ops.append(np.diag([sx, sy, 1.0]))
    matrix = np.eye(3)
    for i in rng.permutation(len(ops)):
        matrix = ops[i] @ matrix
    return _translation(*centre) @ matrix @ _translation(-centre[0], -centre[1])


def _box(label: np.ndarray) -> tuple[float, float, float, float] | None:
    objects = (label != 0) & (label != VOID_LABEL)
    ys, xs = np.nonzero(objects)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _crop_origin(rng: np.random.Generator, lo: float, hi: float, extent: float, crop: int) -> float:
    """Crop start on one axis: covers [lo, hi] if it fits, else inside it; in the image."""
    if hi - lo <= crop:
        a, b = hi - crop, lo
        a2, b2 = max(a, 0.0), min(b, extent - crop)
        if a2 <= b2:
            a, b = a2, b2
    else:
        a, b = lo, hi - crop
    return float(rng.uniform(a, b)) if b > a else float(a)


def augment_clip(
    frames: np.ndarray, labels: np.ndarray, rng: np.random.Generator, params: AugmentParams
) -> tuple[np.ndarray, np.ndarray]:
    """Augments and crops a clip.

    Args:
      frames: uint8 (T, H, W, 3).
      labels: uint8 (T, H, W) ids (255 void).
      rng: random generator.
      params: ranges.

    Returns:
      frames uint8 (T, C, C, 3) and labels uint8 (T, C, C), C = crop_size.
    """
    _, h, w = labels.shape
    crop = params.crop_size
    base = params.resize_shorter / min(h, w)
    scale = max(base * rng.uniform(*params.scale_range), crop / min(h, w))
    sw, sh = w * scale, h * scale
    shared = np.diag([scale, scale, 1.0])
    if rng.random() < params.flip_prob:
        shared = np.array([[-1.0, 0, sw], [0, 1.0, 0], [0, 0, 1.0]]) @ shared
    pixel_scale = params.resize_shorter / _REFERENCE_SHORTER
    jitter = params.crop_jitter * crop / _REFERENCE_CROP
    matrices = [
        frame_affine(rng, (sw / 2, sh / 2), params, pixel_scale) @ shared
        for _ in range(len(frames))
    ]
    box = _box(labels[0])
    if box is None:
        box = (0.0, 0.0, float(w), float(h))
    corners = np.array(
        [[box[0], box[1], 1], [box[2], box[1], 1], [box[0], box[3], 1], [box[2], box[3], 1]]
    )
    moved = corners @ matrices[0].T
    x0 = _crop_origin(rng, moved[:, 0].min(), moved[:, 0].max(), sw, crop)
    y0 = _crop_origin(rng, moved[:, 1].min(), moved[:, 1].max(), sh, crop)
    out_frames = np.empty((len(frames), crop, crop, 3), np.uint8)
    out_labels = np.empty((len(frames), crop, crop), np.uint8)
    for t, matrix in enumerate(matrices):
        dx, dy = rng.uniform(-jitter, jitter, 2) if t else (0.0, 0.0)
        m = (_translation(-(x0 + dx), -(y0 + dy)) @ matrix)[:2]
        out_frames[t] = cv2.warpAffine(
            frames[t],
            m,
            (crop, crop),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        out_labels[t] = cv2.warpAffine(
            labels[t],
            m,
            (crop, crop),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return out_frames, out_labels
