"""Fixed-capacity memory bank: a static-shaped pytree of keys, values and per-slot frame indices.

Slots [0, num_committed) hold kept ("committed") frames; slot `num_committed` holds the temporary
previous frame (spec B). Valid slots are always a prefix, so the read only visits the chunks holding
them. Storage is rounded up to a multiple of the read's chunk size; slots past `capacity` stay empty.

The kept frames are two runs: slots [0, num_pinned) are permanent (the first frame, then corrected
frames; at most `memory.permanent_slots`), which eviction never touches, and slots
[num_pinned, num_committed) are working memory, oldest first. A temporary frame marked `pin_next`
(frame 0 by `Core.start`, a correction) is pinned when the next frame commits, whatever mem_every
says. What a full bank does is the memory policy's (`stm_jax.memory.policy`); with a policy that
counts usage, `usage` / `reads` hold the attention each position received, and `policy_state` the
policy's own pytree.

Keys have one row per object (STM) or one row for all objects (Ok = 1, STCN: shared keys).
`object_start` [O] is the frame each object was given at (0 for the first frame's objects; set by
`stm_jax.core.inject_objects`); with `memory.per_object_memory` an object reads only the frames from
its start on. `last_memory` is the frame last kept, which `memory.mem_every_counts='since_last'`
counts from (STCN's YouTube-VOS rule: a frame objects are given at is always kept and restarts the
count). All functions are pure and jit-friendly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.policy import MemoryPolicy, get_policy

__all__ = ["MemoryBank", "commit_temporary", "init_bank", "pin_temporary", "readable_frames"]


class MemoryBank(NamedTuple):
    """keys [Ok, S, P, Dk], values [O, S, P, Dv], frame_index [S] (-1 = empty), num_committed [],
    num_pinned [] (permanent slots in use), pin_next [] bool (pin the temporary frame at the next
    commit); usage [Ok, S, P] float32 and reads [S] int32 when the policy counts usage (else None);
    policy_state: the policy's own pytree (or None); last_memory [] int32: the last frame kept;
    object_start [O] int32: the frame each object was given at."""

    keys: jax.Array
    values: jax.Array
    frame_index: jax.Array
    num_committed: jax.Array
    num_pinned: jax.Array
    pin_next: jax.Array
    usage: jax.Array | None = None
    reads: jax.Array | None = None
    policy_state: Any = None
    last_memory: jax.Array | None = None
    object_start: jax.Array | None = None

    @property
    def valid(self):
        return self.frame_index >= 0


def storage_slots(capacity: int, chunk_frames: int) -> int:
    return -(-capacity // chunk_frames) * chunk_frames


def init_bank(
    config: MemoryConfig,
    key_sets: int,
    num_objects: int,
    positions: int,
    key_dim: int,
    value_dim: int,
    dtype=jnp.float32,
) -> MemoryBank:
    """An empty bank of `config.capacity` frames for `num_objects` objects with `key_sets` key rows
    (num_objects, or 1 with shared keys), sized by the config's chunk size and its policy."""
    if config.capacity < 2:
        raise ValueError("memory capacity must be >= 2 (the first frame + the previous frame).")
    policy = get_policy(config)
    slots = storage_slots(config.capacity, config.chunk_frames)
    counts = policy.counts_usage
    return MemoryBank(
        keys=jnp.zeros((key_sets, slots, positions, key_dim), dtype),
        values=jnp.zeros((num_objects, slots, positions, value_dim), dtype),
        frame_index=jnp.full((slots,), -1, jnp.int32),
        num_committed=jnp.int32(0),
        num_pinned=jnp.int32(0),
        pin_next=jnp.bool_(False),
        usage=jnp.zeros((key_sets, slots, positions), jnp.float32) if counts else None,
        reads=jnp.zeros((slots,), jnp.int32) if counts else None,
        policy_state=policy.init_state(
            key_sets, num_objects, slots, positions, key_dim, value_dim, dtype
        ),
        last_memory=jnp.int32(0),
        object_start=jnp.zeros((num_objects,), jnp.int32),
    )


def write_temporary(bank: MemoryBank, keys, values, frame_index) -> MemoryBank:
    """Stores one frame's keys [Ok, P, Dk] / values [O, P, Dv] in the temporary slot (replacing the
    previous one); its usage counters start at zero."""
    slot = bank.num_committed
    bank = bank._replace(
        keys=jax.lax.dynamic_update_index_in_dim(bank.keys, keys.astype(bank.keys.dtype), slot, 1),
        values=jax.lax.dynamic_update_index_in_dim(
            bank.values, values.astype(bank.values.dtype), slot, 1
        ),
        frame_index=bank.frame_index.at[slot].set(frame_index),
    )
    if bank.usage is None:
        return bank
    return bank._replace(usage=bank.usage.at[:, slot].set(0.0), reads=bank.reads.at[slot].set(0))


def _move(bank: MemoryBank, source, empty_slot) -> MemoryBank:
    """Slot i takes the contents of slot source[i]; `empty_slot` is marked empty afterwards."""
    bank = bank._replace(
        keys=jnp.take(bank.keys, source, axis=1),
        values=jnp.take(bank.values, source, axis=1),
        frame_index=bank.frame_index[source].at[empty_slot].set(-1),
    )
    if bank.usage is None:
        return bank
    return bank._replace(usage=jnp.take(bank.usage, source, axis=1), reads=bank.reads[source])


def drop_working(bank: MemoryBank, policy: MemoryPolicy) -> MemoryBank:
    """The temporary frame joins the kept ones and the working frame the policy names is dropped
    (after `policy.before_drop`), later slots shifting left by one; num_committed is unchanged."""
    slot = policy.victim(bank)
    bank = policy.before_drop(bank, slot)
    slots = bank.frame_index.shape[0]
    source = jnp.arange(slots)
    source = jnp.where(source >= slot, jnp.minimum(source + 1, slots - 1), source)
    return _move(bank, source, bank.num_committed)


def commit_temporary(bank: MemoryBank, config: MemoryConfig) -> MemoryBank:
    """Makes the temporary frame a kept frame; when that fills the bank, the policy decides (see
    `stm_jax.memory.policy`)."""
    policy = get_policy(config)
    has_room = bank.num_committed + 1 < config.capacity
    grown = bank._replace(num_committed=bank.num_committed + 1)
    if not policy.keeps_frames_when_full:
        return jax.tree.map(lambda a, b: jnp.where(has_room, a, b), grown, bank)
    return jax.lax.cond(has_room, lambda: grown, lambda: drop_working(bank, policy))


def pin_temporary(bank: MemoryBank, config: MemoryConfig) -> MemoryBank:
    """Makes the temporary frame permanent (frame 0, corrections), whatever the policy keeps.

    A full bank first drops the working frame its policy names. With a free permanent slot the frame
    is moved to slot num_pinned (working frames shift right by one). When the permanent slots are
    full, the documented policy: with permanent_slots >= 2 the oldest pinned frame other than frame
    0 (slot 1) is replaced — pinned frames 2.. shift left and the new one becomes the last pinned
    frame; with permanent_slots == 1 the frame is kept as an ordinary working frame."""
    policy = get_policy(config)
    has_room = bank.num_committed + 1 < config.capacity
    grown = bank._replace(num_committed=bank.num_committed + 1)
    slots = bank.frame_index.shape[0]
    index = jnp.arange(slots)

    def keep(bank):
        return jax.lax.cond(has_room, lambda: grown, lambda: drop_working(bank, policy))

    def into_free_permanent_slot(bank):
        kept = keep(bank)  # the temporary frame is now kept, at slot num_committed - 1
        pinned, temporary = kept.num_pinned, kept.num_committed - 1
        source = jnp.where(index == pinned, temporary, index)
        source = jnp.where((index > pinned) & (index <= temporary), index - 1, source)
        moved = _move(kept, source, kept.num_committed)
        return moved._replace(num_pinned=pinned + 1)

    def replace_oldest_correction(bank):
        if config.permanent_slots == 1:
            return keep(bank)
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


def is_memory_frame(frame_index, config: MemoryConfig, bank: MemoryBank | None = None):
    """The keep rule of `config.mem_every_counts`: 'frame_index' (official STM, STCN on DAVIS):
    frame_index % mem_every == 0; 'since_last' (STCN on YouTube-VOS): frame_index is >= mem_every
    frames after the last kept frame, or objects were given at it (their first memory frame).
    'since_last' reads the bank's `last_memory` and `object_start`, so it needs `bank`."""
    if config.mem_every_counts == "frame_index":
        return frame_index % config.mem_every == 0
    if bank is None:
        raise ValueError("mem_every_counts='since_last' needs the bank (its last kept frame).")
    given_here = jnp.any((bank.object_start == frame_index) & (frame_index > 0))
    return (frame_index - bank.last_memory >= config.mem_every) | given_here


def commit_if_memory_frame(bank: MemoryBank, frame_index, config: MemoryConfig) -> MemoryBank:
    """The temporary frame (index `frame_index`) is committed if it is a memory frame; otherwise it
    will simply be overwritten. A temporary frame marked `pin_next` (frame 0, corrections) is pinned
    instead (`pin_temporary`). Either way a kept frame becomes `last_memory`."""
    memory_frame = is_memory_frame(frame_index, config, bank)
    kept = bank.pin_next | memory_frame
    last = jnp.where(kept, jnp.asarray(frame_index, jnp.int32), bank.last_memory)

    def keep_rule(b):
        return jax.lax.cond(memory_frame, lambda b: commit_temporary(b, config), lambda b: b, b)

    bank = jax.lax.cond(bank.pin_next, lambda b: pin_temporary(b, config), keep_rule, bank)
    return bank._replace(last_memory=last)


def readable_frames(bank: MemoryBank, config: MemoryConfig):
    """[S] bool: the frames a read visits. Every valid frame; with `read_previous=False` (STCN's
    protocol) the temporary previous frame only when it will be kept (a memory frame, or pinned)."""
    if config.read_previous:
        return bank.valid
    temporary = bank.num_committed
    index = bank.frame_index[temporary]
    kept = is_memory_frame(index, config, bank) | bank.pin_next
    slots = jnp.arange(bank.frame_index.shape[0])
    return bank.valid & ((slots != temporary) | kept)


def object_frames(bank: MemoryBank, frame_valid):
    """[O, S] bool: each object's readable frames, those from the frame it was given at on
    (`per_object_memory`). An object with none left (its frames evicted) reads every frame."""
    own = frame_valid[None] & (bank.frame_index[None] >= bank.object_start[:, None])
    return jnp.where(jnp.any(own, axis=1, keepdims=True), own, frame_valid[None])


def read_bank(bank: MemoryBank, query_key, config: MemoryConfig, read):
    """Reads the bank's readable frames (and the policy's extra memory) for every object (with
    `config.per_object_memory`, each object its own frames: `object_frames`).

    Args:
      bank: one video's bank. query_key: [M, Dk]. config: the memory configuration.
      read: the plain read from `stm_jax.memory.read.make_read(config)`.
    Returns:
      (readout [O, M, Dv] float32, the bank with the read's usage counted when its policy asks).
    """
    from stm_jax.memory.usage_read import read_with_usage_plain, read_with_usage_streaming

    policy = get_policy(config)
    frame_valid = readable_frames(bank, config)
    extra = policy.extra_memory(bank)
    if config.per_object_memory:
        if policy.counts_usage or extra is not None:
            raise ValueError(
                f"memory.per_object_memory=True does not combine with memory.eviction="
                f"{config.eviction!r} (it counts usage or adds memory); choose 'oldest' or 'none'."
            )
        frame_valid = object_frames(bank, frame_valid)
    if not policy.counts_usage and extra is None:
        return read(bank.keys, bank.values, frame_valid, query_key[None]), bank
    args = (bank.keys, bank.values, frame_valid, query_key[None], config.similarity)
    if config.top_k:
        readout, mass, extra_mass = read_with_usage_plain(*args, config.top_k, extra)
    else:
        readout, mass, extra_mass = read_with_usage_streaming(*args, config.chunk_frames, extra)
    if policy.counts_usage:
        bank = bank._replace(usage=bank.usage + mass, reads=bank.reads + frame_valid)
    if extra is not None:
        bank = policy.count_extra(bank, extra_mass)
    return readout, bank
