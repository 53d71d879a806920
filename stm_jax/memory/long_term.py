"""Long-term memory (XMem-style) for `memory.eviction='long_term'`: no trainable parameters, so it
runs with any checkpoint.

When the working memory (the bank's kept frames) is full, the oldest working frame is consolidated
before it is dropped: `long_term_prototypes` of its positions per object — the most-used ones
(attention mass per read, counted during the read) or a random selection — go into a fixed-size
store of `long_term_size` positions per object. When the store is full, new prototypes replace the
least-used ones (usage per read, averaged over objects). The store is read together with working
memory: one softmax over the valid bank positions and the valid prototypes.

Shapes are static: the store's arrays never grow, a validity mask says which positions hold a
prototype, and usage is carried as float sums plus read counts.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from stm_jax.memory.read import (
    _top_k_mask,
    affinity,
    chunk_scores,
    online_softmax_init,
    online_softmax_update,
    valid_chunks,
)


class LongTermStore(NamedTuple):
    """keys [O, L, Dk], values [O, L, Dv], valid [L], usage [O, L] (summed attention), reads [L]
    (reads since stored); slot_usage [O, S, P] and slot_reads [S]: the same counts for the bank's
    slots (moved with them, reset when a slot receives a new frame)."""

    keys: jax.Array
    values: jax.Array
    valid: jax.Array
    usage: jax.Array
    reads: jax.Array
    slot_usage: jax.Array
    slot_reads: jax.Array


def init_store(num_objects, slots, positions, key_dim, value_dim, size, dtype) -> LongTermStore:
    """An empty store of `size` positions per object, with usage counters for `slots` bank slots."""
    return LongTermStore(
        keys=jnp.zeros((num_objects, size, key_dim), dtype),
        values=jnp.zeros((num_objects, size, value_dim), dtype),
        valid=jnp.zeros((size,), bool),
        usage=jnp.zeros((num_objects, size), jnp.float32),
        reads=jnp.zeros((size,), jnp.int32),
        slot_usage=jnp.zeros((num_objects, slots, positions), jnp.float32),
        slot_reads=jnp.zeros((slots,), jnp.int32),
    )


def read_with_usage(keys, values, frame_valid, store: LongTermStore, query, similarity, top_k=0):
    """One softmax over the valid bank positions and the valid prototypes, and the usage it gives.

    Args:
      keys: [O, S, P, Dk], values: [O, S, P, Dv], frame_valid: [S] (the bank); store: the
        long-term store; query: [1 or O, M, Dk].
    Returns:
      (readout [O, M, Dv] float32, store with the attention of this read added to its usage).
    """
    num_objects, slots, positions, key_dim = keys.shape
    memory_keys = jnp.concatenate([keys.reshape(num_objects, -1, key_dim), store.keys], axis=1)
    memory_values = jnp.concatenate(
        [values.reshape(num_objects, slots * positions, -1), store.values], axis=1
    ).astype(jnp.float32)
    valid = jnp.concatenate([jnp.repeat(frame_valid, positions), store.valid])
    scores = affinity(memory_keys, query, similarity)
    scores = jnp.where(valid[:, None], scores, -jnp.inf)
    if top_k:
        scores = _top_k_mask(scores, min(top_k, scores.shape[-2]))
    weights = jax.nn.softmax(scores, axis=-2)  # [O, N, M]
    memory_values = jnp.where(valid[:, None], memory_values, 0)  # stale NaNs stay out
    readout = jnp.einsum(
        "onm,onv->omv", weights, memory_values, precision=jax.lax.Precision.HIGHEST
    )
    usage = jnp.sum(weights, axis=-1)  # [O, N]: attention mass of each memory position
    bank_usage = usage[:, : slots * positions].reshape(num_objects, slots, positions)
    store = store._replace(
        usage=store.usage + usage[:, slots * positions :],
        reads=store.reads + store.valid,
        slot_usage=store.slot_usage + bank_usage,
        slot_reads=store.slot_reads + frame_valid,
    )
    return readout, store


def read_with_usage_streaming(
    keys, values, frame_valid, store: LongTermStore, query, similarity, chunk_frames: int
):
    """`read_with_usage` without the whole (bank + store) x query affinity in memory: the bank is
    streamed `chunk_frames` frames at a time (only the chunks up to the last valid frame), then the
    store. Pass 1 is the online softmax of `read_chunked` plus the store; pass 2 recomputes each
    chunk's scores to count the attention each position received (it needs pass 1's normaliser).
    Peak memory per step follows one chunk, as with the default policy, at the cost of computing
    the affinity (not the value read) twice. Same arguments and result as `read_with_usage`
    (top_k = 0); the bank's slot count must be a multiple of `chunk_frames`."""
    num_objects, _, positions, _ = keys.shape
    chunk = functools.partial(
        chunk_scores, keys, values, frame_valid, query, chunk_frames, similarity
    )
    num_chunks = valid_chunks(frame_valid, chunk_frames)

    def accumulate(state):
        i, *softmax = state
        return (i + 1, *online_softmax_update(softmax, *chunk(i)))

    init = (jnp.int32(0), *online_softmax_init(query, values))
    _, *softmax = jax.lax.while_loop(lambda s: s[0] < num_chunks, accumulate, init)
    store_scores = jnp.where(
        store.valid[:, None], affinity(store.keys, query, similarity), -jnp.inf
    )
    store_values = jnp.where(store.valid[:, None], store.values.astype(jnp.float32), 0)
    running_max, running_sum, accumulator = online_softmax_update(
        softmax, store_scores, store_values
    )
    readout = accumulator / running_sum[..., None]
    log_normaliser = running_max + jnp.log(running_sum)  # [O, M]

    def attention_mass(scores):  # [O, n, M] -> [O, n]: summed softmax weight of each position
        return jnp.sum(jnp.exp(scores - log_normaliser[:, None, :]), axis=-1)

    def count(state):
        i, slot_usage = state
        mass = attention_mass(chunk(i)[0]).reshape(num_objects, chunk_frames, positions)
        start = i * chunk_frames
        old = jax.lax.dynamic_slice_in_dim(slot_usage, start, chunk_frames, axis=1)
        return i + 1, jax.lax.dynamic_update_slice_in_dim(slot_usage, old + mass, start, axis=1)

    _, slot_usage = jax.lax.while_loop(
        lambda s: s[0] < num_chunks, count, (jnp.int32(0), store.slot_usage)
    )
    store = store._replace(
        usage=store.usage + attention_mass(store_scores),
        reads=store.reads + store.valid,
        slot_usage=slot_usage,
        slot_reads=store.slot_reads + frame_valid,
    )
    return readout, store


def select_positions(usage, reads, count: int, selection: str, seed):
    """Which positions of a frame become prototypes, per object.

    Args:
      usage: [O, P] summed attention; reads: [] how many reads it was summed over.
      count: prototypes per object; selection: 'usage' or 'random'; seed: int32 (frame index).
    Returns:
      (index [O, count] int32, score [O, count] mean attention per read of the chosen positions).
    """
    score = usage / jnp.maximum(reads, 1).astype(jnp.float32)
    if selection == "usage":
        best, index = jax.lax.top_k(score, count)
        return index.astype(jnp.int32), best
    order = jax.random.permutation(jax.random.fold_in(jax.random.key(0), seed), usage.shape[-1])
    index = jnp.broadcast_to(order[:count], (usage.shape[0], count)).astype(jnp.int32)
    return index, jnp.take_along_axis(score, index, axis=1)


def consolidate(store: LongTermStore, keys, values, slot, frame_index, count, selection):
    """Moves `count` prototypes per object of bank slot `slot` (keys/values [O, S, P, D]) into the
    store: into free positions first, then over the least-used prototypes (mean usage per read over
    objects). Prototypes keep their usage per read, so they compete fairly with older ones."""
    count = min(count, keys.shape[2])
    frame_keys = jax.lax.dynamic_index_in_dim(keys, slot, axis=1, keepdims=False)  # [O, P, Dk]
    frame_values = jax.lax.dynamic_index_in_dim(values, slot, axis=1, keepdims=False)
    frame_usage = jax.lax.dynamic_index_in_dim(store.slot_usage, slot, axis=1, keepdims=False)
    index, score = select_positions(
        frame_usage, store.slot_reads[slot], count, selection, frame_index
    )
    chosen_keys = jnp.take_along_axis(frame_keys, index[..., None], axis=1)
    chosen_values = jnp.take_along_axis(frame_values, index[..., None], axis=1)
    stored_score = jnp.mean(store.usage, axis=0) / jnp.maximum(store.reads, 1)
    priority = jnp.where(store.valid, -stored_score, jnp.inf)  # free positions first
    _, target = jax.lax.top_k(priority, count)
    return store._replace(
        keys=store.keys.at[:, target].set(chosen_keys.astype(store.keys.dtype)),
        values=store.values.at[:, target].set(chosen_values.astype(store.values.dtype)),
        valid=store.valid.at[target].set(True),
        usage=store.usage.at[:, target].set(score),
        reads=store.reads.at[target].set(1),
    )
