"""Memory encoder (RGB + object mask + other-objects mask) and query encoder (RGB), spec A.1-A.2.

Frames enter in [0, 1], already zero-padded to a multiple of 16; ImageNet normalisation happens here,
after padding, as in the official model.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.layers import FrozenBatchNorm, conv2d, max_pool_3x3_s2
from stm_jax.model.resnet import BackboneSpec, ResidualStages

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(frames):
    """(x - mean) / std with the ImageNet constants (the official `mean`/`std` buffers)."""
    mean = jnp.asarray(IMAGENET_MEAN, frames.dtype)
    std = jnp.asarray(IMAGENET_STD, frames.dtype)
    return (frames - mean) / std


class MemoryEncoder(nn.Module):
    """Encoder_M: stem = conv1(rgb) + conv1_m(mask) + conv1_o(others), summed before bn1; returns r4."""

    spec: BackboneSpec
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, frames, masks, others):
        """Encodes each object's memory features.

        Args:
          frames: [B, H, W, 3] in [0, 1].
          masks: [B, O, H, W] soft masks of each object.
          others: [B, O, H, W] clamp(sum of the other objects' masks, 0, 1).
        Returns:
          r4: [B, O, H/16, W/16, C4].
        """
        width = self.spec.stem_width
        stem_rgb = conv2d(width, 7, 2, 3, use_bias=False, dtype=self.dtype, name="conv1")(
            normalize(frames.astype(self.dtype))
        )
        stem_mask = conv2d(width, 7, 2, 3, use_bias=False, dtype=self.dtype, name="conv1_m")(
            masks[..., None].astype(self.dtype)
        )
        stem_others = conv2d(width, 7, 2, 3, use_bias=False, dtype=self.dtype, name="conv1_o")(
            others[..., None].astype(self.dtype)
        )
        # The RGB stem is shared by every object of a frame: computed once, broadcast over O.
        x = stem_rgb[:, None] + stem_mask + stem_others
        x = nn.relu(FrozenBatchNorm(self.dtype, name="bn1")(x))
        x = max_pool_3x3_s2(x)
        r4, _, _ = ResidualStages(self.spec, self.dtype, name="backbone")(x)
        return r4


class QueryEncoder(nn.Module):
    """Encoder_Q: plain ResNet stem; returns (r4, r3, r2)."""

    spec: BackboneSpec
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, frames):
        """Args: frames [B, H, W, 3] in [0, 1]. Returns r4, r3, r2 at strides 16, 8, 4."""
        width = self.spec.stem_width
        x = conv2d(width, 7, 2, 3, use_bias=False, dtype=self.dtype, name="conv1")(
            normalize(frames.astype(self.dtype))
        )
        x = nn.relu(FrozenBatchNorm(self.dtype, name="bn1")(x))
        x = max_pool_3x3_s2(x)
        return ResidualStages(self.spec, self.dtype, name="backbone")(x)


class KeyValue(nn.Module):
    """Two parallel 3x3 convs with bias: key (key_dim) and value (value_dim), spec A.3."""

    key_dim: int
    value_dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        key = conv2d(self.key_dim, 3, dtype=self.dtype, name="Key")(x)
        value = conv2d(self.value_dim, 3, dtype=self.dtype, name="Value")(x)
        return key, value
