"""`train.remat`: same loss and gradients as without, less compiled memory, the step runs with it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.model.family import FAMILIES
from stm_jax.training import step as step_lib
from stm_jax.training.defaults import default_train_config
from stm_jax.training.init import initial_variables
from stm_jax.training.remat import remat_types
from tests.model_fixtures import TINY
from tests.train_fixtures import random_batch


def _compiled_loss_grad(remat: str, variables, batch):
    train = default_train_config()
    train.remat = remat

    def loss(params):
        return step_lib._loss_fn(params, variables["batch_stats"], batch, jnp.int32(0), TINY, train)

    fn = jax.jit(jax.value_and_grad(loss, has_aux=True))
    return fn.lower(variables["params"]).compile()


@pytest.mark.slow
def test_remat_keeps_loss_and_gradients_and_lowers_temp_memory():
    variables, _ = initial_variables(TINY, "", 0)
    variables = jax.tree.map(jnp.asarray, variables)
    # A non-zero head, so the memorised soft masks depend on the parameters.
    head = variables["params"]["Decoder"]["pred2"]
    head["kernel"] = 0.05 * jax.random.normal(jax.random.key(1), head["kernel"].shape)
    batch = random_batch(batch=1, size=128)
    batch = {k: jnp.asarray(batch[k]) for k in step_lib.BATCH_KEYS}
    results, temp = {}, {}
    for mode in ("", "encoders", "all"):
        compiled = _compiled_loss_grad(mode, variables, batch)
        temp[mode] = compiled.memory_analysis().temp_size_in_bytes
        results[mode] = compiled(variables["params"])
    (loss, aux), grads = results[""]
    per_frame = aux["per_frame"]
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads)) > 0
    for mode in ("encoders", "all"):
        (loss_r, aux_r), grads_r = results[mode]
        per_frame_r = aux_r["per_frame"]
        np.testing.assert_allclose(loss_r, loss, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(per_frame_r, per_frame, rtol=1e-5, atol=1e-5)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), grads_r, grads
        )
    # The backward passes recompute the encoders (then also the decoders) one call at a time.
    assert temp["encoders"] < 0.8 * temp[""], temp
    assert temp["all"] < temp["encoders"], temp


@pytest.mark.slow
def test_train_step_with_remat_and_accumulation_matches_plain_step():
    variables, _ = initial_variables(TINY, "", 0)
    mesh = step_lib.make_mesh()
    # Batch 4 and these settings: the plain step is test_train_step's accumulated one, which the
    # run's shared compilation cache then compiles once for both files.
    batch = random_batch(batch=4)
    stats = step_lib.replicate(variables["batch_stats"], mesh)
    metrics = {}
    for remat in ("", "encoders"):
        train = default_train_config()
        train.update(lr=1e-3, eps=1e-2, accumulate=2, remat=remat)
        state = step_lib.init_train_state(variables["params"], train, 0)
        state = step_lib.replicate(state, mesh)
        _, m = step_lib.make_train_step(mesh, TINY, train)(state, stats, batch)
        metrics[remat] = {k: float(v) for k, v in m.items()}
    for key in ("loss", "grad_norm", "update_norm"):
        assert metrics["encoders"][key] == pytest.approx(metrics[""][key], rel=1e-5)


def test_unknown_remat_mode_is_refused():
    family = FAMILIES.get("stm")
    assert remat_types("", family) == ()
    assert set(remat_types("all", family)) > set(remat_types("encoders", family)) != set()
    with pytest.raises(ValueError, match="train.remat"):
        remat_types("decoder", family)
