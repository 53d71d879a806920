"""Loss, optimizer and the jitted training step on one device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.model.config import ModelConfig
from stm_jax.training import step as step_lib
from stm_jax.training.defaults import default_train_config
from stm_jax.training.forward import clip_logits
from stm_jax.training.init import initial_variables
from stm_jax.training.loss import bootstrap_fraction, frame_losses
from stm_jax.training.optimizer import make_schedule
from tests.model_fixtures import TINY
from tests.train_fixtures import random_batch


def _train_config(**overrides):
    t = default_train_config()
    t.lr = 1e-3
    t.update(overrides)
    return t


def _run(train_config, batch, steps=3, seed=0):
    variables, _ = initial_variables(TINY, "", seed)
    mesh = step_lib.make_mesh()
    state = step_lib.replicate(
        step_lib.init_train_state(variables["params"], train_config, 0), mesh
    )
    bs = step_lib.replicate(variables["batch_stats"], mesh)
    fn = step_lib.make_train_step(mesh, TINY, train_config)
    history = []
    for _ in range(steps):
        state, metrics = fn(state, bs, batch)
        history.append({k: float(v) for k, v in metrics.items()})
    return state, history


def test_cross_entropy_matches_hand_computation_and_ignores_void():
    logits = jnp.zeros((1, 1, 1, 2, 3)).at[0, 0, 0, 0, 1].set(2.0)
    labels = jnp.array([[[[1, 2]]]])
    valid = jnp.array([[[[True, False]]]])
    expected = -np.log(np.exp(2) / (np.exp(2) + 2))
    np.testing.assert_allclose(frame_losses(logits, labels, valid), [[expected]], rtol=1e-6)


def test_bootstrap_keeps_the_hardest_pixels():
    logits = jnp.zeros((1, 1, 1, 4, 2)).at[0, 0, 0, :, 0].set(jnp.array([4.0, 2.0, 0.0, -2.0]))
    labels = jnp.zeros((1, 1, 1, 4), jnp.int32)
    valid = jnp.ones((1, 1, 1, 4), bool)
    ce = -jax.nn.log_softmax(logits, -1)[0, 0, 0, :, 0]
    half = frame_losses(logits, labels, valid, keep_fraction=0.5)
    np.testing.assert_allclose(half[0, 0], (ce[2] + ce[3]) / 2, rtol=1e-6)
    np.testing.assert_allclose(frame_losses(logits, labels, valid, 1.0)[0, 0], ce.mean(), rtol=1e-6)
    assert float(bootstrap_fraction(0, 10, 20, 0.15)) == 1.0
    assert float(bootstrap_fraction(15, 10, 20, 0.15)) == pytest.approx(0.575)
    assert float(bootstrap_fraction(99, 10, 20, 0.15)) == pytest.approx(0.15)


def test_schedules():
    poly = make_schedule(_train_config(lr_schedule="poly", num_steps=100, lr=1.0, lr_power=1.0))
    assert float(poly(50)) == pytest.approx(0.5)
    step = make_schedule(
        _train_config(lr_schedule="step", num_steps=100, lr=1.0, lr_boundaries=(0.5,))
    )
    assert float(step(49)) == pytest.approx(1.0) and float(step(51)) == pytest.approx(0.1)
    warm = make_schedule(_train_config(warmup_steps=10, lr=1.0))
    assert float(warm(5)) == pytest.approx(0.5) and float(warm(20)) == pytest.approx(1.0)


@pytest.mark.slow
def test_step_learns_and_keeps_batch_stats_frozen():
    batch = random_batch()
    t = _train_config(grad_clip=1.0, weight_decay=1e-4)
    step_lib.TRACE_COUNT["step"] = 0
    state, history = _run(t, batch, steps=6)
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(np.isfinite(h["grad_norm"]) and h["grad_norm"] > 0 for h in history)
    assert step_lib.TRACE_COUNT["step"] == 1  # compiled once
    assert int(state["step"]) == 6
    assert set(history[0]) >= {"loss", "grad_norm", "lr", "loss_frame2", "loss_frame3"}


@pytest.mark.slow
def test_gradient_accumulation_equals_full_batch():
    batch = random_batch(batch=4)
    # A large Adam eps keeps updates continuous in the gradient: with eps=1e-8 a float-rounding
    # difference in a near-zero gradient can flip an update's sign (a +-lr jump).
    full, h1 = _run(_train_config(eps=1e-2), batch, steps=2)
    accumulated, h2 = _run(_train_config(eps=1e-2, accumulate=2), batch, steps=2)
    assert h1[0]["grad_norm"] == pytest.approx(h2[0]["grad_norm"], rel=1e-5)
    assert h1[1]["loss"] == pytest.approx(h2[1]["loss"], rel=1e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
        full["params"],
        accumulated["params"],
    )


@pytest.mark.slow
def test_detach_switch_changes_only_the_gradient():
    variables, _ = initial_variables(TINY, "", 0)
    variables = jax.tree.map(jnp.asarray, variables)
    # A non-zero head, so the memory-written masks depend on the parameters.
    head = variables["params"]["Decoder"]["pred2"]
    head["kernel"] = 0.05 * jax.random.normal(jax.random.key(1), head["kernel"].shape)
    batch = {k: jnp.asarray(v) for k, v in random_batch(frames=3).items()}

    def loss(params, detach):
        v = {"params": params, "batch_stats": variables["batch_stats"]}
        return jnp.sum(clip_logits(TINY, v, batch, detach)[:, 1] ** 2)

    value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    (l1, g1), (l2, g2) = (
        value_and_grad(variables["params"], True),
        value_and_grad(variables["params"], False),
    )
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    diff = jax.tree.reduce(max, jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), g1, g2))
    assert diff > 0


@pytest.mark.slow
def test_bfloat16_compute_runs():
    bf16 = ModelConfig(**{**TINY.to_dict(), "dtype": "bfloat16"})
    variables, _ = initial_variables(bf16, "", 0)
    mesh = step_lib.make_mesh()
    t = _train_config()
    state = step_lib.replicate(step_lib.init_train_state(variables["params"], t, 0), mesh)
    fn = step_lib.make_train_step(mesh, bf16, t)
    state, metrics = fn(state, step_lib.replicate(variables["batch_stats"], mesh), random_batch())
    assert np.isfinite(float(metrics["loss"]))
    assert jax.tree.leaves(state["params"])[0].dtype == jnp.float32  # master weights stay f32
