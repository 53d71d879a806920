"""PyTorch's MaxPool2d(3, stride=2, padding=1) with a gradient that XLA on CPU runs fast.

JAX differentiates `reduce_window` max through `select_and_scatter_add`, which XLA:CPU expands into
iotas, a variadic arg-max reduce-window and a scatter: on 2 CPU cores this backward costs ~56 ms for
a [2, 192, 192, 64] map against PyTorch's ~9 ms. Here the backward is nine strided compares and nine
interior-padded adds that XLA fuses into a couple of loops.

Ties go to the first maximum in row-major window order, exactly as PyTorch's CPU kernel picks its
index (`val > maxval` while scanning rows then columns), so gradients match PyTorch's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_WINDOW = 3
_STRIDE = 2
_PAD = 1


def _pool(x):
    """[N, H, W, C] -> [N, Ho, Wo, C], padding with -inf (never 'SAME')."""
    return lax.reduce_window(
        x,
        -jnp.inf,
        lax.max,
        (1, _WINDOW, _WINDOW, 1),
        (1, _STRIDE, _STRIDE, 1),
        ((0, 0), (_PAD, _PAD), (_PAD, _PAD), (0, 0)),
    )


@jax.custom_vjp
def max_pool_nhwc(x):
    """MaxPool2d(3, 2, 1) of a [N, H, W, C] array."""
    return _pool(x)


def _forward(x):
    y = _pool(x)
    return y, (x, y)


def _backward(residuals, grad):
    x, y = residuals
    n, h, w, c = x.shape
    out_h, out_w = y.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (_PAD, _PAD), (_PAD, _PAD), (0, 0)), constant_values=-jnp.inf)
    padded_h, padded_w = padded.shape[1:3]
    taken = jnp.zeros(y.shape, bool)
    grad_padded = jnp.zeros(padded.shape, grad.dtype)
    zero = jnp.zeros((), grad.dtype)
    for dy in range(_WINDOW):
        for dx in range(_WINDOW):
            tap = padded[
                :,
                dy : dy + _STRIDE * (out_h - 1) + 1 : _STRIDE,
                dx : dx + _STRIDE * (out_w - 1) + 1 : _STRIDE,
            ]
            hit = (tap == y) & ~taken
            taken = taken | hit
            # Place this tap's share back on the input grid: every _STRIDE-th pixel from (dy, dx).
            grad_padded = grad_padded + lax.pad(
                jnp.where(hit, grad, zero),
                zero,
                (
                    (0, 0, 0),
                    (dy, padded_h - dy - _STRIDE * (out_h - 1) - 1, _STRIDE - 1),
                    (dx, padded_w - dx - _STRIDE * (out_w - 1) - 1, _STRIDE - 1),
                    (0, 0, 0),
                ),
            )
    return (grad_padded[:, _PAD : _PAD + h, _PAD : _PAD + w],)


max_pool_nhwc.defvjp(_forward, _backward)
