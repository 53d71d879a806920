"""Rematerialisation of the encoders in the training step (`train.remat`), recompute instead of keep.

Without remat the backward pass keeps every intermediate of every encoder call of the clip alive
from the forward pass until its gradient is taken (ResNet-50 activations of 2 memory and 2 query
encodings per 3-frame clip). With `train.remat='encoders'` each call of the memory and query
encoders keeps only its inputs and outputs; its intermediates are recomputed, one call at a time,
during the backward pass. `'all'` also remats the decoder.

It works without touching the model or the clip forward: a flax method interceptor
(`nn.intercept_methods`) catches each call of a selected submodule while the loss is traced, and
runs the same module on the same variables (passed explicitly, so gradients flow to them) through
`remat_call`. Values and gradients are unchanged; only memory and time differ.

`remat_call` is a `jax.custom_vjp` rather than `jax.checkpoint`: a checkpointed call's recomputation
depends only on the call's inputs, and XLA:CPU drops the optimization barriers meant to hold it back,
so it ran the recomputation inside the forward pass (the ResNet-50 train step's temporaries were
1993 MiB without remat, 1999 MiB with `jax.checkpoint` on the encoders). Here the recomputation's
inputs depend on the cotangents of the call's outputs (`_zero_after`), and the calls are chained by a
scalar token whose cotangent depends on all of a call's gradients, so the backward passes of the
clip's encoder calls run one at a time instead of all becoming ready together.
"""

from __future__ import annotations

import contextlib
import threading

import flax.linen as nn
import jax
import jax.numpy as jnp

REMAT_MODES = ("", "encoders", "all")

_ACTIVE = threading.local()  # set while a rematerialised call runs: its inner calls pass through


def remat_types(mode: str, family) -> tuple[type, ...]:
    """The module types of `family` (a `ModelFamily`) that `mode` rematerialises: its encoders
    ('encoders'), its encoders and decoders ('all'); raises ValueError on an unknown mode."""
    mode = mode or ""
    if mode not in REMAT_MODES:
        raise ValueError(f"train.remat={mode!r}; use one of {list(REMAT_MODES)}.")
    if mode == "encoders":
        return tuple(family.encoder_modules)
    if mode == "all":
        return tuple(family.encoder_modules) + tuple(family.decoder_modules)
    return ()


def _zero_after(tree) -> jax.Array:
    """A float32 0 that XLA cannot compute before every array of `tree` (0 * a sum of elements).

    XLA:CPU drops optimization barriers before scheduling, and does not fold x * 0 for floats, so
    adding this to a value is the dependency that survives: the value is unchanged (x + 0 = x; a
    non-finite cotangent would give NaN, as its gradients would be anyway).
    """
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    total = sum(x.reshape(-1)[0].astype(jnp.float32) for x in leaves if x.size)
    return jnp.float32(0) * total


def remat_call(fn):
    """`fn(variables, *args)` with the same values and gradients that keeps only its inputs.

    Returns `call(token, variables, *args) -> (token, fn(variables, *args))`. The backward pass
    recomputes `fn`'s intermediates (jax.vjp) from `args` made to depend on the cotangents of its
    outputs and of its output token, so the recomputation cannot run before they arrive; the input
    token's cotangent depends on all of its gradients. Chaining calls by their tokens runs their
    backward passes one after the other. Reverse mode only (no jvp).
    """

    @jax.custom_vjp
    def call(token, variables, *args):
        return token, fn(variables, *args)

    def forward(token, variables, *args):
        return (token, fn(variables, *args)), (variables, args)

    def backward(saved, cotangents):
        saved, cotangents = jax.lax.optimization_barrier((saved, cotangents))
        variables, args = saved
        ready = _zero_after(cotangents)
        args = jax.tree.map(
            lambda x: x + ready.astype(x.dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else x,
            args,
        )
        _, vjp = jax.vjp(fn, variables, *args)
        grads = vjp(cotangents[1])
        return (_zero_after(grads), *grads)

    call.defvjp(forward, backward)
    return call


def _interceptor(types: tuple[type, ...]):
    def intercept(next_fun, args, kwargs, context):
        module = context.module
        if (
            context.method_name != "__call__"
            or not isinstance(module, types)
            or kwargs
            or getattr(_ACTIVE, "on", False)
        ):
            return next_fun(*args, **kwargs)
        unbound, variables = module.unbind()

        def call(variables, *args):
            _ACTIVE.on = True
            try:
                return unbound.apply(variables, *args)
            finally:
                _ACTIVE.on = False

        _ACTIVE.token, out = remat_call(call)(_ACTIVE.token, variables, *args)
        return out

    return intercept


@contextlib.contextmanager
def remat_scope(mode: str, family):
    """Within this context, calls of `family`'s modules selected by `mode` are rematerialised.

    Enter it around the traced loss (inside `jax.value_and_grad`); a no-op for mode ''. The calls
    made inside one scope are chained (their backward passes run one at a time).
    """
    types = remat_types(mode, family)
    if not types:
        yield
        return
    _ACTIVE.token = jnp.zeros((), jnp.float32)
    try:
        with nn.intercept_methods(_interceptor(types)):
            yield
    finally:
        del _ACTIVE.token
