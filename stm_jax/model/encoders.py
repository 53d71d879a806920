"""Memory encoder (RGB + object mask + other-objects mask) and query encoder (RGB), spec A.1-A.2.

Frames enter in [0, 1], already zero-padded to a multiple of 16; ImageNet normalisation happens here,
after padding, as in the official model.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.backbone import BACKBONES
from stm_jax.model.layers import conv2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(frames):
    """(x - mean) / std with the ImageNet constants (the official `mean`/`std` buffers)."""
    mean = jnp.asarray(IMAGENET_MEAN, frames.dtype)
    std = jnp.asarray(IMAGENET_STD, frames.dtype)
    return (frames - mean) / std


class MemoryEncoder(nn.Module):
    """Encoder_M: stem = conv1(rgb) + conv1_m(mask) + conv1_o(others), summed before bn1; returns r4.

    `conv1_m` / `conv1_o` are layers the official code adds to an ImageNet ResNet: PyTorch's default
    init; the backbone's own layers start as torchvision's (`stm_jax.model.backbones`)."""

    backbone: str
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
        backbone = BACKBONES.get(self.backbone)
        # The RGB stem is shared by every object of a frame: computed once, broadcast over O.
        side = {"conv1_m": masks[..., None], "conv1_o": others[..., None]}
        x = backbone.stem(normalize(frames.astype(self.dtype)), side, self.dtype)
        r4, _, _ = backbone.stages(x, self.dtype)
        return r4


class QueryEncoder(nn.Module):
    """Encoder_Q: plain ResNet stem; returns (r4, r3, r2). `normalise=False` for frames that arrive
    normalised (STCN's key encoder: STCN normalises before padding)."""

    backbone: str
    dtype: jnp.dtype = jnp.float32
    normalise: bool = True

    @nn.compact
    def __call__(self, frames):
        """Args: frames [B, H, W, 3] in [0, 1] (or normalised). Returns r4, r3, r2 at strides 16,
        8, 4."""
        backbone = BACKBONES.get(self.backbone)
        x = frames.astype(self.dtype)
        x = backbone.stem(normalize(x) if self.normalise else x, None, self.dtype)
        return backbone.stages(x, self.dtype)


class KeyValue(nn.Module):
    """Two parallel 3x3 convs with bias: key (key_dim) and value (value_dim), spec A.3 (PyTorch's
    default init, as in the reference code)."""

    key_dim: int
    value_dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        key = conv2d(self.key_dim, 3, dtype=self.dtype, name="Key")(x)
        value = conv2d(self.value_dim, 3, dtype=self.dtype, name="Value")(x)
        return key, value
