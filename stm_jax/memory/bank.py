"""Fixed-capacity memory bank: a static-shaped pytree of keys, values and per-slot frame indices.

Slots [0, num_committed) hold kept ("committed") frames; slot `num_committed` holds the temporary
previous frame (spec B). Valid slots are always a prefix, so the read only visits the chunks holding
them. Storage is rounded up to a multiple of the read's chunk size; slots past `capacity` stay empty.

All functions are pure and jit-friendly; eviction policies are plain functions of the bank.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.memory.config import EVICTION_POLICIES, MemoryConfig

__all__ = ["EVICTION_POLICIES", "MemoryBank", "commit_temporary", "init_bank", "read_bank"]


class MemoryBank(NamedTuple):
    """keys [O, S, P, Dk], values [O, S, P, Dv], frame_index [S] (-1 = empty), num_committed []."""

    keys: jax.Array
    values: jax.Array
    frame_index: jax.Array
    num_committed: jax.Array

    @property
    def valid(self):
        return self.frame_index >= 0


def storage_slots(capacity: int, chunk_frames: int) -> int:
    return -(-capacity // chunk_frames) * chunk_frames


def init_bank(
    num_objects, capacity, positions, key_dim, value_dim, chunk_frames, dtype=jnp.float32
):
    """An empty bank holding up to `capacity` frames (committed + the temporary one)."""
    if capacity < 2:
        raise ValueError("memory capacity must be >= 2 (the first frame + the previous frame).")
    slots = storage_slots(capacity, chunk_frames)
    return MemoryBank(
        keys=jnp.zeros((num_objects, slots, positions, key_dim), dtype),
        values=jnp.zeros((num_objects, slots, positions, value_dim), dtype),
        frame_index=jnp.full((slots,), -1, jnp.int32),
        num_committed=jnp.int32(0),
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
    )


def _evict_oldest_after_first(bank: MemoryBank) -> MemoryBank:
    """Drops slot 1 (the oldest kept frame except the first) by shifting slots 2.. left by one."""
    slots = bank.frame_index.shape[0]
    source = jnp.arange(slots)
    source = jnp.where(source >= 1, jnp.minimum(source + 1, slots - 1), source)
    frame_index = bank.frame_index[source].at[bank.num_committed].set(-1)
    return bank._replace(
        keys=jnp.take(bank.keys, source, axis=1),
        values=jnp.take(bank.values, source, axis=1),
        frame_index=frame_index,
    )


def commit_temporary(bank: MemoryBank, capacity: int, eviction: str = "oldest") -> MemoryBank:
    """Makes the temporary frame permanent; when that fills the bank, applies the eviction policy.

    eviction='oldest': drop the oldest kept frame except the first (memory stays bounded).
    eviction='none': when full, the temporary frame is not kept (the first frames stay).
    """
    if eviction not in EVICTION_POLICIES:
        raise ValueError(f"memory eviction {eviction!r}; choose one of {EVICTION_POLICIES}.")
    has_room = bank.num_committed + 1 < capacity
    grown = bank._replace(num_committed=bank.num_committed + 1)
    if eviction == "none":
        return jax.tree.map(lambda a, b: jnp.where(has_room, a, b), grown, bank)
    # Full: the temporary frame joins the kept ones and slot 1 is dropped; num_committed is unchanged.
    return jax.lax.cond(has_room, lambda: grown, lambda: _evict_oldest_after_first(bank))


def init_bank_for(config: MemoryConfig, num_objects, positions, key_dim, value_dim, dtype):
    """`init_bank` sized by a memory configuration."""
    return init_bank(
        num_objects, config.capacity, positions, key_dim, value_dim, config.chunk_frames, dtype
    )


def commit_if_memory_frame(bank: MemoryBank, frame_index, config: MemoryConfig) -> MemoryBank:
    """The official keep rule: the temporary frame (index `frame_index`) is committed when
    frame_index % mem_every == 0 (frame 0 always); otherwise it will simply be overwritten."""
    return jax.lax.cond(
        frame_index % config.mem_every == 0,
        lambda b: commit_temporary(b, config.capacity, config.eviction),
        lambda b: b,
        bank,
    )


def read_bank(bank: MemoryBank, query_key, read):
    """Reads the valid frames for every object with `read` (from `stm_jax.memory.read.make_read`).

    query_key [P, Dk] -> readout [O, P, Dv] float32."""
    return read(bank.keys, bank.values, bank.valid, query_key[None])
