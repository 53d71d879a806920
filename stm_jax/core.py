"""The per-frame STM core: the one place where frames, the network and the memory bank meet.

Inference (`stm_jax.inference.step`) and the training forward (`stm_jax.training.forward`) are both
this loop, with a leading batch axis B on every array and on the state:

    state = core.start(variables, frames_0, probs_0, object_valid)        # frame 0 into memory
    for t in 1, 2, ...:
        logits = core.predict(variables, frames_t, state)                 # query, read, decode, merge
        probs = softmax(logits)                      (inference may inject late objects here)
        state = core.memorize(variables, frames_t, probs, state)          # commit rule, new temp slot

so a new memory read (`stm_jax.memory.similarity`) or a new bank policy (`stm_jax.memory.bank`) is
trained the way it is run. Inputs are uint8 frames at their own size; `model_input` scales them to
[0, 1] and zero-pads to a multiple of 16 (spec A.1; ImageNet normalisation is the encoders' first op),
and `predict` crops its logits back. Training crops are multiples of 16, so their padding is empty.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.memory.bank import (
    MemoryBank,
    commit_if_memory_frame,
    init_bank_for,
    read_bank,
    read_bank_counting_usage,
    write_temporary,
)
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.read import make_read
from stm_jax.model.aggregation import other_objects, soft_aggregate
from stm_jax.model.config import ModelConfig
from stm_jax.model.padding import Padding
from stm_jax.model.stm import STM


class VideoState(NamedTuple):
    """What a video carries from frame to frame (leading axis B = videos when batched)."""

    bank: MemoryBank
    object_valid: jax.Array  # [O] bool: slots holding an object (absent ones stay out of memory)
    next_frame: jax.Array  # [] int32: index of the next frame to memorise


def model_input(frames, padding: Padding):
    """uint8 [..., H, W, 3] -> float32 in [0, 1], zero-padded to a multiple of 16 (padding = black,
    as the official code pads before normalising)."""
    return padding.pad(frames.astype(jnp.float32) / 255.0)


def _per_video(fn, *args):
    """Applies a single-video function over the leading batch axis (no vmap for one video)."""
    if jax.tree.leaves(args)[0].shape[0] == 1:
        return jax.tree.map(lambda x: x[None], fn(*jax.tree.map(lambda x: x[0], args)))
    return jax.vmap(fn)(*args)


class Core:
    """The per-frame functions for one model and one memory configuration (all pure, jit-able).

    Args:
      model_config: the architecture.
      memory_config: the read and the bank policy.
      differentiable: training: the read supports reverse-mode gradients.
    """

    def __init__(
        self, model_config: ModelConfig, memory_config: MemoryConfig, differentiable: bool = False
    ):
        self.model_config = model_config
        self.memory_config = memory_config
        self.model = STM(model_config)
        self.read = make_read(memory_config, differentiable)

    def encode_memory(self, variables, frames, probs, object_valid, padding: Padding):
        """Keys/values of frames from their K-slot probabilities.

        Args:
          frames: uint8 [B, H, W, 3]; probs: [B, H, W, K] (soft or one-hot); object_valid [B, O].
        Returns:
          keys [B, O, P, Dk], values [B, O, P, Dv] (P = positions of the 1/16 feature grid).
        """
        num_objects = object_valid.shape[-1]
        masks = padding.pad(probs)[..., 1 : num_objects + 1]  # zero in the padding, as official
        masks = jnp.moveaxis(masks, -1, 1) * object_valid[..., None, None]
        keys, values = self.model.apply(
            variables,
            model_input(frames, padding),
            masks,
            other_objects(masks, object_valid),
            method=STM.encode_memory,
        )
        b, o = keys.shape[:2]
        return keys.reshape(b, o, -1, keys.shape[-1]), values.reshape(b, o, -1, values.shape[-1])

    def start(self, variables, frames, probs, object_valid) -> VideoState:
        """Frame 0 with its given masks as the temporary memory slot.

        Args:
          frames: uint8 [B, H, W, 3]; probs: [B, H, W, K] one-hot; object_valid: [B, O] bool.
        """
        padding = Padding.for_size(*frames.shape[1:3])
        keys, values = self.encode_memory(variables, frames, probs, object_valid, padding)
        _, num_objects, positions, key_dim = keys.shape
        empty = init_bank_for(
            self.memory_config, num_objects, positions, key_dim, values.shape[-1], keys.dtype
        )
        batch = frames.shape[0]
        bank = jax.tree.map(lambda x: jnp.broadcast_to(x, (batch, *x.shape)), empty)
        bank = _per_video(write_temporary, bank, keys, values, jnp.zeros((batch,), jnp.int32))
        bank = bank._replace(pin_next=jnp.ones((batch,), bool))  # frame 0 is permanent
        return VideoState(bank, object_valid, jnp.ones((batch,), jnp.int32))

    def predict(self, variables, frames, state: VideoState):
        """Query encoding, memory read, decoding and soft aggregation of one frame per video.

        Args:
          frames: uint8 [B, H, W, 3]; state: the videos' states.
        Returns:
          [B, H, W, K] float32 aggregated logits (softmax over K gives the probabilities).
        """
        return self.predict_with_state(variables, frames, state)[0]

    def predict_with_state(self, variables, frames, state: VideoState):
        """`predict`, also returning the state: a long-term bank counts its usage during the read
        (otherwise the state is returned unchanged)."""
        cfg = self.model_config
        padding = Padding.for_size(*frames.shape[1:3])
        q_key, q_value, r3, r2 = self.model.apply(
            variables, model_input(frames, padding), method=STM.encode_query
        )
        b, h, w, key_dim = q_key.shape
        query = q_key.reshape(b, h * w, key_dim)
        if state.bank.long_term is None:
            readout = _per_video(lambda bank, q: read_bank(bank, q, self.read), state.bank, query)
        else:
            readout, bank = _per_video(
                lambda bank, q: read_bank_counting_usage(bank, q, self.memory_config),
                state.bank,
                query,
            )
            state = state._replace(bank=bank)
        readout = readout.reshape(b, -1, h, w, readout.shape[-1])
        logits = self.model.apply(
            variables, readout.astype(cfg.compute_dtype), q_value, r3, r2, method=STM.decode
        )
        foreground = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)[..., 1]
        aggregated = soft_aggregate(foreground, state.object_valid, cfg.num_slots)
        return padding.crop(aggregated), state

    def memorize(self, variables, frames, probs, state: VideoState) -> VideoState:
        """Commits the previous frame if it is a memory frame (`mem_every`), then stores these
        frames, encoded with `probs` [B, H, W, K], as the temporary slot."""
        previous = state.next_frame - 1
        bank = _per_video(
            lambda bank, index: commit_if_memory_frame(bank, index, self.memory_config),
            state.bank,
            previous,
        )
        padding = Padding.for_size(*frames.shape[1:3])
        keys, values = self.encode_memory(variables, frames, probs, state.object_valid, padding)
        bank = _per_video(write_temporary, bank, keys, values, state.next_frame)
        return VideoState(bank, state.object_valid, state.next_frame + 1)

    def rememorize(self, variables, frames, probs, state: VideoState, pin) -> VideoState:
        """Re-encodes the last memorised frames with new `probs` [B, H, W, K] (a correction or
        objects added after the frame was segmented) in the temporary slot; `pin` [B] bool marks
        it to be pinned at the next commit (`stm_jax.memory.bank.pin_temporary`)."""
        padding = Padding.for_size(*frames.shape[1:3])
        keys, values = self.encode_memory(variables, frames, probs, state.object_valid, padding)
        bank = _per_video(write_temporary, state.bank, keys, values, state.next_frame - 1)
        return state._replace(bank=bank._replace(pin_next=bank.pin_next | pin))


def inject_objects(probs, state: VideoState, given_probs, given_objects):
    """Objects given at this frame (YouTube-VOS objects that first appear, or user corrections):
    their masks replace the prediction where present, and they join aggregation and memory.

    Args:
      probs: [B, H, W, K] predicted probabilities; given_probs: [B, H, W, K] one-hot of the given
        objects; given_objects: [B, O] bool naming them.
    Returns:
      (probs, state).
    """
    num_slots, num_objects = probs.shape[-1], given_objects.shape[-1]
    given = jnp.zeros((*given_objects.shape[:-1], num_slots), bool)
    given = given.at[..., 1 : num_objects + 1].set(given_objects)[:, None, None, :]
    region = jnp.sum(given_probs * given, axis=-1, keepdims=True)  # pixels of the given objects
    probs = jnp.where(given, given_probs, probs * (1.0 - region))
    return probs, state._replace(object_valid=state.object_valid | given_objects)
