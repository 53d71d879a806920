"""The streamed long-term read equals the whole-affinity one (readout and every usage counter), and
a long_term step needs about the memory of the default policy's step, not the whole affinity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.inference.step_memory import step_inputs
from stm_jax.inference.stepper import Stepper
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.usage_read import read_with_usage_plain, read_with_usage_streaming
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables


def _inputs(seed, slots, valid_frames, stored, objects=2, key_sets=2, query_objects=1):
    rng = np.random.default_rng(seed)
    positions, key_dim, value_dim = 5, 8, 6
    keys = rng.normal(size=(key_sets, slots, positions, key_dim)).astype(np.float32)
    values = rng.normal(size=(objects, slots, positions, value_dim)).astype(np.float32)
    keys[:, valid_frames:] = np.nan  # stale slots must never reach the result
    values[:, valid_frames:] = np.nan
    query = rng.normal(size=(query_objects, 7, key_dim)).astype(np.float32)
    frame_valid = np.arange(slots) < valid_frames
    extra = (
        jnp.asarray(rng.normal(size=(key_sets, 4, key_dim)), jnp.float32),
        jnp.asarray(rng.normal(size=(objects, 4, value_dim)), jnp.float32),
        jnp.arange(4) < stored,
    )
    return jnp.asarray(keys), jnp.asarray(values), jnp.asarray(frame_valid), extra, query


@pytest.mark.parametrize(
    "chunk,valid_frames,stored,similarity,key_sets,query_objects",
    [
        (1, 3, 2, "dot", 2, 1),
        (2, 3, 0, "dot", 2, 2),
        (4, 8, 4, "l2", 2, 1),
        (2, 1, 3, "cosine", 2, 1),
        (2, 5, 2, "l2", 1, 1),  # keys shared by both objects (STCN)
    ],
)
def test_streamed_read_equals_the_whole_affinity_read(
    chunk, valid_frames, stored, similarity, key_sets, query_objects
):
    keys, values, valid, extra, query = _inputs(
        chunk + valid_frames,
        8,
        valid_frames,
        stored,
        key_sets=key_sets,
        query_objects=query_objects,
    )
    expected, expected_mass, expected_extra = read_with_usage_plain(
        keys, values, valid, query, similarity, 0, extra
    )
    streamed = jax.jit(read_with_usage_streaming, static_argnums=(4, 5))
    readout, mass, extra_mass = streamed(keys, values, valid, query, similarity, chunk, extra)
    assert np.all(np.isfinite(readout)) and readout.shape == (2, 7, 6)
    np.testing.assert_allclose(readout, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mass, expected_mass, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(extra_mass, expected_extra, rtol=1e-5, atol=1e-6)
    # The attention of one read sums to one per query pixel and key set: 7 queries.
    added = extra_mass.sum(-1) + mass.sum((1, 2))
    np.testing.assert_allclose(added, [7.0] * max(key_sets, query_objects), rtol=1e-5)
    assert float(np.abs(mass[:, valid_frames:]).max(initial=0.0)) == 0.0


def _step_temp_bytes(eviction, height, width):
    model_config = ModelConfig(
        backbone="tiny", key_dim=8, value_dim=16, decoder_dim=16, max_objects=2
    )
    variables = init_variables(jax.random.key(0), model_config)
    stepper = Stepper(model_config, MemoryConfig(eviction=eviction))
    inputs = step_inputs(stepper, variables, 1, height, width, 2)
    compiled = stepper.step.lower(variables, *inputs).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.slow
def test_long_term_step_needs_about_the_default_steps_memory():
    """At 240x432 with the default capacity of 40 frames the whole affinity of bank + store would be
    2 objects x (40 x 405 + 512) x 405 floats = 54 MB; streamed, the step stays near the default's."""
    oldest = _step_temp_bytes("oldest", 240, 432)
    long_term = _step_temp_bytes("long_term", 240, 432)
    whole_affinity = 2 * (40 * 405 + 512) * 405 * 4
    assert long_term < oldest + whole_affinity / 4, (oldest, long_term)
