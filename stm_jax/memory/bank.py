"""Fixed-capacity memory bank: a static-shaped pytree of keys, values and per-slot frame indices.

Slots [0, num_committed) hold kept ("committed") frames; slot `num_committed` holds the temporary
previous frame (spec B). Valid slots are always a prefix, so the read only visits the chunks holding
them. Storage is rounded up to a multiple of the read's chunk size; slots past `capacity` stay empty.

The kept frames are two runs: slots [0, num_pinned) are permanent (the first frame, then corrected
frames; at most `memory.permanent_slots`), which eviction never touches, and slots
[num_pinned, num_committed) are working memory, oldest first. A temporary frame marked `pin_next`
(frame 0 by `Core.start`, a correction) is pinned when the next frame commits, whatever mem_every
says. With `eviction='long_term'` the bank also carries a `LongTermStore` (stm_jax.memory.long_term).

All functions are pure and jit-friendly; eviction policies are plain functions of the bank.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.memory.config import EVICTION_POLICIES, MemoryConfig
from stm_jax.memory.long_term import (
    LongTermStore,
    consolidate,
    init_store,
    read_with_usage,
    read_with_usage_streaming,
)

__all__ = [
    "EVICTION_POLICIES",
    "MemoryBank",
    "commit_temporary",
    "init_bank",
    "pin_temporary",
    "read_bank",
]


class MemoryBank(NamedTuple):
    """keys [O, S, P, Dk], values [O, S, P, Dv], frame_index [S] (-1 = empty), num_committed [],
    num_pinned [] (permanent slots in use), pin_next [] bool (pin the temporary frame at the next
    commit), long_term (a `LongTermStore` with eviction='long_term', else None)."""

    keys: jax.Array
    values: jax.Array
    frame_index: jax.Array
    num_committed: jax.Array
    num_pinned: jax.Array
    pin_next: jax.Array
    long_term: LongTermStore | None = None

    @property
    def valid(self):
        return self.frame_index >= 0


def storage_slots(capacity: int, chunk_frames: int) -> int:
    return -(-capacity // chunk_frames) * chunk_frames


def init_bank(
    num_objects,
    capacity,
    positions,
    key_dim,
    value_dim,
    chunk_frames,
    dtype=jnp.float32,
    long_term_size: int = 0,
):
    """An empty bank holding up to `capacity` frames (committed + the temporary one), with a
    long-term store of `long_term_size` positions per object if > 0."""
    if capacity < 2:
        raise ValueError("memory capacity must be >= 2 (the first frame + the previous frame).")
    slots = storage_slots(capacity, chunk_frames)
    store = None
    if long_term_size:
        store = init_store(num_objects, slots, positions, key_dim, value_dim, long_term_size, dtype)
    return MemoryBank(
        keys=jnp.zeros((num_objects, slots, positions, key_dim), dtype),
        values=jnp.zeros((num_objects, slots, positions, value_dim), dtype),
        frame_index=jnp.full((slots,), -1, jnp.int32),
        num_committed=jnp.int32(0),
        num_pinned=jnp.int32(0),
        pin_next=jnp.bool_(False),
        long_term=store,
    )


def write_temporary(bank: MemoryBank, keys, values, frame_index) -> MemoryBank:
    """Stores one frame's [O, P, D] keys/values in the temporary slot (replacing the previous one)."""
    slot = bank.num_committed
    return bank._replace(
        keys=jax.lax.dynamic_update_index_in_dim(bank.keys, keys.astype(bank.keys.dtype), slot, 1),
        values=jax.lax.dynamic_update_index_in_dim(
            bank.values, values.astype(bank.values.dtype), slot, 1
        ),
        frame_index=bank.frame_index.at[slot].set(frame_index),
        long_term=_reset_slot_usage(bank.long_term, slot),
    )


def _reset_slot_usage(store, slot):
    if store is None:
        return None
    return store._replace(
        slot_usage=store.slot_usage.at[:, slot].set(0.0),
        slot_reads=store.slot_reads.at[slot].set(0),
    )


def _move(bank: MemoryBank, source, empty_slot) -> MemoryBank:
    """Slot i takes the contents of slot source[i]; `empty_slot` is marked empty afterwards."""
    store = bank.long_term
    if store is not None:
        store = store._replace(
            slot_usage=jnp.take(store.slot_usage, source, axis=1),
            slot_reads=store.slot_reads[source],
        )
    return bank._replace(
        keys=jnp.take(bank.keys, source, axis=1),
        values=jnp.take(bank.values, source, axis=1),
        frame_index=bank.frame_index[source].at[empty_slot].set(-1),
        long_term=store,
    )


def _drop_oldest_working(bank: MemoryBank, config: MemoryConfig) -> MemoryBank:
    """The temporary frame joins the kept ones and the oldest working frame (slot num_pinned) is
    dropped, slots after it shifting left by one; num_committed is unchanged. With a long-term
    store the dropped frame is consolidated into it first. Slot 0 (the first frame) is never
    dropped, pinned or not."""
    slot = jnp.maximum(bank.num_pinned, 1)
    if bank.long_term is not None:
        store = consolidate(
            bank.long_term,
            bank.keys,
            bank.values,
            slot,
            bank.frame_index[slot],
            config.long_term_prototypes,
            config.long_term_selection,
        )
        bank = bank._replace(long_term=store)
    slots = bank.frame_index.shape[0]
    source = jnp.arange(slots)
    source = jnp.where(source >= slot, jnp.minimum(source + 1, slots - 1), source)
    return _move(bank, source, bank.num_committed)


def commit_temporary(
    bank: MemoryBank, capacity: int, eviction: str = "oldest", config: MemoryConfig | None = None
) -> MemoryBank:
    """Makes the temporary frame a kept frame; when that fills the bank, applies the eviction policy.

    eviction='oldest': drop the oldest working frame (memory stays bounded; pinned frames stay).
    eviction='none': when full, the temporary frame is not kept (the first frames stay).
    eviction='long_term': as 'oldest', after consolidating the dropped frame into the long-term
      store (`config` gives its prototype count and selection).
    """
    if eviction not in EVICTION_POLICIES:
        raise ValueError(f"memory eviction {eviction!r}; choose one of {EVICTION_POLICIES}.")
    config = config or MemoryConfig(capacity=max(capacity, 2))
    has_room = bank.num_committed + 1 < capacity
    grown = bank._replace(num_committed=bank.num_committed + 1)
    if eviction == "none":
        return jax.tree.map(lambda a, b: jnp.where(has_room, a, b), grown, bank)
    # Full: the temporary frame joins the kept ones and the oldest working frame is dropped.
    return jax.lax.cond(has_room, lambda: grown, lambda: _drop_oldest_working(bank, config))


def pin_temporary(bank: MemoryBank, config: MemoryConfig) -> MemoryBank:
    """Makes the temporary frame permanent (frame 0, corrections), whatever the eviction policy.

    A full bank first drops its oldest working frame (consolidated with 'long_term'). With a free
    permanent slot the frame is moved to slot num_pinned (working frames shift right by one). When
    the permanent slots are full, the documented policy: with permanent_slots >= 2 the oldest pinned
    frame other than frame 0 (slot 1) is replaced — pinned frames 2.. shift left and the new one
    becomes the last pinned frame; with permanent_slots == 1 the frame is kept as an ordinary
    working frame."""
    has_room = bank.num_committed + 1 < config.capacity
    grown = bank._replace(num_committed=bank.num_committed + 1)
    slots = bank.frame_index.shape[0]
    index = jnp.arange(slots)

    def into_free_permanent_slot(bank):
        kept = jax.lax.cond(
            has_room, lambda: grown, lambda: _drop_oldest_working(bank, config)
        )  # the temporary frame is now kept, at slot num_committed - 1
        pinned, temporary = kept.num_pinned, kept.num_committed - 1
        source = jnp.where(index == pinned, temporary, index)
        source = jnp.where((index > pinned) & (index <= temporary), index - 1, source)
        moved = _move(kept, source, kept.num_committed)
        return moved._replace(num_pinned=pinned + 1)

    def replace_oldest_correction(bank):
        if config.permanent_slots == 1:
            return jax.lax.cond(has_room, lambda: grown, lambda: _drop_oldest_working(bank, config))
        pinned, temporary = bank.num_pinned, bank.num_committed
        source = jnp.where((index >= 1) & (index < pinned - 1), index + 1, index)
        source = jnp.where(index == pinned - 1, temporary, source)
        return _move(bank, source, temporary)

    bank = jax.lax.cond(
        bank.num_pinned < config.permanent_slots,
        into_free_permanent_slot,
        replace_oldest_correction,
        bank,
    )
    return bank._replace(pin_next=jnp.bool_(False))


def init_bank_for(config: MemoryConfig, num_objects, positions, key_dim, value_dim, dtype):
    """`init_bank` sized by a memory configuration (with a long-term store for 'long_term')."""
    long_term_size = config.long_term_size if config.eviction == "long_term" else 0
    return init_bank(
        num_objects,
        config.capacity,
        positions,
        key_dim,
        value_dim,
        config.chunk_frames,
        dtype,
        long_term_size,
    )


def commit_if_memory_frame(bank: MemoryBank, frame_index, config: MemoryConfig) -> MemoryBank:
    """The official keep rule: the temporary frame (index `frame_index`) is committed when
    frame_index % mem_every == 0; otherwise it will simply be overwritten. A temporary frame
    marked `pin_next` (frame 0, corrections) is pinned instead (`pin_temporary`)."""

    def keep_rule(b):
        return jax.lax.cond(
            frame_index % config.mem_every == 0,
            lambda b: commit_temporary(b, config.capacity, config.eviction, config),
            lambda b: b,
            b,
        )

    return jax.lax.cond(bank.pin_next, lambda b: pin_temporary(b, config), keep_rule, bank)


def read_bank(bank: MemoryBank, query_key, read):
    """Reads the valid frames for every object with `read` (from `stm_jax.memory.read.make_read`).

    query_key [P, Dk] -> readout [O, P, Dv] float32."""
    return read(bank.keys, bank.values, bank.valid, query_key[None])


def read_bank_counting_usage(bank: MemoryBank, query_key, config: MemoryConfig):
    """The long-term read: bank and store in one softmax; returns (readout, bank with usage).
    Streamed chunk by chunk like the default read (the top-k read materialises the affinity)."""
    args = (bank.keys, bank.values, bank.valid, bank.long_term, query_key[None], config.similarity)
    if config.top_k:
        readout, store = read_with_usage(*args, config.top_k)
    else:
        readout, store = read_with_usage_streaming(*args, config.chunk_frames)
    return readout, bank._replace(long_term=store)
