"""STM clip sampling: the max-skip curriculum, ordered frame indices, packing objects into slots.

`max_skip(clips_seen, schedule)` is a pure function of the clips seen so the trainer can log it. Frame gaps follow
Training-Code-of-STM (spec C.2): n2 - n1 and n3 - n2 are uniform in [1, skip + 1], clipped to the
video.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from stm_jax.io.images import VOID_LABEL


def max_skip_stm(clips: int, start: int = 0, end: int = 25, every_clips: int = 3000) -> int:
    """STM curriculum: `start`, +1 every `every_clips` clips seen, capped at `end`.

    Training-Code-of-STM adds 1 every 3000 iterations of batch 1 (= 3000 clips, i.e. every 750
    updates at batch 4), reaching 25 after 75,000 clips.
    """
    return int(min(end, start + clips // max(int(every_clips), 1)))


def max_skip_stcn(
    progress: float, values=(5, 10, 15, 20, 25, 5), fractions=(0.1, 0.2, 0.3, 0.4, 0.9)
) -> int:
    """STCN curriculum: values[0] before fractions[0], values[i + 1] after fractions[i] of training."""
    return int(values[int(np.searchsorted(np.asarray(fractions), progress, side="right"))])


def max_skip(clips: int, schedule: Mapping) -> int:
    """The maximum number of skipped frames once `clips` training clips have been seen.

    Schedules count data, not updates, so they mean the same for any batch size, gradient
    accumulation or device count.

    Args:
      clips: clips seen before the batch (= step x global batch size).
      schedule: mapping with 'kind' in {'stm', 'stcn', 'constant'} and its parameters: stm: start,
        end, every_clips; stcn: total_clips (the whole run: train.num_steps x data.batch_size, filled
        in by the trainer), values, fractions; constant: value.

    Returns:
      The max skip, in original-video frames.
    """
    kind = schedule["kind"]
    if kind == "stm":
        if "every" in schedule and "every_clips" not in schedule:
            raise ValueError(
                "data.max_skip.every (updates) is gone: the curriculum counts clips. Use "
                "every_clips (Training-Code-of-STM: 3000)."
            )
        return max_skip_stm(clips, schedule["start"], schedule["end"], schedule["every_clips"])
    if kind == "stcn":
        total = int(schedule.get("total_clips", 0))
        if total <= 0:
            raise ValueError(
                "data.max_skip.total_clips is unset: the trainer sets it to train.num_steps x "
                "data.batch_size; set it yourself when building the iterator directly."
            )
        return max_skip_stcn(clips / total, tuple(schedule["values"]), tuple(schedule["fractions"]))
    if kind == "constant":
        return int(schedule["value"])
    raise ValueError(f"unknown max_skip kind {kind!r}; use 'stm', 'stcn' or 'constant'")


def max_skip_at_step(step: int, global_batch: int, schedule: Mapping) -> int:
    """The max skip of update `step` (0-based) with `global_batch` clips per update."""
    return max_skip(int(step) * int(global_batch), schedule)


def sample_frame_indices(
    rng: np.random.Generator,
    num_video_frames: int,
    num_frames: int,
    skip: int,
    first_candidates: list[int] | None = None,
) -> list[int]:
    """Draws `num_frames` temporally ordered frame indices.

    Args:
      rng: random generator.
      num_video_frames: stored frames in the video.
      num_frames: frames per clip (3 in STM).
      skip: max skipped frames between neighbours, in stored frames (YouTube-VOS: skip // 5).
      first_candidates: allowed first frames (frames that hold objects), or None for any.

    Returns:
      Non-decreasing indices; strictly increasing when the video is long enough.
    """
    if num_video_frames < num_frames:  # short video: frames repeat, still in order
        return sorted(rng.integers(0, num_video_frames, num_frames).tolist())
    gaps = rng.integers(1, skip + 2, num_frames - 1)
    while gaps.sum() > num_video_frames - 1:  # clip to the video, keeping every gap >= 1
        gaps[int(np.argmax(gaps))] -= 1
    span = int(gaps.sum())
    candidates = [
        i for i in (first_candidates or range(num_video_frames)) if i + span < num_video_frames
    ]
    if not candidates:  # objects only near the end: start on one of their frames, shrink the gaps
        first = int(rng.choice(first_candidates))
        room = num_video_frames - 1 - first
        if room < num_frames - 1:
            return sorted([first] + rng.integers(first, num_video_frames, num_frames - 1).tolist())
        while gaps.sum() > room:
            gaps[int(np.argmax(gaps))] -= 1
    else:
        first = int(rng.choice(candidates))
    return (first + np.concatenate([[0], np.cumsum(gaps)])).astype(int).tolist()


def pick_objects(
    first_label: np.ndarray, rng: np.random.Generator, max_objects: int, min_pixels: int
) -> list[int]:
    """Chooses up to `max_objects` object ids visible in the clip's first frame, in random order.

    Args:
      first_label: uint8 (H, W) ids of frame 0 of the (augmented) clip.
      rng: random generator.
      max_objects: slots available.
      min_pixels: ignore objects smaller than this in frame 0 (tiny objects make a noisy target).

    Returns:
      The chosen original ids (possibly empty).
    """
    counts = np.bincount(first_label.ravel(), minlength=256)
    ids = [i for i in range(1, 256) if i != VOID_LABEL and counts[i] >= min_pixels]
    rng.shuffle(ids)
    return ids[:max_objects]


def pack_clip(
    frames: np.ndarray, labels: np.ndarray, object_ids: list[int], max_objects: int
) -> dict:
    """Renumbers the chosen objects 1..n and builds the training sample.

    Args:
      frames: uint8 (T, H, W, 3).
      labels: uint8 (T, H, W) original ids (255 void).
      object_ids: the chosen original ids (all present in frame 0), n <= max_objects.
      max_objects: O, the number of object slots.

    Returns:
      dict: frames uint8 (T,H,W,3), labels int32 (T,H,W) in 0..n, void bool (T,H,W), masks float32
      (T,H,W,O+1) one-hot over O+1 slots, object_valid bool (O,), num_objects int32 ().
    """
    lut = np.zeros(256, np.int32)
    for new, old in enumerate(object_ids, start=1):
        lut[old] = new
    new_labels = lut[labels]
    n = len(object_ids)
    masks = (new_labels[..., None] == np.arange(max_objects + 1, dtype=np.int32)).astype(np.float32)
    return {
        "frames": np.ascontiguousarray(frames, np.uint8),
        "labels": new_labels,
        "void": labels == VOID_LABEL,
        "masks": masks,
        "object_valid": np.arange(max_objects) < n,
        "num_objects": np.int32(n),
    }
