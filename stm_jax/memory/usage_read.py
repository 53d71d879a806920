"""The read for policies that count usage or add memory (`MemoryPolicy.counts_usage`,
`extra_memory`): the same softmax over memory as `stm_jax.memory.read`, plus how much attention each
memory position received.

One softmax runs over the valid bank positions and the policy's extra positions (XMem-style
long-term prototypes). The attention mass of a position is its softmax weight summed over the query
pixels. Without top-k the bank is streamed chunk by chunk as in the default read: pass 1 is the
online softmax over the valid chunks and then the extra positions; pass 2 recomputes each chunk's
scores to count the attention (it needs pass 1's normaliser), so peak memory follows one chunk at
the cost of computing the affinity (not the value read) twice. With top-k the affinity is
materialised (a top-k is a whole-column operation).
"""

from __future__ import annotations

import functools

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


def _extra_scores(extra, query, similarity):
    keys, values, valid = extra
    scores = jnp.where(valid[:, None], affinity(keys, query, similarity), -jnp.inf)
    return scores, jnp.where(valid[:, None], values.astype(jnp.float32), 0)


def read_with_usage_plain(keys, values, frame_valid, query, similarity, top_k=0, extra=None):
    """The whole (bank + extra) x query affinity at once (any top_k).

    Args:
      keys: [Ok, S, P, Dk], values: [O, S, P, Dv], frame_valid: [S] (the bank's readable frames);
      query: [Ok or 1, M, Dk]; extra: None or (keys [Ok, L, Dk], values [O, L, Dv], valid [L]).
    Returns:
      (readout [O, M, Dv] float32, bank mass [Ok, S, P], extra mass [Ok, L] or None).
    """
    key_sets, slots, positions, key_dim = keys.shape
    num_objects = values.shape[0]
    memory_keys = keys.reshape(key_sets, slots * positions, key_dim)
    memory_values = values.reshape(num_objects, slots * positions, -1).astype(jnp.float32)
    valid = jnp.repeat(frame_valid, positions)
    if extra is not None:
        memory_keys = jnp.concatenate([memory_keys, extra[0].astype(memory_keys.dtype)], axis=1)
        memory_values = jnp.concatenate([memory_values, extra[1].astype(jnp.float32)], axis=1)
        valid = jnp.concatenate([valid, extra[2]])
    scores = jnp.where(valid[:, None], affinity(memory_keys, query, similarity), -jnp.inf)
    if top_k:
        scores = _top_k_mask(scores, min(top_k, scores.shape[-2]))
    weights = jax.nn.softmax(scores, axis=-2)  # [Ok, N, M]
    memory_values = jnp.where(valid[:, None], memory_values, 0)  # stale NaNs stay out
    readout = jnp.einsum(
        "onm,onv->omv", weights, memory_values, precision=jax.lax.Precision.HIGHEST
    )
    mass = jnp.sum(weights, axis=-1)  # [Ok, N]
    bank_mass = mass[:, : slots * positions].reshape(mass.shape[0], slots, positions)
    extra_mass = mass[:, slots * positions :] if extra is not None else None
    return readout, bank_mass, extra_mass


def read_with_usage_streaming(
    keys, values, frame_valid, query, similarity, chunk_frames: int, extra=None
):
    """`read_with_usage_plain` (top_k = 0) without the whole affinity in memory (see the module
    docstring); the bank's slot count must be a multiple of `chunk_frames`."""
    positions = keys.shape[2]
    chunk = functools.partial(
        chunk_scores, keys, values, frame_valid, query, chunk_frames, similarity
    )
    num_chunks = valid_chunks(frame_valid, chunk_frames)

    def accumulate(state):
        i, *softmax = state
        return (i + 1, *online_softmax_update(softmax, *chunk(i)))

    init = (jnp.int32(0), *online_softmax_init(keys, query, values))
    _, *softmax = jax.lax.while_loop(lambda s: s[0] < num_chunks, accumulate, init)
    if extra is not None:
        extra_scores, extra_values = _extra_scores(extra, query, similarity)
        softmax = online_softmax_update(softmax, extra_scores, extra_values)
    running_max, running_sum, accumulator = softmax
    readout = accumulator / running_sum[..., None]
    log_normaliser = running_max + jnp.log(running_sum)  # [Ok, M]

    def attention_mass(scores):  # [Ok, n, M] -> [Ok, n]: summed softmax weight of each position
        return jnp.sum(jnp.exp(scores - log_normaliser[:, None, :]), axis=-1)

    def count(state):
        i, mass = state
        chunk_mass = attention_mass(chunk(i)[0]).reshape(mass.shape[0], chunk_frames, positions)
        start = i * chunk_frames
        old = jax.lax.dynamic_slice_in_dim(mass, start, chunk_frames, axis=1)
        return i + 1, jax.lax.dynamic_update_slice_in_dim(mass, old + chunk_mass, start, axis=1)

    key_sets = running_max.shape[0]
    zeros = jnp.zeros((key_sets, keys.shape[1], positions), jnp.float32)
    _, bank_mass = jax.lax.while_loop(lambda s: s[0] < num_chunks, count, (jnp.int32(0), zeros))
    extra_mass = attention_mass(extra_scores) if extra is not None else None
    return readout, bank_mass, extra_mass
