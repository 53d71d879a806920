"""Permanent slots and the long-term store: bookkeeping by hand, the usage-counting read, and a
5,000-frame run that compiles once with flat memory."""

import resource

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.inference import stepper as step_module
from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.memory.bank import commit_if_memory_frame, commit_temporary, init_bank, write_temporary
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.policies.long_term import consolidate
from stm_jax.memory.read import read_plain
from stm_jax.memory.usage_read import read_with_usage_plain
from tests.model_fixtures import TINY, tiny_variables
from tests.parity_utils import random_video


def run_with_pins(num_frames, config, pins):
    """The step's bookkeeping without the network: frame 0 and the frames in `pins` are pinned
    (as `Core.start` / `Segmenter.correct` do); returns the frames held when reading frame t."""
    bank = init_bank(config, 1, 1, 2, 3, 4)
    bank = write_temporary(bank, jnp.zeros((1, 2, 3)), jnp.zeros((1, 2, 4)), 0)
    bank = bank._replace(pin_next=jnp.bool_(True))
    seen = {}
    for t in range(1, num_frames):
        seen[t] = [int(i) for i in np.asarray(bank.frame_index) if i >= 0]
        bank = commit_if_memory_frame(bank, t - 1, config)
        bank = write_temporary(bank, jnp.full((1, 2, 3), t), jnp.full((1, 2, 4), t), t)
        bank = bank._replace(pin_next=jnp.bool_(t in pins))
    return seen


def test_pinned_frames_survive_eviction_and_full_permanent_slots_replace_the_oldest_correction():
    config = MemoryConfig(capacity=6, permanent_slots=3, chunk_frames=2)
    seen = run_with_pins(41, config, pins={7, 12, 21})
    assert seen[22] == [0, 7, 12, 15, 20, 21]  # 5 and 10 evicted, the pinned frames stay
    assert seen[23] == [0, 12, 21, 15, 20, 22]  # permanent slots full: 7 (oldest correction) goes
    assert seen[40] == [0, 12, 21, 30, 35, 39]


def test_one_permanent_slot_keeps_a_correction_as_an_ordinary_frame():
    seen = run_with_pins(13, MemoryConfig(capacity=4, chunk_frames=2), pins={7})
    assert seen[9] == [0, 5, 7, 8]  # 7 kept although 7 % 5 != 0
    assert seen[12] == [0, 7, 10, 11]  # ... and evictable like any kept frame


def store_bank(size=3, prototypes=2):
    """One object, 4 slots of 3 positions with 1-d keys; slot s position p has key 10 s + p (value
    key + 100), in a long-term bank of capacity 4 whose store holds `size` positions."""
    config = MemoryConfig(
        capacity=4,
        chunk_frames=2,
        eviction="long_term",
        long_term_size=size,
        long_term_prototypes=prototypes,
    )
    keys = (10.0 * jnp.arange(4)[:, None] + jnp.arange(3))[None, :, :, None]
    bank = init_bank(config, 1, 1, 3, 1, 1)
    bank = bank._replace(keys=keys, values=keys + 100.0, frame_index=jnp.arange(4))
    return config, bank


def test_consolidation_by_hand():
    _, bank = store_bank()
    bank = bank._replace(
        usage=bank.usage.at[0, 1]
        .set(jnp.array([0.2, 3.0, 1.0]))
        .at[0, 2]
        .set(jnp.array([0.0, 0.0, 4.0])),
        reads=bank.reads.at[1].set(2).at[2].set(1),
    )
    store = bank.policy_state
    # Slot 1: usage per read [0.1, 1.5, 0.5] -> positions 1 and 2 (keys 11, 12) into free 0, 1.
    store = consolidate(store, bank, 1, 2, "usage")
    np.testing.assert_array_equal(store.keys[0, :, 0], [11.0, 12.0, 0.0])
    np.testing.assert_array_equal(store.values[0, :, 0], [111.0, 112.0, 0.0])
    np.testing.assert_array_equal(store.valid, [True, True, False])
    np.testing.assert_allclose(store.usage[0], [1.5, 0.5, 0.0])
    np.testing.assert_array_equal(store.reads, [1, 1, 0])
    # Slot 2: scores [0, 0, 4] -> keys 22 then 20; they fill free position 2 and then replace the
    # least-used prototype (key 12, 0.5 per read), keeping key 11 (1.5 per read).
    store = consolidate(store, bank, 2, 2, "usage")
    np.testing.assert_array_equal(store.keys[0, :, 0], [11.0, 20.0, 22.0])
    np.testing.assert_allclose(store.usage[0], [1.5, 0.0, 4.0])
    # Random selection: 2 distinct positions of the frame, seeded by the frame index.
    random = consolidate(store_bank()[1].policy_state, bank, 3, 2, "random")
    picked = np.asarray(random.keys[0, :2, 0])
    assert len(set(picked)) == 2 and set(picked) <= {30.0, 31.0, 32.0}


def test_a_full_long_term_bank_consolidates_its_oldest_working_frame():
    config, filled = store_bank(size=4)
    bank = init_bank(config, 1, 1, 3, 1, 1)
    for t in range(4):
        bank = write_temporary(bank, filled.keys[:, t], filled.values[:, t], t)
        if t < 3:
            bank = commit_temporary(bank, config)
    bank = bank._replace(
        usage=bank.usage.at[0, 1].set(jnp.array([5.0, 1.0, 3.0])), reads=bank.reads.at[1].set(1)
    )
    bank = commit_temporary(bank, config)
    np.testing.assert_array_equal(bank.frame_index[:4], [0, 2, 3, -1])
    np.testing.assert_array_equal(bank.policy_state.keys[0, :2, 0], [10.0, 12.0])
    np.testing.assert_array_equal(bank.policy_state.valid, [True, True, False, False])


def test_the_usage_counting_read_is_one_softmax_over_bank_and_store():
    rng = np.random.default_rng(0)
    keys = jnp.asarray(rng.normal(size=(2, 4, 5, 8)), jnp.float32)
    values = jnp.asarray(rng.normal(size=(2, 4, 5, 6)), jnp.float32)
    query = jnp.asarray(rng.normal(size=(1, 7, 8)), jnp.float32)
    valid = jnp.array([True, True, True, False])
    readout, mass, _ = read_with_usage_plain(keys, values, valid, query, "dot")
    expected = read_plain(
        keys[:, :3].reshape(2, 15, 8), values[:, :3].reshape(2, 15, 6), jnp.ones(15, bool), query
    )
    np.testing.assert_allclose(readout, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jnp.sum(mass, axis=(1, 2)), [7.0, 7.0], rtol=1e-5)
    np.testing.assert_array_equal(jnp.sum(mass, axis=(0, 2)) > 0, [True, True, True, False])
    # With two valid prototypes: the same as the plain read over bank + prototypes.
    extra = (
        jnp.asarray(rng.normal(size=(2, 3, 8)), jnp.float32),
        jnp.asarray(rng.normal(size=(2, 3, 6)), jnp.float32),
        jnp.array([True, False, True]),
    )
    readout, mass, extra_mass = read_with_usage_plain(keys, values, valid, query, "dot", 0, extra)
    all_keys = jnp.concatenate([keys[:, :3].reshape(2, 15, 8), extra[0][:, ::2]], axis=1)
    all_values = jnp.concatenate([values[:, :3].reshape(2, 15, 6), extra[1][:, ::2]], axis=1)
    expected = read_plain(all_keys, all_values, jnp.ones(17, bool), query)
    np.testing.assert_allclose(readout, expected, rtol=1e-5, atol=1e-6)
    assert float(extra_mass[0, 1]) == 0.0 and float(extra_mass[0, 0]) > 0.0
    total = jnp.sum(mass, axis=(1, 2)) + jnp.sum(extra_mass, axis=1)
    np.testing.assert_allclose(total, [7.0, 7.0], rtol=1e-5)


@pytest.mark.slow
def test_long_term_compiles_once_and_memory_stays_flat_over_5000_frames():
    config = MemoryConfig(
        capacity=4,
        chunk_frames=2,
        mem_every=1,
        eviction="long_term",
        long_term_size=8,
        long_term_prototypes=2,
    )
    stream = VideoStream(Stepper(TINY, config), tiny_variables())
    frames, labels = random_video(8, 32, 32, 2, seed=5)
    before = step_module.TRACE_COUNTS["step"]
    stream.start(frames[0], labels)
    shapes = jax.tree.map(lambda x: (x.shape, x.dtype), stream.state)
    peaks = {}
    for t in range(1, 5000):
        probs = stream.step(frames[t % 8])
        if t + 1 in (500, 5000):
            np.asarray(probs)
            peaks[t + 1] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    state = stream.state
    assert step_module.TRACE_COUNTS["step"] - before == 1
    assert jax.tree.map(lambda x: (x.shape, x.dtype), state) == shapes
    bank = jax.tree.map(lambda x: x[0], state.video.bank)
    assert list(bank.frame_index[:4]) == [0, 4997, 4998, 4999]
    assert bank.policy_state.valid.all() and np.isfinite(bank.policy_state.keys).all()
    assert peaks[5000] <= peaks[500] * 1.02, peaks
