"""The per-frame core: the one place where frames, the network and the memory bank meet.

Inference (`stm_jax.inference.stepper`) and the training forward (`stm_jax.training.forward`) are
both this loop, with a leading batch axis B on every array and on the state:

    state = core.start(variables, frames_0, probs_0, object_valid)          # frame 0 into memory
    for t in 1, 2, ...:
        logits, state, query = core.predict(variables, frames_t, state)     # query, read, decode
        probs = softmax(logits)                        (inference may inject late objects here)
        state = core.memorize(variables, frames_t, probs, state, query)     # commit rule, new slot

so a new memory read (`stm_jax.memory.similarity`), policy (`stm_jax.memory.policy`) or model family
(`stm_jax.model.family`) is trained the way it is run. No method drops state: `predict` returns the
state the read changed (a policy's usage counters) and the query features, which `memorize` reuses
when the family encodes a memory frame from them (STCN's shared keys). Inputs are uint8 frames at
their own size; the family's `model_input` scales and zero-pads them to a multiple of 16, and
`predict` crops its logits back. Training crops are multiples of 16, so their padding is empty.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.memory.bank import (
    MemoryBank,
    commit_if_memory_frame,
    init_bank,
    read_bank,
    readable_frames,
    write_temporary,
)
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.policy import get_policy
from stm_jax.memory.read import make_read
from stm_jax.model.aggregation import other_objects, soft_aggregate
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import get_family
from stm_jax.model.padding import Padding


class VideoState(NamedTuple):
    """What a video carries from frame to frame (leading axis B = videos when batched)."""

    bank: MemoryBank
    object_valid: jax.Array  # [O] bool: slots holding an object (absent ones stay out of memory)
    next_frame: jax.Array  # [] int32: index of the next frame to memorise


class Prediction(NamedTuple):
    """`Core.predict`'s result: logits [B, H, W, K] float32 (softmax over K gives the
    probabilities), the state after the read, and the query features of the frame."""

    logits: jax.Array
    state: VideoState
    query: Any


def _per_video(fn, *args):
    """Applies a single-video function over the leading batch axis (no vmap for one video)."""
    if jax.tree.leaves(args)[0].shape[0] == 1:
        return jax.tree.map(lambda x: x[None], fn(*jax.tree.map(lambda x: x[0], args)))
    return jax.vmap(fn)(*args)


class Core:
    """The per-frame functions for one model and one memory configuration (all pure, jit-able).

    Args:
      model_config: the architecture (its family's module does the encoding and decoding).
      memory_config: the read and the bank policy.
      differentiable: training: the read supports reverse-mode gradients.

    Attributes:
      skips_unused_encoding: `memorize` skips encoding a frame that no read and no commit will use
        (see `memorize`); on by default in inference, off in training (whose clips read every
        frame). It can only matter when the protocol does not read the previous frame.
    """

    def __init__(
        self, model_config: ModelConfig, memory_config: MemoryConfig, differentiable: bool = False
    ):
        self.model_config = model_config
        self.memory_config = memory_config
        self.family = get_family(model_config)
        self.module = self.family.module()
        self.read = make_read(memory_config, differentiable)
        self.skips_unused_encoding = not differentiable

    def encode_query(self, variables, frames):
        """The query features of frames uint8 [B, H, W, 3] (the family's dict) and their padding."""
        padding = Padding.for_size(*frames.shape[1:3])
        x = self.family.model_input(frames, padding)
        return self.module.apply(variables, x, method="encode_query"), padding

    def encode_memory(self, variables, frames, probs, object_valid, padding, query=None):
        """Keys/values of frames from their K-slot probabilities.

        Args:
          frames: uint8 [B, H, W, 3]; probs: [B, H, W, K] (soft or one-hot); object_valid [B, O];
          query: the frames' `encode_query` features, or None (the family computes what it needs).
        Returns:
          keys [B, Ok, P, Dk] (Ok = O, or 1 with shared keys), values [B, O, P, Dv] (P = positions
          of the 1/16 feature grid).
        """
        num_objects = object_valid.shape[-1]
        padded = padding.pad(probs)  # zero in the padding, as official STM
        if query is not None and "padded_probs" in query:
            # The family memorises its own prediction in the padding (STCN); inside the image
            # `probs` rules (it may hold injected objects).
            outside = (1.0 - padding.inside())[..., None]
            padded = padded + outside * query["padded_probs"]
        masks = padded[..., 1 : num_objects + 1]
        masks = jnp.moveaxis(masks, -1, 1) * object_valid[..., None, None]
        keys, values = self.module.apply(
            variables,
            self.family.model_input(frames, padding),
            masks,
            other_objects(masks, object_valid),
            query,
            method="encode_memory",
        )
        b = keys.shape[0]
        keys = keys.reshape(b, keys.shape[1], -1, keys.shape[-1])
        return keys, values.reshape(b, values.shape[1], -1, values.shape[-1])

    def start(self, variables, frames, probs, object_valid) -> VideoState:
        """Frame 0 with its given masks as the temporary memory slot (pinned at the next commit).

        Args:
          frames: uint8 [B, H, W, 3]; probs: [B, H, W, K] one-hot; object_valid: [B, O] bool.
        """
        padding = Padding.for_size(*frames.shape[1:3])
        keys, values = self.encode_memory(variables, frames, probs, object_valid, padding)
        _, key_sets, positions, key_dim = keys.shape
        num_objects = values.shape[1]
        empty = init_bank(
            self.memory_config,
            key_sets,
            num_objects,
            positions,
            key_dim,
            values.shape[-1],
            keys.dtype,
        )
        batch = frames.shape[0]
        bank = jax.tree.map(lambda x: jnp.broadcast_to(x, (batch, *x.shape)), empty)
        bank = _per_video(write_temporary, bank, keys, values, jnp.zeros((batch,), jnp.int32))
        bank = bank._replace(pin_next=jnp.ones((batch,), bool))  # frame 0 is permanent
        return VideoState(bank, object_valid, jnp.ones((batch,), jnp.int32))

    def predict(self, variables, frames, state: VideoState) -> Prediction:
        """Query encoding, memory read, decoding and soft aggregation of one frame per video.

        Args:
          frames: uint8 [B, H, W, 3]; state: the videos' states.
        Returns:
          The `Prediction`: aggregated logits (cropped), the state after the read, the query.
        """
        cfg = self.model_config
        query, padding = self.encode_query(variables, frames)
        q_key = query["key"]
        b, h, w, key_dim = q_key.shape
        readout, bank = _per_video(
            lambda bank, q: read_bank(bank, q, self.memory_config, self.read),
            state.bank,
            q_key.reshape(b, h * w, key_dim),
        )
        readout = readout.reshape(b, -1, h, w, readout.shape[-1])
        foreground = self.module.apply(
            variables, readout.astype(cfg.compute_dtype), query, method="decode"
        )
        aggregated = soft_aggregate(foreground, state.object_valid, cfg.num_slots)
        if self.family.memorizes_padding_predictions:
            query = {**query, "padded_probs": jax.nn.softmax(aggregated, axis=-1)}
        return Prediction(padding.crop(aggregated), state._replace(bank=bank), query)

    def memorize(
        self, variables, frames, probs, state: VideoState, query=None, active=None
    ) -> VideoState:
        """Commits the previous frame if it is a memory frame (`mem_every`), then stores these
        frames, encoded with `probs` [B, H, W, K] (and their `query` features from `predict`, if
        at hand), as the temporary slot.

        With a protocol that does not read the previous frame (STCN's), a temporary frame that is
        not a memory frame is never read nor kept: `rememorize` (a correction, late objects)
        re-encodes it before it could be. So when no video (of the `active` [B] bool ones, default
        all) needs its encoding, one `lax.cond` over the whole batch skips the value encoder; the
        slot gets zeros and this frame's index, which is all a later commit or read looks at."""
        previous = state.next_frame - 1
        bank = _per_video(
            lambda bank, index: commit_if_memory_frame(bank, index, self.memory_config),
            state.bank,
            previous,
        )
        padding = Padding.for_size(*frames.shape[1:3])
        key_shape = (*bank.keys.shape[:2], *bank.keys.shape[3:])  # [B, Ok, P, Dk]: one slot
        value_shape = (*bank.values.shape[:2], *bank.values.shape[3:])

        def encode():
            keys, values = self.encode_memory(
                variables, frames, probs, state.object_valid, padding, query
            )
            # The cast `write_temporary` does anyway: both branches give the bank's dtype.
            return keys.astype(bank.keys.dtype), values.astype(bank.values.dtype)

        if self._may_skip_encoding():
            needed = _per_video(self._temporary_is_used, bank, state.next_frame)
            if active is not None:
                needed = needed & active
            keys, values = jax.lax.cond(
                jnp.any(needed),
                encode,
                lambda: (
                    jnp.zeros(key_shape, bank.keys.dtype),
                    jnp.zeros(value_shape, bank.values.dtype),
                ),
            )
        else:
            keys, values = encode()
        bank = _per_video(write_temporary, bank, keys, values, state.next_frame)
        return VideoState(bank, state.object_valid, state.next_frame + 1)

    def _may_skip_encoding(self) -> bool:
        """Whether some frame's encoding can go unused (static: the protocol and the policy)."""
        config = self.memory_config
        return (
            self.skips_unused_encoding
            and not config.read_previous
            and not get_policy(config).needs_every_frame_encoded
        )

    def _temporary_is_used(self, bank: MemoryBank, frame_index):
        """[] bool: a frame written now as the temporary slot of one video's (committed) bank will
        be read or kept: the bank's own rule (`readable_frames`: a memory frame, or one marked to be
        pinned), asked with the slot holding `frame_index`."""
        slot = bank.num_committed
        marked = bank._replace(frame_index=bank.frame_index.at[slot].set(frame_index))
        return readable_frames(marked, self.memory_config)[slot]

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
      (probs, state); the bank records this frame as the start of each newly given object's
      memory (`MemoryBank.object_start`, read with `memory.per_object_memory`).
    """
    num_slots, num_objects = probs.shape[-1], given_objects.shape[-1]
    given = jnp.zeros((*given_objects.shape[:-1], num_slots), bool)
    given = given.at[..., 1 : num_objects + 1].set(given_objects)[:, None, None, :]
    region = jnp.sum(given_probs * given, axis=-1, keepdims=True)  # pixels of the given objects
    probs = jnp.where(given, given_probs, probs * (1.0 - region))
    new = given_objects & ~state.object_valid  # an object given again keeps its first frame
    start = jnp.where(new, state.next_frame[:, None], state.bank.object_start)
    return probs, state._replace(
        object_valid=state.object_valid | given_objects,
        bank=state.bank._replace(object_start=start),
    )
