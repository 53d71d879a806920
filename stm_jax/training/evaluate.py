"""In-training evaluation: J&F (DAVIS-2017 definitions) on a validation source, plus the
copy-the-first-frame-mask baseline for context.

Runs the official inference protocol (`segment_video`) on this process's local device; every process
computes the same numbers, so all agree on which step is best without communicating.
"""

from __future__ import annotations

import cv2
import numpy as np

from stm_jax.data.registry import build_source
from stm_jax.evaluation.baselines import copy_first_frame
from stm_jax.evaluation.davis import score_sequence_arrays
from stm_jax.inference.settings import cached_stepper
from stm_jax.inference.whole_video import segment_video
from stm_jax.io.images import VOID_LABEL
from stm_jax.model.config import ModelConfig


def load_eval_videos(eval_config) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Reads the validation videos once.

    Args:
      eval_config: `config.eval` (source, max_videos, max_frames, size).
    Returns:
      [(name, frames uint8 [T, H, W, 3], labels uint8 [T, H, W])].
    """
    spec = dict(eval_config.source)
    if spec.get("kind") == "synthetic" and int(spec.get("num_videos", 0)) == 0:
        return []
    source = build_source("eval", spec)
    count = len(source) if not eval_config.max_videos else min(len(source), eval_config.max_videos)
    videos = []
    for i in range(count):
        record = source[i]
        n = len(record) if not eval_config.max_frames else min(len(record), eval_config.max_frames)
        frames, labels = record.read(list(range(n)))
        if eval_config.size:
            frames, labels = _resize(frames, labels, int(eval_config.size))
        videos.append((record.name, np.asarray(frames, np.uint8), np.asarray(labels, np.uint8)))
    return videos


def _resize(frames, labels, shorter: int):
    h, w = frames.shape[1:3]
    scale = shorter / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    labels = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in labels])
    return frames, labels


def _jf(scores) -> dict:
    j = float(np.mean([np.mean(s.j) for s in scores]))
    f = float(np.mean([np.mean(s.f) for s in scores]))
    return {"J&F": (j + f) / 2, "J": j, "F": f}


def copy_first_frame_baseline(videos) -> dict:
    """J&F of predicting frame 0's mask for every frame (a floor any tracker must beat)."""
    scores = []
    for name, _, labels in videos:
        scores += score_sequence_arrays(name, labels, copy_first_frame(labels[0], len(labels)))
    return _jf(scores)


def evaluate(
    model_config: ModelConfig, memory_config, variables, videos, return_predictions: bool = False
):
    """J&F of the model on `videos`.

    Args:
      model_config: the architecture.
      memory_config: `config.memory` (unset protocol fields follow the family's) or a MemoryConfig.
      variables: {'params', 'batch_stats'} (host arrays).
      videos: from `load_eval_videos`.
      return_predictions: also return {name: uint8 [T, H, W] predicted ids} (videos without
        objects are absent).
    Returns:
      {'J&F', 'J', 'F'} means over objects (DAVIS 'global' numbers); with return_predictions,
      (those scores, the predictions).
    """
    stepper = cached_stepper(model_config, memory_config)  # compiled once per run, not per eval
    scores, predictions = [], {}
    for name, frames, labels in videos:
        first = np.where(labels[0] == VOID_LABEL, 0, labels[0])
        num_objects = int(first.max())
        if num_objects == 0:
            continue
        pred = np.stack(list(segment_video(stepper, variables, list(frames), first, num_objects)))
        scores += score_sequence_arrays(name, labels, pred)
        predictions[name] = pred
    return (_jf(scores), predictions) if return_predictions else _jf(scores)
