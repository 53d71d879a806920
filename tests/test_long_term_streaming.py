"""The streamed long-term read equals the whole-affinity one (readout and every usage counter), and
a long_term step needs about the memory of the default policy's step, not the whole affinity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.accelerator import abstract_step_inputs
from stm_jax.inference.batched import BatchedStepper
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.long_term import init_store, read_with_usage, read_with_usage_streaming
from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import init_variables


def _inputs(seed, slots, valid_frames, stored, objects=2, query_objects=1):
    rng = np.random.default_rng(seed)
    positions, key_dim, value_dim = 5, 8, 6
    keys = rng.normal(size=(objects, slots, positions, key_dim)).astype(np.float32)
    values = rng.normal(size=(objects, slots, positions, value_dim)).astype(np.float32)
    keys[:, valid_frames:] = np.nan  # stale slots must never reach the result
    values[:, valid_frames:] = np.nan
    query = rng.normal(size=(query_objects, 7, key_dim)).astype(np.float32)
    frame_valid = np.arange(slots) < valid_frames
    store = init_store(objects, slots, positions, key_dim, value_dim, size=4, dtype=jnp.float32)
    store = store._replace(
        keys=jnp.asarray(rng.normal(size=(objects, 4, key_dim)), jnp.float32),
        values=jnp.asarray(rng.normal(size=(objects, 4, value_dim)), jnp.float32),
        valid=jnp.arange(4) < stored,
        usage=jnp.asarray(rng.random((objects, 4)), jnp.float32),
        reads=jnp.asarray(rng.integers(0, 5, 4), jnp.int32),
        slot_usage=jnp.asarray(rng.random((objects, slots, positions)), jnp.float32),
        slot_reads=jnp.asarray(rng.integers(0, 5, slots), jnp.int32),
    )
    return jnp.asarray(keys), jnp.asarray(values), jnp.asarray(frame_valid), store, query


@pytest.mark.parametrize(
    "chunk,valid_frames,stored,similarity,query_objects",
    [(1, 3, 2, "dot", 1), (2, 3, 0, "dot", 2), (4, 8, 4, "l2", 1), (2, 1, 3, "cosine", 1)],
)
def test_streamed_read_equals_the_whole_affinity_read(
    chunk, valid_frames, stored, similarity, query_objects
):
    keys, values, valid, store, query = _inputs(
        chunk + valid_frames, 8, valid_frames, stored, query_objects=query_objects
    )
    expected, expected_store = read_with_usage(keys, values, valid, store, query, similarity)
    streamed = jax.jit(read_with_usage_streaming, static_argnums=(5, 6))
    readout, got_store = streamed(keys, values, valid, store, query, similarity, chunk)
    assert np.all(np.isfinite(readout))
    np.testing.assert_allclose(readout, expected, rtol=1e-5, atol=1e-6)
    for name in ("usage", "slot_usage"):
        np.testing.assert_allclose(
            getattr(got_store, name), getattr(expected_store, name), rtol=1e-5, atol=1e-6
        )
    for name in ("reads", "slot_reads", "keys", "values", "valid"):
        np.testing.assert_array_equal(getattr(got_store, name), getattr(expected_store, name))
    # The attention of one read sums to one per query pixel and object: 7 queries.
    added = (got_store.usage - store.usage).sum(-1) + (got_store.slot_usage - store.slot_usage).sum(
        (1, 2)
    )
    np.testing.assert_allclose(added, [7.0, 7.0], rtol=1e-5)


def _step_temp_bytes(eviction, height, width):
    model_config = ModelConfig(
        backbone="tiny", key_dim=8, value_dim=16, decoder_dim=16, max_objects=2
    )
    variables = init_variables(jax.random.key(0), model_config)
    stepper = BatchedStepper(model_config, MemoryConfig(eviction=eviction))
    inputs = abstract_step_inputs(stepper, variables, 1, height, width, 2)
    compiled = stepper.step.lower(variables, *inputs).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_long_term_step_needs_about_the_default_steps_memory():
    """At 240x432 with the default capacity of 40 frames the whole affinity of bank + store would be
    2 objects x (40 x 405 + 512) x 405 floats = 54 MB; streamed, the step stays near the default's."""
    oldest = _step_temp_bytes("oldest", 240, 432)
    long_term = _step_temp_bytes("long_term", 240, 432)
    whole_affinity = 2 * (40 * 405 + 512) * 405 * 4
    assert long_term < oldest + whole_affinity / 4, (oldest, long_term)
