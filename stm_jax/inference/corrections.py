"""Corrections at chosen frames of a video, read from its ground-truth annotations.

`data.correct_frames=10,40` makes the segment job replace the result of frames 10 and 40 of every
video by that frame's annotation PNG and pin the frame in memory, exactly as a user calling
`Segmenter.correct(mask)` after `step` on those frames would: an "oracle corrections" run for
interactive or long-video studies, and the job-side check that corrections behave as in the API.
"""

from __future__ import annotations

import numpy as np

from stm_jax.io.images import VOID_LABEL, read_label_mask
from stm_jax.io.videos import Video, VideoInputError


def parse_frames(text) -> tuple[int, ...]:
    """'10,40' (or a list of ints) -> (10, 40); frame 0 is the given first mask, so it is refused."""
    items = text if isinstance(text, (list, tuple)) else str(text or "").split(",")
    frames = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if not item.isdigit() or int(item) == 0:
            raise VideoInputError(
                f"data.correct_frames: '{item}' is not a frame index >= 1 (frame 0 is the first "
                "mask); give comma-separated indices, e.g. --config.data.correct_frames=10,40."
            )
        frames.append(int(item))
    return tuple(sorted(set(frames)))


def correction_labels(
    video: Video,
    frames: tuple[int, ...],
    first_labels: np.ndarray,
    merge_objects: bool,
) -> dict[int, np.ndarray]:
    """{frame index: [H, W] uint8 ids} from the video's annotation folder (void 255 -> 0); every
    problem (no annotations, a frame beyond the video, a missing PNG, an id the first mask does
    not have, another size) is one VideoInputError naming the file."""
    corrections = {}
    for index in frames:
        if index >= len(video.frame_paths):
            raise VideoInputError(
                f"data.correct_frames: frame {index} is beyond video '{video.name}' "
                f"({len(video.frame_paths)} frames)."
            )
        if video.annotations_dir is None:
            raise VideoInputError(
                f"data.correct_frames: video '{video.name}' has no annotation folder to read "
                "corrections from (the DAVIS layout has one)."
            )
        path = video.annotations_dir / f"{video.frame_paths[index].stem}.png"
        if not path.is_file():
            raise VideoInputError(f"{path}: no annotation for corrected frame {index}.")
        labels = read_label_mask(path)
        labels = np.where(labels == VOID_LABEL, 0, labels).astype(np.uint8)
        if merge_objects:
            labels = (labels > 0).astype(np.uint8)
        if labels.shape != first_labels.shape:
            raise VideoInputError(
                f"{path}: mask is {labels.shape[1]}x{labels.shape[0]} but the video's frames are "
                f"{first_labels.shape[1]}x{first_labels.shape[0]}."
            )
        num_objects = int(first_labels.max())
        if int(labels.max()) > num_objects:
            raise VideoInputError(
                f"{path}: object id {int(labels.max())} is not in the first frame's mask "
                f"({num_objects} objects); a correction can only hold tracked objects."
            )
        corrections[index] = labels
    return corrections
