"""The per-frame inference step: the one jitted step every user of the model runs.

The segment, evaluate and YouTube-VOS jobs (through `stm_jax.inference.scheduler`), `stm_jax.Segmenter`
and `VideoStream` (a batch of one video), in-training evaluation and the benchmarks all call these
functions of `Stepper`, which jit `stm_jax.core.Core` for a fixed number of video slots B, one frame
size and one object-slot count O (a "bucket"). Each slot holds one video or nothing:

    state = stepper.empty(variables, B, H, W, O)                                    # all slots free
    state = stepper.reset_slot(variables, state, slot, frame0, labels0, object_valid)  # a video in
    labels, probs, state = stepper.step(variables, frames, state, active)           # one frame each

* `active` [B] bool: slots without a video this step (finished, shorter, not yet filled) are exact
  no-ops: their state is returned unchanged, so a video is never disturbed by its neighbours.
* `reset_slot` puts a new video's frame 0 into one slot (slot is a traced int32: no recompile), so a
  slot freed by a video that ended early takes the next video of the bucket.
* Videos with fewer objects than O are padded: their extra object slots are `object_valid=False`,
  which keeps them out of memory, of the "others" mask and of aggregation.
* `step_given` is `step` plus objects given at this frame (YouTube-VOS first appearances), as
  labels [B, H, W] uint8 and given_objects [B, O] bool; slots with no given object are unchanged by it.
  How the given masks merge with the prediction is `memory.given_merge`.
* `rememorize` re-encodes each slot's last frame with new probabilities (a user's correction, objects
  added after the frame was segmented) and can pin it (`stm_jax.inference.stream`).

Each step is: predict (query, read, decode, soft aggregation; the read's state, e.g. a policy's usage
counters, is kept), inject given objects, commit the previous frame if it is a memory frame (evicting
per policy), encode this frame with its soft probabilities as the new temporary slot (skipped, for
the whole batch at once, when no active slot will read or keep it: STCN's non-memory frames). With the
default memory settings this is the official protocol (memory for frame t = {kept f <= t-2} U {t-1},
each frame encoded once). Every function compiles once per (B, H, W, O); `TRACE_COUNTS` counts
traces for tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stm_jax.core import Core, VideoState, inject_objects
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.aggregation import soft_aggregate
from stm_jax.model.config import ModelConfig

__all__ = ["TRACE_COUNTS", "Stepper", "VideoState"]

# Incremented at trace time only: tests use it to prove each bucket compiles once.
TRACE_COUNTS = {"reset_slot": 0, "step": 0, "step_given": 0, "rememorize": 0}


def one_hot(labels, num_slots):
    return jax.nn.one_hot(labels.astype(jnp.int32), num_slots, dtype=jnp.float32)


def _select(mask, new, old):
    """Per-slot choice between two batched pytrees (mask [B] bool)."""

    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


class Stepper:
    """Jitted `reset_slot`, `step`, `step_given` and `rememorize` over B video slots (state donated).

    Args:
      model_config: the architecture; memory_config: the read and the policy (a `MemoryConfig`, or a
        dict / ConfigDict whose unset protocol fields take the model family's published protocol).
    """

    def __init__(self, model_config: ModelConfig, memory_config):
        from stm_jax.model.family import get_family

        self.model_config = model_config
        family_protocol = get_family(model_config).memory_defaults
        self.memory_config = MemoryConfig.from_config(memory_config, family_protocol)
        self.core = Core(model_config, self.memory_config)
        self.reset_slot = jax.jit(self._reset_slot, donate_argnums=(1,))
        self.step = jax.jit(self._step, donate_argnums=(2,))
        self.step_given = jax.jit(self._step_given, donate_argnums=(2,))
        self.rememorize = jax.jit(self._rememorize, donate_argnums=(3,))
        self._state_shapes: dict = {}

    @property
    def num_slots(self) -> int:
        return self.model_config.num_slots

    def state_shape(self, variables, videos: int, height: int, width: int, objects: int):
        """The state's shapes and dtypes (jax.ShapeDtypeStruct leaves) for one bucket shape, e.g. to
        lower the step without allocating a state. Tracing the model for them costs ~50 ms, so they
        are kept per bucket shape."""
        key = (videos, height, width, objects, jax.tree.structure(variables))
        if key not in self._state_shapes:
            frames = jax.ShapeDtypeStruct((videos, height, width, 3), jnp.uint8)
            probs = jax.ShapeDtypeStruct((videos, height, width, self.num_slots), jnp.float32)
            valid = jax.ShapeDtypeStruct((videos, objects), jnp.bool_)
            self._state_shapes[key] = jax.eval_shape(
                self.core.start, variables, frames, probs, valid
            )
        return self._state_shapes[key]

    def empty(self, variables, videos: int, height: int, width: int, objects: int) -> VideoState:
        """A state of `videos` free slots (empty banks, no valid object) for one bucket shape."""
        shape = self.state_shape(variables, videos, height, width, objects)
        state = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape)
        frame_index = jnp.full(shape.bank.frame_index.shape, -1, jnp.int32)
        state = state._replace(bank=state.bank._replace(frame_index=frame_index))
        leaf = jax.tree.leaves(variables)[0]  # next to the weights' replica, if on a device
        devices = leaf.devices() if isinstance(leaf, jax.Array) else set()
        return jax.device_put(state, next(iter(devices))) if len(devices) == 1 else state

    def _reset_slot(self, variables, state: VideoState, slot, frame, labels, object_valid):
        """Video frame 0 into slot `slot`.

        Args:
          state: the batched state (donated). slot: [] int32. frame: [H, W, 3] uint8.
          labels: [H, W] uint8 first-frame object ids. object_valid: [O] bool.
        """
        TRACE_COUNTS["reset_slot"] += 1
        probs = one_hot(labels, self.num_slots)
        fresh = self.core.start(variables, frame[None], probs[None], object_valid[None])
        return jax.tree.map(
            lambda whole, one: jax.lax.dynamic_update_index_in_dim(whole, one[0], slot, 0),
            state,
            fresh,
        )

    def _advance(self, variables, frames, state, active, given=None):
        logits, batched, query = self.core.predict(variables, frames, state)
        probs = jax.nn.softmax(logits, axis=-1)
        if given is not None:
            given_labels, given_objects = given
            probs, batched = inject_objects(
                probs, batched, one_hot(given_labels, self.num_slots), given_objects
            )
            if self.memory_config.given_merge == "reaggregate":
                probs, query = self._reaggregate(probs, query, batched.object_valid, given_objects)
        stepped = self.core.memorize(variables, frames, probs, batched, query, active)
        labels = jnp.argmax(probs, axis=-1).astype(jnp.uint8)
        return labels, probs, _select(active, stepped, state)

    def _reaggregate(self, probs, query, object_valid, given_objects):
        """`memory.given_merge='reaggregate'`: soft aggregation over every object once more, in the
        videos given objects at this frame, of the merged probabilities and of the prediction the
        family memorises in the padding (STCN's YouTube-VOS loop aggregates its merged frame)."""
        num_objects = object_valid.shape[-1]

        def again(p):
            foreground = jnp.moveaxis(p[..., 1 : num_objects + 1], -1, -3)
            return jax.nn.softmax(soft_aggregate(foreground, object_valid, self.num_slots), -1)

        given = jnp.any(given_objects, axis=-1)[:, None, None, None]
        probs = jnp.where(given, again(probs), probs)
        if "padded_probs" in query:
            padded = query["padded_probs"]
            query = {**query, "padded_probs": jnp.where(given, again(padded), padded)}
        return probs, query

    def _step(self, variables, frames, state: VideoState, active):
        """One frame of every active slot.

        Args:
          frames: [B, H, W, 3] uint8 (anything in inactive slots). state: donated. active: [B] bool.
        Returns:
          (labels [B, H, W] uint8, probs [B, H, W, K] float32, new state); inactive slots' outputs
          are meaningless and their state is unchanged.
        """
        TRACE_COUNTS["step"] += 1
        return self._advance(variables, frames, state, active)

    def _step_given(self, variables, frames, state, active, given_labels, given_objects):
        """`step` with objects given at this frame: given_labels [B, H, W] uint8 (ids of the given
        objects, 0 elsewhere) and given_objects [B, O] bool naming them."""
        TRACE_COUNTS["step_given"] += 1
        return self._advance(variables, frames, state, active, (given_labels, given_objects))

    def _rememorize(self, variables, frames, probs, state: VideoState, pin, active):
        """Re-encodes each active slot's last memorised frame (frames [B, H, W, 3]) with new `probs`
        [B, H, W, K]; objects present in them join aggregation and memory; `pin` [B] bool keeps the
        frame in a permanent slot from the next frame on."""
        TRACE_COUNTS["rememorize"] += 1
        num_objects = state.object_valid.shape[-1]
        present = jnp.any(probs[..., 1 : num_objects + 1] > 0, axis=(1, 2))
        changed = state._replace(object_valid=state.object_valid | present)
        changed = self.core.rememorize(variables, frames, probs, changed, pin)
        return _select(active, changed, state)
