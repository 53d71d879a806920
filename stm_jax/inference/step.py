"""The per-frame inference step of STM's official protocol (spec B) for one video, compiled once
per frame size and object-slot count.

A thin jitted front of `stm_jax.core.Core` with a batch of one video. `init` encodes frame 0 with its
given mask into the temporary slot; each `step`:
  1. encodes the query frame, reads the memory (committed frames + previous frame), decodes every object
     in one batched call and soft-aggregates into K-slot probabilities;
  2. optionally injects objects given for this frame (YouTube-VOS objects that appear mid-video);
  3. commits the previous frame if it is a memory frame (index % mem_every == 0), evicting per policy;
  4. encodes this frame with its soft probabilities as the new temporary slot.
This equals the official loop (memory for frame t = {kept f <= t-2} U {t-1}, each frame encoded once).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stm_jax.core import Core, VideoState, inject_objects
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig

__all__ = ["FrameStepper", "MemoryConfig", "VideoState"]

# Incremented at trace time only: tests use it to prove the step compiles once.
TRACE_COUNTS = {"init": 0, "step": 0, "rememorize": 0}


def _batch(x):
    return jax.tree.map(lambda a: a[None], x)


def _unbatch(x):
    return jax.tree.map(lambda a: a[0], x)


class FrameStepper:
    """Jitted `init` and `step` for one video (jax caches one compilation per input shape).

    States are single-video `VideoState`s (no leading batch axis)."""

    def __init__(self, model_config: ModelConfig, memory_config: MemoryConfig):
        self.model_config = model_config
        self.memory_config = MemoryConfig.from_config(memory_config)
        self.core = Core(model_config, self.memory_config)
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step, donate_argnums=(2,))
        # The two halves of `step`, separately: for teacher-forced parity tests and analysis tools.
        self.predict = jax.jit(self._predict)
        self.memorize = jax.jit(self._memorize)
        # Corrections and objects added after a frame was segmented (stm_jax.inference.stream).
        self.rememorize = jax.jit(self._rememorize, donate_argnums=(3,))

    def _init(self, variables, frame, probs, object_valid) -> VideoState:
        """Args: frame [H, W, 3] uint8; probs [H, W, K] first-frame one-hot; object_valid [O] bool."""
        TRACE_COUNTS["init"] += 1
        state = self.core.start(variables, frame[None], probs[None], object_valid[None])
        return _unbatch(state)

    def _predict(self, variables, frame, state: VideoState):
        """Returns [H, W, K] float32 probabilities (softmax of the aggregated logits, cropped)."""
        logits = self.core.predict(variables, frame[None], _batch(state))
        return jax.nn.softmax(logits[0], axis=-1)

    def _memorize(self, variables, frame, probs, state: VideoState) -> VideoState:
        """Commits the previous frame if it is a memory frame, then stores this frame (encoded with
        `probs` [H, W, K]) as the temporary slot."""
        return _unbatch(self.core.memorize(variables, frame[None], probs[None], _batch(state)))

    def _step(self, variables, frame, state: VideoState, given_probs=None, given_objects=None):
        """One frame: predict, inject given objects, memorise.

        Args:
          frame: [H, W, 3] uint8. state: the video state.
          given_probs: optional [H, W, K] one-hot of objects given at this frame, with
            given_objects [O] bool naming them (YouTube-VOS objects that first appear here); their
            masks replace the prediction where present.
        Returns:
          (probs [H, W, K] float32, new state).
        """
        TRACE_COUNTS["step"] += 1
        logits, batched = self.core.predict_with_state(variables, frame[None], _batch(state))
        probs = jax.nn.softmax(logits, axis=-1)
        if given_probs is not None:
            probs, batched = inject_objects(probs, batched, given_probs[None], given_objects[None])
        batched = self.core.memorize(variables, frame[None], probs, batched)
        return probs[0], _unbatch(batched)

    def _rememorize(self, variables, frame, probs, state: VideoState, pin) -> VideoState:
        """Re-encodes the last memorised frame with new `probs` [H, W, K] (objects in them join
        aggregation and memory); `pin` [] bool: keep it in a permanent slot from the next frame on.
        """
        TRACE_COUNTS["rememorize"] += 1
        num_objects = state.object_valid.shape[0]
        present = jnp.any(probs[..., 1 : num_objects + 1] > 0, axis=(0, 1))
        state = state._replace(object_valid=state.object_valid | present)
        return _unbatch(
            self.core.rememorize(variables, frame[None], probs[None], _batch(state), pin[None])
        )
