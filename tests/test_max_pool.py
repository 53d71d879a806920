"""The stem max-pool: PyTorch's values and PyTorch's gradient (first maximum of each window)."""

import jax
import numpy as np
import pytest
import torch

from stm_jax.model.layers import max_pool_3x3_s2
from stm_jax.model.max_pool import _pool, max_pool_nhwc


def _torch_pool_and_grad(x, cotangent):
    with torch.enable_grad():  # other test modules switch autograd off globally
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        yt = torch.nn.functional.max_pool2d(xt, 3, 2, 1)
        yt.backward(torch.from_numpy(cotangent).permute(0, 3, 1, 2))
    return yt.detach().permute(0, 2, 3, 1).numpy(), xt.grad.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("shape", [(2, 12, 16, 3), (1, 7, 9, 2), (1, 1, 1, 1), (1, 2, 3, 4)])
def test_values_and_gradient_equal_pytorch_with_ties(shape):
    rng = np.random.default_rng(sum(shape))
    # ReLU'd and rounded: windows hold many equal values (zeros and repeated maxima), as after the stem.
    x = np.maximum(np.round(rng.standard_normal(shape) * 2) / 2, 0).astype(np.float32)
    out_shape = (shape[0], (shape[1] + 1) // 2, (shape[2] + 1) // 2, shape[3])
    cotangent = rng.standard_normal(out_shape).astype(np.float32)
    want_y, want_grad = _torch_pool_and_grad(x, cotangent)
    y, vjp = jax.vjp(max_pool_nhwc, x)
    np.testing.assert_array_equal(np.asarray(y), want_y)
    np.testing.assert_allclose(np.asarray(vjp(cotangent)[0]), want_grad, atol=1e-6)


def test_gradient_equals_autodiff_of_reduce_window_without_ties():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 10, 14, 5)).astype(np.float32)  # continuous: no ties
    cotangent = rng.standard_normal((2, 5, 7, 5)).astype(np.float32)
    native = jax.vjp(_pool, x)[1](cotangent)[0]
    ours = jax.jit(lambda x, g: jax.vjp(max_pool_nhwc, x)[1](g)[0])(x, cotangent)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(native), atol=1e-6)


def test_layer_keeps_leading_dims():
    x = np.random.default_rng(1).random((2, 3, 8, 8, 4)).astype(np.float32)
    y = max_pool_3x3_s2(x)
    assert y.shape == (2, 3, 4, 4, 4)
    np.testing.assert_array_equal(np.asarray(y[1, 2]), np.asarray(max_pool_nhwc(x[1, 2][None])[0]))
