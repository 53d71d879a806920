"""The jitted, data-parallel training step (big_vision style: jit + NamedSharding, no pmap).

Train state: {'step', 'params', 'opt_state', 'rng'}, replicated on every device. Frozen BN statistics
('batch_stats') are a separate replicated argument: never trained, never mutated. Batches are sharded
over the 'data' mesh axis; XLA inserts the gradient all-reduce. With `train.accumulate = A` the global
batch is split into A equal micro-batches scanned inside the step (memory / A) and their gradients
averaged, which equals the full-batch gradient because the loss is a mean over clips. With
`train.remat='encoders'` the encoders' activations are recomputed in the backward pass instead of
kept (`stm_jax.training.remat`): less memory per clip, same values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import get_family
from stm_jax.training.cpu_compile import train_step_compiler_options
from stm_jax.training.forward import clip_logits
from stm_jax.training.health import module_grad_norms, saturated_fraction
from stm_jax.training.loss import LOSSES, clip_loss
from stm_jax.training.optimizer import make_optimizer
from stm_jax.training.remat import remat_scope

BATCH_KEYS = ("frames", "masks", "labels", "object_valid", "void")
# Incremented at trace time: tests prove the step compiles once.
TRACE_COUNT = {"step": 0}


def make_mesh(devices=None) -> Mesh:
    """A 1-D ('data',) mesh over all devices of all processes (Auto axes: plain data parallelism)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def replicate(tree, mesh: Mesh):
    """Places a host pytree (identical on every process) fully replicated on `mesh`.

    `make_array_from_callback` works in multi-process runs, where `device_put` of host data onto
    non-addressable devices would not.
    """
    sharding = NamedSharding(mesh, PartitionSpec())

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def init_train_state(params, train_config, seed: int) -> dict:
    """Host-side initial state for `params` (optimizer state built from the config)."""
    optimizer, _ = make_optimizer(train_config)
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    return {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "opt_state": optimizer.init(params),
        "rng": jax.random.PRNGKey(seed),
    }


def _loss_fn(params, batch_stats, batch, step, model_config, train_config, memory_config=None):
    variables = {"params": params, "batch_stats": batch_stats}
    loss_function = LOSSES.get(train_config.loss)  # a registered name (checked at start-up)
    with remat_scope(train_config.get("remat", ""), get_family(model_config)):
        logits = clip_logits(
            model_config, variables, batch, bool(train_config.detach_memory), memory_config
        )
    labels = batch["labels"][:, 1:]
    void = batch.get("void")
    valid = jnp.ones(labels.shape, bool) if void is None else ~void[:, 1:]
    per_frame = loss_function(logits, labels, valid, step, train_config)
    loss = clip_loss(per_frame)
    saturated, fg_pixels = saturated_fraction(logits, batch["object_valid"], valid)
    return loss, {"per_frame": per_frame, "saturated": saturated, "fg_pixels": fg_pixels}


def _split_micro(x, accumulate: int):
    """[B, ...] -> [A, B/A, ...] with micro-batch i = clips i, A + i, ...: each data shard keeps its own
    clips, so no data moves between devices."""
    b = x.shape[0]
    return jnp.swapaxes(x.reshape(b // accumulate, accumulate, *x.shape[1:]), 0, 1)


def train_step(
    state,
    batch_stats,
    batch,
    *,
    model_config: ModelConfig,
    train_config,
    memory_config: MemoryConfig | None = None,
):
    """One optimizer update on one global batch.

    Args:
      state: the train state.
      batch_stats: frozen BN statistics.
      batch: dict with BATCH_KEYS (global arrays, leading batch axis).
      model_config, train_config: static configuration.
      memory_config: the memory read (similarity, top_k) shared with inference; default
        MemoryConfig().
    Returns:
      (new state, metrics dict of scalars: loss, grad_norm, param_norm, update_norm, lr, frame losses,
      saturated_fraction, grad_norm/<module>).
    """
    TRACE_COUNT["step"] += 1
    optimizer, schedule = make_optimizer(train_config)
    batch = {k: batch[k] for k in BATCH_KEYS if k in batch}
    grad_fn = jax.value_and_grad(_loss_fn, has_aux=True)
    args = (batch_stats,)
    statics = dict(
        model_config=model_config, train_config=train_config, memory_config=memory_config
    )
    accumulate = int(train_config.accumulate)
    if accumulate <= 1:
        (loss, aux), grads = grad_fn(state["params"], *args, batch, state["step"], **statics)
        per_frame = aux["per_frame"]
        saturated, fg_pixels = aux["saturated"], aux["fg_pixels"]
    else:
        micro = jax.tree.map(lambda x: _split_micro(x, accumulate), batch)

        def body(carry, micro_batch):
            grad_sum, loss_sum = carry
            (loss, aux), grads = grad_fn(
                state["params"], *args, micro_batch, state["step"], **statics
            )
            return (jax.tree.map(jnp.add, grad_sum, grads), loss_sum + loss), aux

        zeros = jax.tree.map(jnp.zeros_like, state["params"])
        (grads, loss), aux = jax.lax.scan(body, (zeros, jnp.float32(0)), micro)
        grads = jax.tree.map(lambda g: g / accumulate, grads)
        loss = loss / accumulate
        per_frame = aux["per_frame"].reshape(-1, aux["per_frame"].shape[-1])
        saturated, fg_pixels = jnp.sum(aux["saturated"]), jnp.sum(aux["fg_pixels"])
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {
        "loss": loss,
        "grad_norm": optax.tree.norm(grads),
        "param_norm": optax.tree.norm(params),
        "update_norm": optax.tree.norm(updates),
        "lr": schedule(state["step"]),
        # Health (stm_jax.training.health): clamped foreground logits, gradient per module.
        "saturated_fraction": saturated / jnp.maximum(fg_pixels, 1.0),
        **module_grad_norms(grads),
    }
    for f in range(per_frame.shape[-1]):
        metrics[f"loss_frame{f + 2}"] = jnp.mean(per_frame[:, f])
    new_state = {
        "step": state["step"] + 1,
        "params": params,
        "opt_state": opt_state,
        "rng": jax.random.fold_in(state["rng"], state["step"]),
    }
    return new_state, metrics


def make_train_step(
    mesh: Mesh,
    model_config: ModelConfig,
    train_config,
    memory_config: MemoryConfig | None = None,
    platform: str | None = None,
):
    """The compiled step: state/batch_stats replicated, batch sharded over 'data', state donated.

    On CPU it compiles with `cpu_compile.TRAIN_STEP_CPU_OPTIONS` (faster convolution gradients).
    `platform` names the platform it is compiled for when that is not the mesh's, e.g. a TPU or
    GPU step lowered on a CPU host (`jax.export`, the lowering tests); None = the mesh's.

    Returns:
      `step(state, batch_stats, batch) -> (state, metrics)`.
    """
    replicated = NamedSharding(mesh, PartitionSpec())
    data = NamedSharding(mesh, PartitionSpec("data"))

    def step(state, batch_stats, batch):
        return train_step(
            state,
            batch_stats,
            batch,
            model_config=model_config,
            train_config=train_config,
            memory_config=memory_config,
        )

    return jax.jit(
        step,
        in_shardings=(replicated, replicated, data),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
        compiler_options=train_step_compiler_options(mesh.devices.flat, platform),
    )
