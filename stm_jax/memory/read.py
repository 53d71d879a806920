"""Space-time memory read (spec A.4): affinity of memory keys vs query keys, softmax over memory.

The read's contract (what `make_read(config)` returns, used by inference and training alike):
  read(memory_keys [Ok, S, P, Dk], memory_values [O, S, P, Dv], frame_valid [S] bool (>= 1 True),
       query_keys [Ok or 1, M, Dk]) -> readout [O, M, Dv] float32
i.e. for every object and query pixel, the softmax-weighted (over all valid memory positions of all
S frames) sum of memory values. Invalid frames never contribute, whatever they hold (NaN included).
frame_valid may also be [O, S]: each object reads its own frames (STCN's YouTube-VOS protocol, where
an object's memory starts at the frame it is given), with its own softmax and top-k; the affinity
is still computed once when keys are shared.
Ok is O (STM: keys per object) or 1 (STCN: one key per position for every object, so one affinity
serves all objects and is computed once).

Two implementations with the same result:
* `read_plain` materialises the whole (N x M) affinity — the reference for tests and benchmarks;
* `read_chunked` streams memory in fixed-size chunks of frames with an online (running max / running sum)
  softmax. At inference it runs in a `lax.while_loop` whose trip count is the number of chunks holding
  valid frames, so it costs in proportion to the valid memory, never to the capacity, and compiles once
  for any fill level. Training needs reverse-mode gradients, which a while loop has not: there the same
  body runs in a `lax.scan` over every chunk (`differentiable=True`; a training bank is one chunk).
The similarity comes from `stm_jax.memory.similarity`; affinity and softmax always run in float32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.similarity import affinity

__all__ = ["affinity", "make_read", "read_chunked", "read_plain"]


def _top_k_mask(scores, k: int):
    """Keeps the k largest entries of each column (axis -2), sets the rest to -inf."""
    kth = jax.lax.top_k(jnp.swapaxes(scores, -1, -2), k)[0][..., -1]  # [..., M]
    return jnp.where(scores >= kth[..., None, :], scores, -jnp.inf)


def read_plain(memory_keys, memory_values, memory_valid, query_keys, similarity="dot", top_k=0):
    """Reference read over the whole memory.

    Args:
      memory_keys: [..., N, Dk]; memory_values: [..., N, Dv]; memory_valid: [..., N] bool (at least one
        valid entry); query_keys: [..., M, Dk].
      similarity: a name registered in `stm_jax.memory.similarity` ('dot', 'l2', 'cosine', or
        your own). top_k: if > 0, softmax over the top_k valid affinities only.
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
    differentiable: bool = False,
):
    """Streaming read over frames [0, last valid frame], `chunk_frames` frames at a time.

    Args:
      memory_keys: [O or 1, T, P, Dk] (T memory frames of P positions each; 1: keys shared by all
        objects); memory_values: [O, T, P, Dv]; frame_valid: [T] bool, at least one True; T must be
        a multiple of chunk_frames.
      query_keys: [O or 1, M, Dk].
      similarity: a name in `stm_jax.memory.similarity.SIMILARITIES`. top_k: 0 = full softmax.
      differentiable: visit every chunk in a `lax.scan` (reverse-mode gradients) instead of a
        `lax.while_loop` over the valid chunks only.
    Returns:
      readout [O, M, Dv] float32, equal to `read_plain` over the valid frames.
    """
    # Objects come from the values: with shared keys (STCN) memory_keys has one key set for all.
    _, num_frames, positions, _ = memory_keys.shape
    num_objects, value_dim = memory_values.shape[0], memory_values.shape[-1]
    if num_frames % chunk_frames:
        raise ValueError(
            f"memory frames {num_frames} not a multiple of chunk_frames {chunk_frames}"
        )
    num_queries = query_keys.shape[-2]
    loop = functools.partial(
        _chunk_loop,
        num_chunks=valid_chunks(frame_valid, chunk_frames),
        total_chunks=num_frames // chunk_frames,
        differentiable=differentiable,
    )
    chunk = functools.partial(
        chunk_scores, memory_keys, memory_values, frame_valid, query_keys, chunk_frames, similarity
    )

    if top_k:
        flat_values = memory_values.reshape(num_objects, num_frames * positions, value_dim)
        key_sets = _key_sets(memory_keys, query_keys, frame_valid)
        return _read_chunked_top_k(
            chunk, loop, chunk_frames * positions, flat_values, num_queries, top_k, key_sets
        )

    def body(state):
        i, *softmax = state
        return (i + 1, *online_softmax_update(softmax, *chunk(i)))

    init = online_softmax_init(memory_keys, query_keys, memory_values, frame_valid)
    _, _, total, accumulator = loop(body, (jnp.int32(0), *init))
    return accumulator / total[..., None]


def _key_sets(memory_keys, query_keys, frame_valid):
    """Rows of the softmax statistics: O with keys per object or a per-object frame_valid, else 1."""
    per_object = frame_valid.shape[0] if frame_valid.ndim == 2 else 1
    return max(memory_keys.shape[0], query_keys.shape[0], per_object)


def valid_chunks(frame_valid, chunk_frames: int):
    """The number of chunks up to the last valid frame of any object (valid frames are a prefix in
    the bank, but any pattern is read correctly: invalid frames inside the visited chunks are
    masked)."""
    if frame_valid.ndim == 2:
        frame_valid = jnp.any(frame_valid, axis=0)
    last_valid = jnp.max(jnp.where(frame_valid, jnp.arange(frame_valid.shape[0]), -1))
    return (last_valid + chunk_frames) // chunk_frames


def chunk_scores(memory_keys, memory_values, frame_valid, query_keys, chunk_frames, similarity, i):
    """Chunk i of the memory: (scores [Ok, n, M] float32 with -inf at invalid frames, values [O, n, Dv]
    with 0 there), n = chunk_frames * positions; with a per-object frame_valid [O, T] the scores
    have one row per object ([O, n, M])."""
    num_objects, _, positions, value_dim = memory_values.shape
    start = i * chunk_frames
    keys = jax.lax.dynamic_slice_in_dim(memory_keys, start, chunk_frames, axis=1)
    values = jax.lax.dynamic_slice_in_dim(memory_values, start, chunk_frames, axis=1)
    valid = jax.lax.dynamic_slice_in_dim(frame_valid, start, chunk_frames, axis=-1)
    keys = keys.reshape(keys.shape[0], chunk_frames * positions, -1)
    values = values.reshape(num_objects, chunk_frames * positions, value_dim)
    scores = affinity(keys, query_keys, similarity)
    valid = jnp.repeat(valid, positions, axis=-1)[..., None]  # [n, 1] or [O, n, 1]
    # Zero the values of invalid slots too: 0 weight times a stale non-finite value is still NaN.
    values = jnp.where(valid, values, 0)
    return jnp.where(valid, scores, -jnp.inf), values


def online_softmax_init(memory_keys, query_keys, memory_values, frame_valid=None):
    """(running max, running sum, accumulator) before any memory position was seen; the softmax
    statistics have one row per key set (O, or 1 with shared keys and a frame_valid shared by all
    objects), the accumulator one per object."""
    num_objects, value_dim = memory_values.shape[0], memory_values.shape[-1]
    valid = jnp.zeros((1,), bool) if frame_valid is None else frame_valid
    key_sets = _key_sets(memory_keys, query_keys, valid)
    num_queries = query_keys.shape[-2]
    return (
        jnp.full((key_sets, num_queries), -jnp.inf, jnp.float32),
        jnp.zeros((key_sets, num_queries), jnp.float32),
        jnp.zeros((num_objects, num_queries, value_dim), jnp.float32),
    )


def online_softmax_update(softmax_state, scores, values):
    """Adds memory positions (scores [Ok, n, M], values [O, n, Dv]; Ok = O or 1) to a running
    softmax-weighted sum; accumulator / running sum is the read over every position added so far."""
    running_max, running_sum, accumulator = softmax_state
    new_max = jnp.maximum(running_max, jnp.max(scores, axis=-2))
    # Positions that are all invalid leave -inf maxima; shift by 0 there to avoid inf - inf.
    shift = jnp.where(jnp.isfinite(new_max), new_max, 0.0)
    weights = jnp.exp(scores - shift[..., None, :])
    rescale = jnp.exp(running_max - shift)
    running_sum = running_sum * rescale + jnp.sum(weights, axis=-2)
    accumulator = accumulator * rescale[..., None] + jnp.einsum(
        "onm,onv->omv", weights, values.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST
    )
    return new_max, running_sum, accumulator


def _chunk_loop(body, init, num_chunks, total_chunks: int, differentiable: bool):
    """Runs `body` over chunks 0..num_chunks-1 (while loop), or over all chunks (scan): chunks past
    the last valid frame hold no valid frame, so the body leaves the state unchanged there."""
    if differentiable:
        state, _ = jax.lax.scan(lambda s, _: (body(s), None), init, None, length=total_chunks)
        return state
    return jax.lax.while_loop(lambda s: s[0] < num_chunks, body, init)


def _read_chunked_top_k(chunk, loop, chunk_size, flat_values, num_queries, top_k, key_sets):
    """Top-k variant: a running top-k of (score, memory index) per query pixel across chunks (one
    per key set: O, or 1 with shared keys); the k values of each query pixel are gathered once at
    the end."""
    num_objects = flat_values.shape[0]

    def body(state):
        i, best_scores, best_index = state
        scores, _ = chunk(i)  # [Ok, n, M]
        index = i * chunk_size + jnp.arange(chunk_size, dtype=jnp.int32)
        all_scores = jnp.concatenate(
            [best_scores, jnp.swapaxes(scores, 1, 2)], axis=2
        )  # [Ok, M, k+n]
        all_index = jnp.concatenate(
            [best_index, jnp.broadcast_to(index, (key_sets, num_queries, chunk_size))], axis=2
        )
        kept_scores, position = jax.lax.top_k(all_scores, top_k)
        return i + 1, kept_scores, jnp.take_along_axis(all_index, position, axis=2)

    init = (
        jnp.int32(0),
        jnp.full((key_sets, num_queries, top_k), -jnp.inf, jnp.float32),
        jnp.zeros((key_sets, num_queries, top_k), jnp.int32),
    )
    _, scores, index = loop(body, init)
    weights = jax.nn.softmax(scores, axis=-1)
    index = jnp.broadcast_to(index, (num_objects, *index.shape[1:]))
    values = jax.vmap(lambda v, idx: v[idx])(
        flat_values.astype(jnp.float32), index
    )  # [O, M, k, Dv]
    # Fewer valid positions than k leave -inf entries: weight 0, and their values (stale, maybe
    # non-finite) zeroed so that 0 * NaN does not reach the readout.
    values = jnp.where(jnp.isfinite(scores)[..., None], values, 0.0)
    return jnp.einsum("omk,omkv->omv", weights, values, precision=jax.lax.Precision.HIGHEST)


def make_read(config: MemoryConfig, differentiable: bool = False):
    """The memory read that `config` selects (see the module docstring for its contract).

    Args:
      config: the memory configuration (similarity, top_k, chunk_frames).
      differentiable: True in training (reverse-mode gradients through the read).
    Returns:
      `read(memory_keys, memory_values, frame_valid, query_keys) -> readout`.
    """
    return functools.partial(
        read_chunked,
        chunk_frames=config.chunk_frames,
        similarity=config.similarity,
        top_k=config.top_k,
        differentiable=differentiable,
    )
