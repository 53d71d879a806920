"""PyTorch-equivalent building blocks: explicit-padding conv, frozen BatchNorm, max-pool, bilinear resize.

Everything is NHWC. Paddings are always explicit (never 'SAME': Flax pads even sizes as (0, 1) and would
shift every feature map by a pixel relative to PyTorch).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stm_jax.model.max_pool import max_pool_nhwc

BN_EPSILON = 1e-5


_KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class PointwiseConv(nn.Module):
    """A 1x1 convolution (padding 0) computed as a matmul.

    Same parameters as nn.Conv ('kernel' [1, 1, in, out], optional 'bias'), so weights convert
    identically; XLA on CPU runs the matmul and, above all, its kernel gradient several times faster
    than the equivalent convolution. Stride s keeps every s-th pixel, as PyTorch does.
    """

    features: int
    stride: int = 1
    use_bias: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", _KERNEL_INIT, (1, 1, x.shape[-1], self.features), jnp.float32)
        if self.stride > 1:
            x = x[..., :: self.stride, :: self.stride, :]
        y = jnp.einsum("...c,cd->...d", x.astype(self.dtype), kernel[0, 0].astype(self.dtype))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(
                self.dtype
            )
        return y


def conv2d(
    features: int,
    kernel: int,
    stride: int = 1,
    padding: int | None = None,
    use_bias: bool = True,
    dtype: jnp.dtype = jnp.float32,
    name: str | None = None,
) -> nn.Module:
    """Conv with PyTorch's symmetric explicit padding (kernel // 2 unless given); 1x1 as a matmul."""
    pad = kernel // 2 if padding is None else padding
    if kernel == 1 and pad == 0:
        return PointwiseConv(features, stride, use_bias, dtype, name=name)
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=use_bias,
        dtype=dtype,
        param_dtype=jnp.float32,
        kernel_init=_KERNEL_INIT,
        name=name,
    )


class FrozenBatchNorm(nn.Module):
    """BatchNorm that always uses its running statistics (STM trains with BN frozen, spec A.8).

    `scale` and `bias` are trainable params; `mean` and `var` live in the read-only 'batch_stats'
    collection, which no code path ever mutates.
    """

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
        mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32).value
        var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32).value
        multiplier = scale * jax.lax.rsqrt(var + BN_EPSILON)
        offset = bias - mean * multiplier
        return x * multiplier.astype(x.dtype) + offset.astype(x.dtype)


def max_pool_3x3_s2(x):
    """PyTorch MaxPool2d(3, stride=2, padding=1) of (..., H, W, C): -inf padding, never 'SAME'.

    The gradient is PyTorch's (first maximum of each window) and fast on CPU: see `max_pool`.
    """
    lead = x.shape[:-3]
    x = max_pool_nhwc(x.reshape(-1, *x.shape[-3:]))
    return x.reshape(*lead, *x.shape[-3:])


def _bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out, in) interpolation matrix of PyTorch bilinear, align_corners=False.

    PyTorch: src = (dst + 0.5) * in / out - 0.5, clamped below at 0; i0 = floor(src),
    i1 = min(i0 + 1, in - 1); weights (1 - l, l) with l = src - i0.
    """
    scale = in_size / out_size
    dst = np.arange(out_size, dtype=np.float64)
    src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = src - i0
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    np.add.at(matrix, (dst.astype(np.int64), i0), 1.0 - lam)
    np.add.at(matrix, (dst.astype(np.int64), i1), lam)
    return matrix.astype(np.float32)


def resize_bilinear(x, out_hw: tuple[int, int]):
    """Bilinear resize of (..., H, W, C) `x` to `out_hw`, exactly PyTorch's align_corners=False.

    Implemented as two small matmuls with precomputed interpolation matrices (static shapes), which is
    both exact at the borders and fast.
    """
    h, w = x.shape[-3:-1]
    rows = jnp.asarray(_bilinear_matrix(h, out_hw[0]), dtype=x.dtype)
    cols = jnp.asarray(_bilinear_matrix(w, out_hw[1]), dtype=x.dtype)
    x = jnp.einsum("oh,...hwc->...owc", rows, x, precision=jax.lax.Precision.HIGHEST)
    return jnp.einsum("pw,...owc->...opc", cols, x, precision=jax.lax.Precision.HIGHEST)
