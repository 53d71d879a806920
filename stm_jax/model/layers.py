"""PyTorch-equivalent building blocks: explicit-padding conv, frozen BatchNorm, max-pool, bilinear resize.

Everything is NHWC. Paddings are always explicit (never 'SAME': Flax pads even sizes as (0, 1) and would
shift every feature map by a pixel relative to PyTorch).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stm_jax.model.conv import conv2d_nhwc
from stm_jax.model.max_pool import max_pool_nhwc

BN_EPSILON = 1e-5


# How a convolution's parameters start (the modules choose, so `init_variables` is the model that
# training starts from):
# * 'pytorch': PyTorch's default `nn.Conv2d` init, kaiming_uniform_(a=sqrt(5)): kernel and bias
#   ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = kh * kw * in_channels. The reference code keeps it
#   for every layer it adds to a backbone (STM's extra stems, key/value heads, decoder).
# * 'resnet': torchvision ResNet's init: kernel He-normal fan-out (kaiming_normal_, mode='fan_out'),
#   bias 0. He init on the heads and decoder (no normalisation there) gave ImageNet-scale features a
#   fg-bg logit spread of ~50, past soft aggregation's clamp where cross-entropy passes no gradient.
# * 'orthogonal': an orthogonal kernel (torch.nn.init.orthogonal_ of the flattened kernel), bias 0.
# * a `ChannelSplitInit`: the input channels up to `split` start as one of these, the rest as another.
CONV_INITS = ("pytorch", "resnet", "orthogonal")


@dataclasses.dataclass(frozen=True)
class ChannelSplitInit:
    """A kernel whose input channels [:split] start as `first` and [split:] as `rest`, each drawn over
    its own slice; the bias starts as `first`'s. STCN's value encoder stem takes RGB + 2 masks: its RGB
    filters start as a ResNet's (ImageNet weights replace them) and its mask filters orthogonal, as
    its code appends them to the ImageNet filters."""

    split: int
    first: str
    rest: str


def _kernel_init(init):
    if isinstance(init, ChannelSplitInit):
        first, rest = _kernel_init(init.first), _kernel_init(init.rest)

        def draw(key, shape, dtype=jnp.float32):
            first_key, rest_key = jax.random.split(key)
            head = first(first_key, (*shape[:-2], init.split, shape[-1]), dtype)
            tail = rest(rest_key, (*shape[:-2], shape[-2] - init.split, shape[-1]), dtype)
            return jnp.concatenate([head, tail], axis=-2)

        return draw
    if init == "pytorch":
        return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
    if init == "resnet":
        return nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    if init == "orthogonal":
        return nn.initializers.orthogonal()
    raise ValueError(f"conv init {init!r}; choose one of {CONV_INITS}.")


def _bias_init(init, fan_in: int):
    if isinstance(init, ChannelSplitInit):
        init = init.first
    if init != "pytorch":
        return nn.initializers.zeros
    bound = 1.0 / np.sqrt(max(fan_in, 1))
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


class PointwiseConv(nn.Module):
    """A 1x1 convolution (padding 0) computed as a matmul.

    Same parameters as a convolution ('kernel' [1, 1, in, out], optional 'bias'), so weights convert
    identically; XLA on CPU runs the matmul and, above all, its kernel gradient several times faster
    than the equivalent convolution. Stride s keeps every s-th pixel, as PyTorch does.
    """

    features: int
    stride: int = 1
    use_bias: bool = True
    dtype: jnp.dtype = jnp.float32
    init: str = "pytorch"

    @nn.compact
    def __call__(self, x):
        shape = (1, 1, x.shape[-1], self.features)
        kernel = self.param("kernel", _kernel_init(self.init), shape, jnp.float32)
        if self.stride > 1:
            x = x[..., :: self.stride, :: self.stride, :]
        y = jnp.einsum("...c,cd->...d", x.astype(self.dtype), kernel[0, 0].astype(self.dtype))
        if self.use_bias:
            bias_init = _bias_init(self.init, x.shape[-1])
            bias = self.param("bias", bias_init, (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


class Conv2d(nn.Module):
    """A square 2-D convolution with explicit symmetric padding, NHWC, any number of leading batch
    axes; parameters 'kernel' [k, k, in, out] (HWIO) and optional 'bias' [out], initialised per
    `init` (see CONV_INITS). Computes exactly what `flax.linen.Conv` computes with the same
    arguments (one convolution, `conv.conv2d_nhwc`, then the bias)."""

    features: int
    kernel: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True
    dtype: jnp.dtype = jnp.float32
    init: str = "pytorch"

    @nn.compact
    def __call__(self, x):
        in_features = x.shape[-1]
        shape = (self.kernel, self.kernel, in_features, self.features)
        kernel = self.param("kernel", _kernel_init(self.init), shape, jnp.float32)
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:]).astype(self.dtype)
        # Same values as lax.conv_general_dilated; its kernel gradient stays fast in loops (conv.py).
        y = conv2d_nhwc(x, kernel.astype(self.dtype), self.stride, self.padding)
        if self.use_bias:
            fan_in = self.kernel * self.kernel * in_features
            bias = self.param("bias", _bias_init(self.init, fan_in), (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y.reshape(*lead, *y.shape[1:])


def conv2d(
    features: int,
    kernel: int,
    stride: int = 1,
    padding: int | None = None,
    use_bias: bool = True,
    dtype: jnp.dtype = jnp.float32,
    name: str | None = None,
    init: str = "pytorch",
) -> nn.Module:
    """Conv with PyTorch's symmetric explicit padding (kernel // 2 unless given); 1x1 as a matmul.
    `init`: how its parameters start ('pytorch', 'resnet', 'orthogonal' or a `ChannelSplitInit`;
    see CONV_INITS)."""
    pad = kernel // 2 if padding is None else padding
    if kernel == 1 and pad == 0:
        return PointwiseConv(features, stride, use_bias, dtype, init, name=name)
    return Conv2d(features, kernel, stride, pad, use_bias, dtype, init, name=name)


class Linear(nn.Module):
    """A fully connected layer over the last axis: 'kernel' [in, out] (PyTorch's nn.Linear weight
    transposed) and 'bias' [out], initialised per `init` ('pytorch': nn.Linear's default,
    U(-1/sqrt(in), 1/sqrt(in)) for both)."""

    features: int
    dtype: jnp.dtype = jnp.float32
    init: str = "pytorch"

    @nn.compact
    def __call__(self, x):
        in_features = x.shape[-1]
        kernel_shape = (in_features, self.features)
        kernel = self.param("kernel", _kernel_init(self.init), kernel_shape, jnp.float32)
        bias = self.param("bias", _bias_init(self.init, in_features), (self.features,), jnp.float32)
        y = jnp.einsum("...c,cd->...d", x.astype(self.dtype), kernel.astype(self.dtype))
        return y + bias.astype(self.dtype)


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
