"""Space-time memory read (spec A.4): affinity of memory keys vs query keys, softmax over memory.

Two implementations with the same result:
* `read_plain` materialises the whole (N x M) affinity — the reference, and what training uses (tiny memory);
* `read_chunked` streams memory in fixed-size chunks of frames with an online (running max / running sum)
  softmax inside a `lax.while_loop` whose trip count is the number of chunks holding valid frames, so it
  costs in proportion to the valid memory, never to the capacity, and compiles once for any fill level.
Affinity and softmax always run in float32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def affinity(memory_keys, query_keys, similarity: str = "dot"):
    """Scaled similarity of every memory position with every query position.

    'dot' (STM): k_m . k_q / sqrt(d). 'l2' (STCN): (2 k_m . k_q - |k_m|^2) / sqrt(d), i.e. the negative
    squared distance with the query-only |k_q|^2 term dropped (constant under the softmax over memory).

    Args:
      memory_keys: [..., N, D]; query_keys: [..., M, D].
    Returns:
      [..., N, M] float32.
    """
    mk = memory_keys.astype(jnp.float32)
    qk = query_keys.astype(jnp.float32)
    scale = 1.0 / math.sqrt(mk.shape[-1])
    dots = jnp.einsum("...nd,...md->...nm", mk, qk, precision=jax.lax.Precision.HIGHEST)
    if similarity == "dot":
        return dots * scale
    if similarity == "l2":
        return (2.0 * dots - jnp.sum(mk * mk, axis=-1)[..., None]) * scale
    raise ValueError(f"Unknown similarity {similarity!r}; use 'dot' or 'l2'.")


def _top_k_mask(scores, k: int):
    """Keeps the k largest entries of each column (axis -2), sets the rest to -inf."""
    kth = jax.lax.top_k(jnp.swapaxes(scores, -1, -2), k)[0][..., -1]  # [..., M]
    return jnp.where(scores >= kth[..., None, :], scores, -jnp.inf)


def read_plain(memory_keys, memory_values, memory_valid, query_keys, similarity="dot", top_k=0):
    """Reference read over the whole memory.

    Args:
      memory_keys: [..., N, Dk]; memory_values: [..., N, Dv]; memory_valid: [..., N] bool (at least one
        valid entry); query_keys: [..., M, Dk].
      similarity: 'dot' or 'l2'. top_k: if > 0, softmax over the top_k valid affinities only.
    Returns:
      readout [..., M, Dv] float32.
    """
    scores = affinity(memory_keys, query_keys, similarity)
    scores = jnp.where(memory_valid[..., :, None], scores, -jnp.inf)
    if top_k:
        scores = _top_k_mask(scores, min(top_k, scores.shape[-2]))
    weights = jax.nn.softmax(scores, axis=-2)
    return jnp.einsum(
        "...nm,...nv->...mv",
        weights,
        memory_values.astype(jnp.float32),
        precision=jax.lax.Precision.HIGHEST,
    )


def read_chunked(
    memory_keys,
    memory_values,
    frame_valid,
    query_keys,
    chunk_frames: int,
    similarity="dot",
    top_k=0,
):
    """Streaming read over frames [0, last valid frame], `chunk_frames` frames at a time.

    Args:
      memory_keys: [O, T, P, Dk] (T memory frames of P positions each); memory_values: [O, T, P, Dv];
      frame_valid: [T] bool, at least one True; T must be a multiple of chunk_frames.
      query_keys: [O or 1, M, Dk].
    Returns:
      readout [O, M, Dv] float32, equal to `read_plain` over the valid frames.
    """
    num_objects, num_frames, positions, _ = memory_keys.shape
    value_dim = memory_values.shape[-1]
    if num_frames % chunk_frames:
        raise ValueError(
            f"memory frames {num_frames} not a multiple of chunk_frames {chunk_frames}"
        )
    num_queries = query_keys.shape[-2]
    last_valid = jnp.max(jnp.where(frame_valid, jnp.arange(num_frames), -1))
    num_chunks = (last_valid + chunk_frames) // chunk_frames

    def chunk(i):
        start = i * chunk_frames
        keys = jax.lax.dynamic_slice_in_dim(memory_keys, start, chunk_frames, axis=1)
        values = jax.lax.dynamic_slice_in_dim(memory_values, start, chunk_frames, axis=1)
        valid = jax.lax.dynamic_slice_in_dim(frame_valid, start, chunk_frames)
        keys = keys.reshape(num_objects, chunk_frames * positions, -1)
        values = values.reshape(num_objects, chunk_frames * positions, value_dim)
        scores = affinity(keys, query_keys, similarity)
        valid = jnp.repeat(valid, positions)
        # Zero the values of invalid slots too: 0 weight times a stale non-finite value is still NaN.
        values = jnp.where(valid[:, None], values, 0)
        return jnp.where(valid[:, None], scores, -jnp.inf), values

    if top_k:
        flat_values = memory_values.reshape(num_objects, num_frames * positions, value_dim)
        return _read_chunked_top_k(
            chunk, num_chunks, chunk_frames * positions, flat_values, num_queries, top_k
        )

    def body(state):
        i, running_max, running_sum, accumulator = state
        scores, values = chunk(i)
        new_max = jnp.maximum(running_max, jnp.max(scores, axis=-2))
        # A chunk whose frames are all invalid leaves -inf maxima; shift by 0 there to avoid inf - inf.
        shift = jnp.where(jnp.isfinite(new_max), new_max, 0.0)
        weights = jnp.exp(scores - shift[..., None, :])
        rescale = jnp.exp(running_max - shift)
        running_sum = running_sum * rescale + jnp.sum(weights, axis=-2)
        accumulator = accumulator * rescale[..., None] + jnp.einsum(
            "onm,onv->omv", weights, values.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST
        )
        return i + 1, new_max, running_sum, accumulator

    init = (
        jnp.int32(0),
        jnp.full((num_objects, num_queries), -jnp.inf, jnp.float32),
        jnp.zeros((num_objects, num_queries), jnp.float32),
        jnp.zeros((num_objects, num_queries, value_dim), jnp.float32),
    )
    _, _, total, accumulator = jax.lax.while_loop(lambda s: s[0] < num_chunks, body, init)
    return accumulator / total[..., None]


def _read_chunked_top_k(chunk, num_chunks, chunk_size, flat_values, num_queries, top_k):
    """Top-k variant: a running top-k of (score, memory index) per query pixel across chunks; the k
    values of each query pixel are gathered once at the end."""
    num_objects = flat_values.shape[0]

    def body(state):
        i, best_scores, best_index = state
        scores, _ = chunk(i)  # [O, n, M]
        index = i * chunk_size + jnp.arange(chunk_size, dtype=jnp.int32)
        all_scores = jnp.concatenate(
            [best_scores, jnp.swapaxes(scores, 1, 2)], axis=2
        )  # [O, M, k+n]
        all_index = jnp.concatenate(
            [best_index, jnp.broadcast_to(index, (num_objects, num_queries, chunk_size))], axis=2
        )
        kept_scores, position = jax.lax.top_k(all_scores, top_k)
        return i + 1, kept_scores, jnp.take_along_axis(all_index, position, axis=2)

    init = (
        jnp.int32(0),
        jnp.full((num_objects, num_queries, top_k), -jnp.inf, jnp.float32),
        jnp.zeros((num_objects, num_queries, top_k), jnp.int32),
    )
    _, scores, index = jax.lax.while_loop(lambda s: s[0] < num_chunks, body, init)
    weights = jax.nn.softmax(scores, axis=-1)
    values = jax.vmap(lambda v, idx: v[idx])(
        flat_values.astype(jnp.float32), index
    )  # [O, M, k, Dv]
    return jnp.einsum("omk,omkv->omv", weights, values, precision=jax.lax.Precision.HIGHEST)
