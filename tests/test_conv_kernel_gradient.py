"""The model's convolution: JAX's values and gradients, and a kernel gradient that stays fast
(canonical) inside a loop body."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.model.conv import conv2d_nhwc


def _reference(x, kernel, stride, padding):
    pad = (padding, padding)
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), (pad, pad), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@pytest.mark.parametrize(
    "size, kernel_size, stride, padding",
    [(9, 3, 1, 1), (10, 3, 2, 1), (9, 3, 2, 1), (13, 7, 2, 3), (8, 3, 1, 0), (11, 5, 2, 2)],
)
def test_values_and_both_gradients_equal_jax(size, kernel_size, stride, padding):
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (2, size, size + 1, 3))
    kernel = jax.random.normal(keys[1], (kernel_size, kernel_size, 3, 4))
    out = _reference(x, kernel, stride, padding)
    weights = jax.random.normal(keys[2], out.shape)

    def loss(conv):
        return lambda x, k: jnp.sum(jnp.tanh(conv(x, k, stride, padding)) * weights)

    np.testing.assert_allclose(conv2d_nhwc(x, kernel, stride, padding), out, rtol=1e-6, atol=1e-6)
    ours = jax.grad(loss(conv2d_nhwc), argnums=(0, 1))(x, kernel)
    theirs = jax.grad(loss(_reference), argnums=(0, 1))(x, kernel)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_kernel_gradient_in_a_scan_is_canonical():
    # XLA:CPU leaves JAX's own kernel gradient non-canonical in a loop body (a naive loop nest).
    xs = jnp.ones((2, 1, 16, 16, 8))
    kernel = jnp.ones((3, 3, 8, 8))

    def summed(conv):
        def grad_sum(kernel, xs):
            grad = jax.grad(lambda k, x: jnp.sum(conv(x, k, 1, 1)))
            return jax.lax.scan(lambda c, x: (c + grad(kernel, x), None), 0 * kernel, xs)[0]

        return jax.jit(grad_sum).lower(kernel, xs).compile().as_text()

    def labels(hlo):
        return {
            line.split("dim_labels=")[1].split(",")[0]
            for line in hlo.splitlines()
            if " convolution(" in line
        }

    assert labels(summed(conv2d_nhwc)) == {"b01f_01io->b01f"}
    assert labels(summed(_reference)) != {"b01f_01io->b01f"}, "XLA changed: re-measure conv.py"
