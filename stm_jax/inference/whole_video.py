"""Whole-video segmentation: the frame-by-frame stream (`stm_jax.inference.stream.VideoStream`,
also behind `stm_jax.Segmenter`, on the jobs' step) run over a list of frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream, labels_to_probs

__all__ = ["labels_to_probs", "segment_video"]


def segment_video(
    stepper: Stepper,
    variables,
    frames: Sequence[np.ndarray] | Sequence[Callable[[], np.ndarray]],
    first_labels: np.ndarray,
    num_objects: int,
    given_labels: dict[int, tuple[np.ndarray, Sequence[int]]] | None = None,
    return_probs: bool = False,
) -> Iterator[np.ndarray]:
    """Segments a video frame by frame with the official protocol.

    Args:
      stepper: compiled init/step functions.
      variables: model variables.
      frames: uint8 [H, W, 3] frames, or zero-argument callables loading them (read lazily).
      first_labels: [H, W] object ids of frame 0 (0 = background, 1..num_objects).
      num_objects: objects in the video (static: one compile per count).
      given_labels: {frame index: (labels, object ids)} for objects that first appear at that frame
        (YouTube-VOS); their masks replace the prediction there.
      return_probs: yield [H, W, K] probabilities instead of label maps.
    Yields:
      For each frame (frame 0 = the given mask), [H, W] uint8 labels or [H, W, K] float32 probs.
    """
    load = (lambda f: f()) if callable(frames[0]) else (lambda f: f)
    stream = VideoStream(stepper, variables)
    first_probs = stream.start(load(frames[0]), first_labels, num_objects)
    yield first_probs if return_probs else np.asarray(first_labels, np.uint8)
    for index in range(1, len(frames)):
        given = given_labels.get(index) if given_labels else None
        probs = stream.step(load(frames[index]), given)
        if return_probs:
            yield np.asarray(probs)
        else:
            yield np.asarray(stream.last_labels)
    stream.block_until_ready()
