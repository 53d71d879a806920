"""The per-frame inference step of STM's official protocol (spec B), compiled once per shape.

State carried between frames (a pytree): the memory bank, which object slots are used, and the index
of the next frame. `init` encodes frame 0 with its given mask into the temporary slot; each `step`:
  1. encodes the query frame, reads the memory (committed frames + previous frame), decodes every object
     in one batched call and soft-aggregates into K-slot probabilities;
  2. optionally injects objects given for this frame (YouTube-VOS objects that appear mid-video);
  3. commits the previous frame if it is a memory frame (index % mem_every == 0), evicting per policy;
  4. encodes this frame with its soft probabilities as the new temporary slot.
This equals the official loop (memory for frame t = {kept f <= t-2} U {t-1}, each frame encoded once).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.inference.padding import Padding
from stm_jax.memory.bank import MemoryBank, commit_temporary, init_bank, read_bank, write_temporary
from stm_jax.model.aggregation import other_objects, soft_aggregate
from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import STM

# Incremented at trace time only: tests use it to prove the step compiles once.
TRACE_COUNTS = {"init": 0, "step": 0}


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """Memory protocol: keep every `mem_every`-th frame, bounded by `capacity` frames in total
    (kept + the temporary previous frame); `eviction` when full; read `chunk_frames` at a time."""

    mem_every: int = 5
    capacity: int = 40
    eviction: str = "oldest"
    chunk_frames: int = 4

    @classmethod
    def from_config(cls, config) -> MemoryConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(config).items() if k in names})


class VideoState(NamedTuple):
    bank: MemoryBank
    object_valid: jax.Array  # [O] bool
    next_frame: jax.Array  # [] int32


class FrameStepper:
    """Jitted `init` and `step` for one model / memory configuration (jax caches per input shape)."""

    def __init__(self, model_config: ModelConfig, memory_config: MemoryConfig):
        self.model_config = model_config
        self.memory_config = memory_config
        self.model = STM(model_config)
        self.init = jax.jit(self._init)
        self.step = jax.jit(self._step, donate_argnums=(2,))
        # The two halves of `step`, separately: for teacher-forced parity tests and analysis tools.
        self.predict = jax.jit(self._predict)
        self.memorize = jax.jit(self._memorize)

    def _encode_memory(self, variables, frame01, probs, padding: Padding, object_valid):
        """Keys/values [O, P, D] of one frame from its K-slot probabilities [H, W, K]."""
        num_objects = object_valid.shape[0]
        masks = padding.pad(probs)[..., 1 : num_objects + 1]  # zero in the padding, as official
        masks = jnp.moveaxis(masks, -1, 0)
        keys, values = self.model.apply(
            variables,
            padding.pad(frame01)[None],
            masks[None],
            other_objects(masks, object_valid)[None],
            method=STM.encode_memory,
        )
        return keys[0].reshape(num_objects, -1, keys.shape[-1]), values[0].reshape(
            num_objects, -1, values.shape[-1]
        )

    def _init(self, variables, frame, probs, object_valid):
        """Args: frame [H, W, 3] uint8; probs [H, W, K] first-frame one-hot; object_valid [O] bool."""
        TRACE_COUNTS["init"] += 1
        padding = Padding.for_size(*frame.shape[:2])
        frame01 = frame.astype(jnp.float32) / 255.0
        keys, values = self._encode_memory(variables, frame01, probs, padding, object_valid)
        bank = init_bank(
            object_valid.shape[0],
            self.memory_config.capacity,
            keys.shape[1],
            keys.shape[2],
            values.shape[2],
            self.memory_config.chunk_frames,
            keys.dtype,
        )
        bank = write_temporary(bank, keys, values, 0)
        return VideoState(bank, object_valid, jnp.int32(1))

    def _predict(self, variables, frame, state: VideoState):
        """Query encoding, memory read, decoding and soft aggregation of one frame.

        Returns [H, W, K] float32 probabilities (softmax of the aggregated logits, cropped)."""
        cfg, mem = self.model_config, self.memory_config
        padding = Padding.for_size(*frame.shape[:2])
        frame01 = frame.astype(jnp.float32) / 255.0
        q_key, q_value, r3, r2 = self.model.apply(
            variables, padding.pad(frame01)[None], method=STM.encode_query
        )
        h, w = q_key.shape[1:3]
        readout = read_bank(
            state.bank, q_key[0].reshape(h * w, -1), mem.chunk_frames, cfg.similarity, cfg.top_k
        )
        num_objects = state.object_valid.shape[0]
        readout = readout.reshape(1, num_objects, h, w, -1)
        logits = self.model.apply(
            variables, readout.astype(cfg.compute_dtype), q_value, r3, r2, method=STM.decode
        )
        foreground = jax.nn.softmax(logits, axis=-1)[0, ..., 1]
        aggregated = soft_aggregate(foreground, state.object_valid, cfg.num_slots)
        return jax.nn.softmax(padding.crop(aggregated), axis=-1)

    def _memorize(self, variables, frame, probs, state: VideoState) -> VideoState:
        """Commits the previous frame if it is a memory frame, then stores this frame (encoded with
        `probs`) as the temporary slot."""
        mem = self.memory_config
        t = state.next_frame
        bank = jax.lax.cond(
            (t - 1) % mem.mem_every == 0,
            lambda b: commit_temporary(b, mem.capacity, mem.eviction),
            lambda b: b,
            state.bank,
        )
        padding = Padding.for_size(*frame.shape[:2])
        frame01 = frame.astype(jnp.float32) / 255.0
        keys, values = self._encode_memory(variables, frame01, probs, padding, state.object_valid)
        bank = write_temporary(bank, keys, values, t)
        return VideoState(bank, state.object_valid, t + 1)

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
        probs = self._predict(variables, frame, state)
        if given_probs is not None:
            num_slots, num_objects = probs.shape[-1], state.object_valid.shape[0]
            given = jnp.zeros((num_slots,), bool).at[1 : num_objects + 1].set(given_objects)
            region = jnp.sum(given_probs * given, axis=-1, keepdims=True)  # pixels of given objects
            probs = jnp.where(given, given_probs, probs * (1.0 - region))
            # From now on the injected objects take part in aggregation and memory.
            state = state._replace(object_valid=state.object_valid | given_objects)
        return probs, self._memorize(variables, frame, probs, state)
