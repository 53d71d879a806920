"""Per-object memory (STCN's YouTube-VOS protocol) in the read and the bank: each object reads only
its own frames, with its own top-k, streamed in chunks or whole; the 'since_last' mem_every count
restarts at every frame where objects are given."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.memory.bank import (
    commit_if_memory_frame,
    init_bank,
    read_bank,
    readable_frames,
    write_temporary,
)
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.read import make_read, read_chunked, read_plain

OBJECTS, FRAMES, POSITIONS, QUERIES, DK, DV = 3, 8, 5, 6, 8, 4
# Object 0 from frame 0, object 1 from frame 3 (frame 5 not valid: a gap), object 2 at frame 7 only.
OWN_FRAMES = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 1, 1, 0, 1, 1],
        [0, 0, 0, 0, 0, 0, 0, 1],
    ],
    bool,
)


def shared_key_memory(seed=0):
    """Keys shared by all objects (Ok = 1, STCN), per-object values, one query."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    keys = jax.random.normal(k1, (1, FRAMES, POSITIONS, DK)) * 2.0
    values = jax.random.normal(k2, (OBJECTS, FRAMES, POSITIONS, DV))
    query = jax.random.normal(k3, (1, QUERIES, DK)) * 2.0
    return keys, values, query


@pytest.mark.parametrize("chunk", [1, 2, 4])
@pytest.mark.parametrize("top_k", [0, 3, 7, 12])
def test_chunked_per_object_read_equals_whole_affinity(chunk, top_k):
    keys, values, query = shared_key_memory()
    ours = read_chunked(keys, values, jnp.asarray(OWN_FRAMES), query, chunk, "l2", top_k)
    # The whole (O x N x M) affinity with each object's invalid positions masked out.
    valid = np.repeat(OWN_FRAMES, POSITIONS, axis=1)  # [O, N]
    whole = read_plain(
        keys.reshape(1, -1, DK),
        values.reshape(OBJECTS, -1, DV),
        jnp.asarray(valid),
        query,
        "l2",
        top_k,
    )
    np.testing.assert_allclose(ours, whole, atol=1e-5, rtol=1e-5)
    for o in range(OBJECTS):  # and each object alone over its own frames only (its own bank)
        own = np.flatnonzero(OWN_FRAMES[o])
        alone = read_plain(
            keys[:, own].reshape(1, -1, DK),
            values[o : o + 1, own].reshape(1, -1, DV),
            jnp.ones((1, own.size * POSITIONS), bool),
            query,
            "l2",
            top_k,
        )
        np.testing.assert_allclose(ours[o], alone[0], atol=1e-5, rtol=1e-5)


def test_per_object_read_ignores_other_objects_frames():
    keys, values, query = shared_key_memory(1)
    dirty = values.at[2, :7].set(jnp.nan)  # object 2 reads frame 7 only
    clean = read_chunked(keys, values, jnp.asarray(OWN_FRAMES), query, 2, "l2", 20)
    ours = read_chunked(keys, dirty, jnp.asarray(OWN_FRAMES), query, 2, "l2", 20)
    np.testing.assert_array_equal(ours, clean)
    # With top_k >= its 5 positions, object 2's read is the full softmax over frame 7.
    scores = 2 * query[0] @ keys[0, 7].T - jnp.sum(keys[0, 7] ** 2, -1)
    expected = jax.nn.softmax(scores / np.sqrt(DK), axis=-1) @ values[2, 7]
    np.testing.assert_allclose(ours[2], expected, atol=1e-5, rtol=1e-5)


def kept_frames(config, num_frames, starts):
    """The bank's bookkeeping over a video without the network: objects given at `starts`
    ({object: frame}); returns the frames held after the last commit and, per frame t, the frames
    each object reads (an [O, S] mask turned into frame lists)."""
    bank = init_bank(config, 1, OBJECTS, 1, 2, 2)
    bank = write_temporary(bank, jnp.zeros((1, 1, 2)), jnp.zeros((OBJECTS, 1, 2)), 0)
    bank = bank._replace(pin_next=jnp.bool_(True))
    reads = {}
    for t in range(1, num_frames):
        for obj, start in starts.items():
            if start == t - 1:
                bank = bank._replace(object_start=bank.object_start.at[obj].set(start))
        q = jnp.zeros((1, 2))
        valid = readable_frames(bank, config)
        index = np.asarray(bank.frame_index)
        per_object = np.asarray(valid)[None] & (
            index[None] >= np.asarray(bank.object_start)[:, None]
        )
        reads[t] = [sorted(int(i) for i in index[row]) for row in per_object]
        read_bank(bank, q, config, make_read(config))  # per-object read runs (no NaN below)
        bank = commit_if_memory_frame(bank, t - 1, config)
        bank = write_temporary(bank, jnp.zeros((1, 1, 2)), jnp.zeros((OBJECTS, 1, 2)), t)
    return reads


def test_since_last_rule_restarts_at_given_frames():
    config = MemoryConfig(
        mem_every=3, read_previous=False, mem_every_counts="since_last", per_object_memory=True
    )
    reads = kept_frames(config, 13, {1: 3, 2: 7})
    # Memory frames: 0, 3 (given), 6 = 3 + 3, 7 (given), 10 = 7 + 3; never 9 or 12.
    assert reads[12] == [[0, 3, 6, 7, 10], [3, 6, 7, 10], [7, 10]]
    assert reads[8] == [[0, 3, 6, 7], [3, 6, 7], [7]]
    assert reads[4] == [[0, 3], [3], [0, 3]]  # object 2 not given yet: not in aggregation
    # The DAVIS rule on the same video: frame_index % 3 == 0.
    modulo = MemoryConfig(mem_every=3, read_previous=False)
    assert kept_frames(modulo, 13, {1: 3, 2: 7})[12][0] == [0, 3, 6, 9]


def test_per_object_memory_needs_a_plain_policy():
    config = MemoryConfig(per_object_memory=True, eviction="least_used")
    bank = init_bank(config, 1, OBJECTS, 1, 2, 2)
    with pytest.raises(ValueError, match="per_object_memory=True does not combine"):
        read_bank(bank, jnp.zeros((1, 2)), config, make_read(config))
