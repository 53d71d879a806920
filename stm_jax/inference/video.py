"""Whole-video segmentation on top of the per-frame step."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from stm_jax.inference.step import FrameStepper


def labels_to_probs(labels: np.ndarray, num_slots: int) -> np.ndarray:
    """[H, W] object ids -> [H, W, K] one-hot float32 (ids >= K are an error)."""
    labels = np.asarray(labels)
    if labels.max(initial=0) >= num_slots:
        raise ValueError(f"object id {labels.max()} does not fit in {num_slots} slots")
    return np.eye(num_slots, dtype=np.float32)[labels]


def segment_video(
    stepper: FrameStepper,
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
    num_slots = stepper.model_config.num_slots
    load = (lambda f: f()) if callable(frames[0]) else (lambda f: f)
    # Objects absent from frame 0 (YouTube-VOS objects given later) stay out of aggregation and
    # memory until their mask is injected.
    present = np.isin(np.arange(1, num_objects + 1), np.unique(first_labels))
    object_valid = jnp.asarray(present)
    first_probs = labels_to_probs(first_labels, num_slots)
    frame0 = load(frames[0])
    state = stepper.init(variables, frame0, first_probs, object_valid)
    yield first_probs if return_probs else np.asarray(first_labels, np.uint8)
    for index in range(1, len(frames)):
        frame = load(frames[index])
        if given_labels and index in given_labels:
            labels, ids = given_labels[index]
            given_objects = np.zeros((num_objects,), bool)
            given_objects[np.asarray(ids) - 1] = True
            probs, state = stepper.step(
                variables, frame, state, labels_to_probs(labels, num_slots), given_objects
            )
        else:
            probs, state = stepper.step(variables, frame, state)
        if return_probs:
            yield np.asarray(probs)
        else:
            yield np.asarray(jnp.argmax(probs, axis=-1).astype(jnp.uint8))
    jax.block_until_ready(state)
