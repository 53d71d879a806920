"""Static image -> training clip (spec C.1/C.2 stage 1).

The image is repeated `num_frames` times and each copy gets its own random affine (always applied),
with a shared flip and rescale and a crop covering the objects (`augment_clip`). Optionally 1-3
objects cut from other images are pasted on top, each with its own per-frame affine and a drift, so
clips have more objects and occlusions (Training-Code-of-STM pastes COCO objects in 50% of samples).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from stm_jax.data.augment import AugmentParams, augment_clip, frame_affine
from stm_jax.data.video import ImageRecord
from stm_jax.io.images import VOID_LABEL

STATIC_PARAMS = AugmentParams(
    affine_prob=1.0, rotation=20.0, shear=10.0, frame_scale=(0.9, 1.1), scale_range=(0.8, 1.5)
)
PASTE_PARAMS = AugmentParams(
    affine_prob=1.0, rotation=30.0, shear=20.0, frame_scale=(0.8, 1.2), translate=0.0
)


def image_to_clip(
    record: ImageRecord, rng: np.random.Generator, num_frames: int, params: AugmentParams
) -> tuple[np.ndarray, np.ndarray]:
    """Synthesises a clip from one image.

    Args:
      record: the image and its ids.
      rng: random generator.
      num_frames: T.
      params: augmentation ranges (use `affine_prob=1` so every frame moves).

    Returns:
      frames uint8 (T, C, C, 3), labels uint8 (T, C, C).
    """
    frames = np.repeat(record.image[None], num_frames, axis=0)
    labels = np.repeat(record.label[None], num_frames, axis=0)
    return augment_clip(frames, labels, rng, params)


def _cut_object(record: ImageRecord, rng: np.random.Generator, min_pixels: int):
    counts = np.bincount(record.label.ravel(), minlength=256)
    counts[0] = counts[VOID_LABEL] = 0
    ids = np.flatnonzero(counts >= min_pixels)
    if len(ids) == 0:
        return None
    mask = record.label == int(rng.choice(ids))
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return record.image[y0:y1, x0:x1], mask[y0:y1, x0:x1]


def paste_objects(
    frames: np.ndarray,
    labels: np.ndarray,
    donors: list[ImageRecord],
    rng: np.random.Generator,
    min_pixels: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Pastes one object from each donor on top of the clip, with new ids after the existing ones.

    Args:
      frames: uint8 (T, C, C, 3) (modified copy returned).
      labels: uint8 (T, C, C).
      donors: images to cut objects from.
      rng: random generator.
      min_pixels: smallest donor object to use.

    Returns:
      frames and labels with the pasted objects.
    """
    frames, labels = frames.copy(), labels.copy()
    _, size, _ = labels.shape
    next_id = (
        int(max(i for i in np.unique(labels) if i != VOID_LABEL)) + 1
        if (labels % VOID_LABEL).any()
        else 1
    )
    for donor in donors:
        piece = _cut_object(donor, rng, min_pixels)
        if piece is None or next_id >= VOID_LABEL:
            continue
        patch, mask = piece
        # Fit the object to 20-60% of the crop, place it, and let it drift across the clip.
        fit = rng.uniform(0.2, 0.6) * size / max(patch.shape[:2])
        start = rng.uniform(0.2 * size, 0.8 * size, 2)
        drift = rng.uniform(-0.05 * size, 0.05 * size, 2)
        ph, pw = patch.shape[:2]
        for t in range(len(frames)):
            centre = start + drift * t
            place = np.array(
                [[fit, 0, centre[0] - fit * pw / 2], [0, fit, centre[1] - fit * ph / 2], [0, 0, 1]]
            )
            m = (frame_affine(rng, tuple(centre), PASTE_PARAMS, 1.0) @ place)[:2]
            warped_mask = (
                cv2.warpAffine(mask.astype(np.uint8), m, (size, size), flags=cv2.INTER_NEAREST) > 0
            )
            warped = cv2.warpAffine(
                patch, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            frames[t][warped_mask] = warped[warped_mask]
            labels[t][warped_mask] = next_id
        next_id += 1
    return frames, labels


def static_params(crop_size: int, resize_shorter: int) -> AugmentParams:
    """The stage-1 ranges at a given crop size / working resolution."""
    return dataclasses.replace(STATIC_PARAMS, crop_size=crop_size, resize_shorter=resize_shorter)
