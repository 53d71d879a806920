"""The chunked online-softmax read equals the plain read; similarity and top-k variants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.memory.read import affinity, read_chunked, read_plain

OBJECTS, FRAMES, POSITIONS, QUERIES, DK, DV, CHUNK = 2, 8, 6, 5, 16, 12, 3


def memory(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    keys = jax.random.normal(k1, (OBJECTS, 9, POSITIONS, DK)) * 2.0  # 9 = 3 chunks of 3 frames
    values = jax.random.normal(k2, (OBJECTS, 9, POSITIONS, DV))
    query = jax.random.normal(k3, (1, QUERIES, DK)) * 2.0
    return keys, values, query


def plain_over_valid(keys, values, frame_valid, query, similarity="dot", top_k=0):
    """Reference: the plain read over exactly the valid frames (invalid ones dropped)."""
    index = np.flatnonzero(frame_valid)
    k = keys[:, index].reshape(OBJECTS, -1, DK)
    v = values[:, index].reshape(OBJECTS, -1, DV)
    valid = jnp.ones(k.shape[:2], bool)
    return read_plain(
        k, v, valid, jnp.broadcast_to(query, (OBJECTS, QUERIES, DK)), similarity, top_k
    )


@pytest.mark.parametrize("num_valid", [1, 4, 9])
@pytest.mark.parametrize("similarity", ["dot", "l2"])
def test_chunked_equals_plain_over_valid_frames(num_valid, similarity):
    keys, values, query = memory()
    frame_valid = np.arange(9) < num_valid
    ours = read_chunked(keys, values, jnp.asarray(frame_valid), query, CHUNK, similarity)
    reference = plain_over_valid(keys, values, frame_valid, query, similarity)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=1e-5)


def test_chunked_ignores_garbage_in_invalid_slots():
    keys, values, query = memory()
    frame_valid = jnp.arange(9) < 4
    garbage_keys = keys.at[:, 4:].set(1e3)
    garbage_values = values.at[:, 4:].set(jnp.nan)
    clean = read_chunked(keys, values, frame_valid, query, CHUNK)
    dirty = read_chunked(garbage_keys, garbage_values, frame_valid, query, CHUNK)
    np.testing.assert_array_equal(clean, dirty)


@pytest.mark.parametrize("num_valid", [1, 5, 9])
def test_chunked_top_k_equals_plain_top_k(num_valid):
    keys, values, query = memory(1)
    frame_valid = np.arange(9) < num_valid
    ours = read_chunked(keys, values, jnp.asarray(frame_valid), query, CHUNK, "dot", top_k=7)
    reference = plain_over_valid(keys, values, frame_valid, query, "dot", top_k=7)
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=1e-5)


def test_top_k_changes_the_result_and_k1_is_argmax():
    keys, values, query = memory(2)
    frame_valid = jnp.ones(9, bool)
    full = read_chunked(keys, values, frame_valid, query, CHUNK)
    top1 = read_chunked(keys, values, frame_valid, query, CHUNK, top_k=1)
    assert not np.allclose(full, top1)
    flat_k = keys.reshape(OBJECTS, -1, DK)
    best = jnp.argmax(affinity(flat_k, query), axis=1)  # [O, M]
    expected = jnp.take_along_axis(values.reshape(OBJECTS, -1, DV), best[..., None], axis=1)
    np.testing.assert_allclose(top1, expected, atol=1e-6)


def test_affinity_hand_computed():
    mk = jnp.array([[1.0, 2.0], [0.0, -1.0]])  # N=2, D=2
    qk = jnp.array([[3.0, 1.0]])  # M=1
    dot = np.array([[5.0], [-1.0]]) / np.sqrt(2)
    l2 = np.array([[2 * 5.0 - 5.0], [2 * -1.0 - 1.0]]) / np.sqrt(2)
    np.testing.assert_allclose(affinity(mk, qk, "dot"), dot, rtol=1e-6)
    np.testing.assert_allclose(affinity(mk, qk, "l2"), l2, rtol=1e-6)
    # l2 differs from the true negative squared distance only by a per-query constant (|q|^2 / sqrt d)
    true = -np.sum((np.asarray(mk) - np.asarray(qk)) ** 2, -1)[:, None] / np.sqrt(2)
    np.testing.assert_allclose(
        np.asarray(affinity(mk, qk, "l2")) - true, 10.0 / np.sqrt(2), rtol=1e-6
    )


def test_plain_read_softmax_is_over_memory_axis():
    mk = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
    mv = jnp.array([[[10.0], [20.0]]])
    qk = jnp.array([[[1.0, 0.0]]])
    w = np.exp(np.array([1.0, 0.0]) / np.sqrt(2))
    w /= w.sum()
    expected = w @ np.array([10.0, 20.0])
    out = read_plain(mk, mv, jnp.ones((1, 2), bool), qk)
    np.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("chunk_frames", [1, 2, 4])
@pytest.mark.parametrize("shared_keys", [False, True])
@pytest.mark.parametrize("top_k", [4, 9])
def test_streaming_top_k_equals_whole_affinity_top_k(chunk_frames, shared_keys, top_k):
    """Per-chunk top-k merged across chunks == top-k of the whole affinity over the valid positions:
    chunk sizes 1, 2, 4; k below and above a chunk's positions; invalid slots inside and after the
    visited chunks hold huge keys and NaN values; keys per object (STM) or shared (STCN)."""
    k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
    key_sets = 1 if shared_keys else OBJECTS
    keys = jax.random.normal(k1, (key_sets, 8, POSITIONS, DK)) * 0.5  # a flat affinity
    values = jax.random.normal(k2, (OBJECTS, 8, POSITIONS, DV))
    query = jax.random.normal(k3, (1, QUERIES, DK)) * 0.5
    frame_valid = np.array([1, 1, 0, 1, 1, 0, 0, 0], bool)  # a hole, then empty slots
    dirty_keys = jnp.where(frame_valid[None, :, None, None], keys, 1e3)
    dirty_values = jnp.where(frame_valid[None, :, None, None], values, jnp.nan)
    ours = read_chunked(
        dirty_keys, dirty_values, jnp.asarray(frame_valid), query, chunk_frames, "l2", top_k
    )
    index = np.flatnonzero(frame_valid)
    flat_keys = jnp.broadcast_to(keys[:, index], (OBJECTS, len(index), POSITIONS, DK))
    reference = read_plain(
        flat_keys.reshape(OBJECTS, -1, DK),
        values[:, index].reshape(OBJECTS, -1, DV),
        jnp.ones((OBJECTS, len(index) * POSITIONS), bool),
        jnp.broadcast_to(query, (OBJECTS, QUERIES, DK)),
        "l2",
        top_k,
    )
    assert ours.shape == (OBJECTS, QUERIES, DV) and np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=1e-5)
    full = read_plain(
        flat_keys.reshape(OBJECTS, -1, DK),
        values[:, index].reshape(OBJECTS, -1, DV),
        jnp.ones((OBJECTS, len(index) * POSITIONS), bool),
        jnp.broadcast_to(query, (OBJECTS, QUERIES, DK)),
        "l2",
    )
    assert not np.allclose(ours, full, atol=1e-3)  # top-k is not the full softmax here
