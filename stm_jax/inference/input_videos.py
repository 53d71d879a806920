"""Validating the videos to segment: their first-frame masks and frame sizes.

Which videos a dataset holds is its layout's (`stm_jax.data.registry.DATASETS`, as `Video`s); which
files are frames, and in which order, is `stm_jax.io.frames_folder`'s. Every error names the file and
the fix; `stm_jax.inference.preflight` gathers the problems of all videos before any work starts.
"""

from __future__ import annotations

import numpy as np

from stm_jax.io.frames_folder import FRAME_SUFFIXES
from stm_jax.io.images import VOID_LABEL, image_size, read_label_mask
from stm_jax.io.videos import Video, VideoInputError, list_frames, problems_error

__all__ = [
    "FRAME_SUFFIXES",
    "MASK_RULES",
    "Video",
    "VideoInputError",
    "first_mask_labels",
    "list_frames",
    "load_first_labels",
    "problems_error",
]

MASK_RULES = (
    "A first-frame mask is a palette (or 8-bit grayscale) PNG of the first frame's size whose values "
    "are object ids: 0 = background, 1..N = objects, 255 = void (ignored)."
)


def first_mask_labels(video: Video, max_objects: int, merge_objects: bool) -> np.ndarray:
    """Reads and checks the first-frame mask alone (existence, ids, object count); see MASK_RULES."""
    if not video.first_mask_path.is_file():
        raise VideoInputError(
            f"{video.first_mask_path}: first-frame mask missing for video '{video.name}'. "
            f"{MASK_RULES} Name it like the first frame ({video.frame_paths[0].stem}.png)."
        )
    raw = read_label_mask(video.first_mask_path)
    labels = np.where(raw == VOID_LABEL, 0, raw).astype(np.uint8)
    if merge_objects:
        labels = (labels > 0).astype(np.uint8)
    num_objects = int(labels.max())
    if num_objects == 0 and (raw == VOID_LABEL).any():
        raise VideoInputError(
            f"{video.first_mask_path}: the mask holds only 0 and 255, i.e. one object with id 255, "
            "which is void: use ids 1..N for the objects (e.g. save mask > 0 as 1)."
        )
    if num_objects == 0:
        raise VideoInputError(
            f"{video.first_mask_path}: the first-frame mask has no object (all background). "
            f"{MASK_RULES}"
        )
    if num_objects > max_objects:
        raise VideoInputError(
            f"{video.first_mask_path}: {num_objects} objects (max id) but model.max_objects="
            f"{max_objects}; pass --config.model.max_objects={num_objects} (the weights do not "
            "depend on it) or merge objects."
        )
    return labels


def load_first_labels(
    video: Video, max_objects: int, merge_objects: bool
) -> tuple[np.ndarray, int]:
    """Validates a video and returns (first-frame labels [H, W] uint8, number of objects).

    Checks: the mask exists and is readable, matches the frame size; every frame has that size;
    the mask has at least one object and at most `max_objects` (ids are taken as 1..max id, as
    the official code does; void 255 counts as background). An id missing from the first frame
    (non-contiguous ids) stays out of aggregation and memory, where the official code would let an
    empty object compete. With merge_objects, all ids > 0 are one object (DAVIS-2016).
    """
    labels = first_mask_labels(video, max_objects, merge_objects)
    size = image_size(video.frame_paths[0])
    if labels.shape != size:
        raise VideoInputError(
            f"{video.first_mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but frame "
            f"{video.frame_paths[0].name} is {size[1]}x{size[0]}; resize the mask (nearest) to the frame."
        )
    for path in video.frame_paths[1:]:
        other = image_size(path)
        if other != size:
            raise VideoInputError(
                f"{path}: frame is {other[1]}x{other[0]} but the video's first frame is "
                f"{size[1]}x{size[0]}; all frames of a video must have one size."
            )
    return labels, int(labels.max())
