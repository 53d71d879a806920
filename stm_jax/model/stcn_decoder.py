"""STCN's decoder: compress -> up_16_8(f8) -> up_8_4(f4) -> pred (one channel per object) -> x4 bilinear.

No normalisation layers; PyTorch's default init everywhere (as in STCN's code). The skip convolutions
depend only on the query frame, so they run once per frame and are broadcast over objects (STCN runs
the decoder on a batch of objects with the skips repeated; the result is the same).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.decoder import ResBlock
from stm_jax.model.layers import conv2d, resize_bilinear


class UpsampleBlock(nn.Module):
    """skip_conv(skip) + up2(x) -> out_conv (a ResBlock to `out_dim`)."""

    up_dim: int
    out_dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, skip, x):
        """Args: skip [B, 2h, 2w, C] (shared by objects); x [B, O, h, w, up_dim]."""
        s = conv2d(self.up_dim, 3, dtype=self.dtype, name="skip_conv")(skip)
        x = s[:, None] + resize_bilinear(x, skip.shape[-3:-1])
        return ResBlock(self.out_dim, self.dtype, name="out_conv")(x)


class StcnDecoder(nn.Module):
    """Per-object foreground logits at the padded resolution.

    `dim` is the width of the last two stages (STCN 256); `compress` and `up_16_8`'s skip work at
    2 * dim (STCN 512)."""

    dim: int = 256
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, memory_out, f8, f4):
        """Args:
          memory_out: [B, O, h, w, 2 * value_dim] (readout concatenated with the query's key_comp).
          f8: [B, 2h, 2w, C3]; f4: [B, 4h, 4w, C2] key-encoder skips.
        Returns:
          [B, O, 16h, 16w] float32 logits.
        """
        x = ResBlock(2 * self.dim, self.dtype, name="compress")(memory_out)
        x = UpsampleBlock(2 * self.dim, self.dim, self.dtype, name="up_16_8")(f8, x)
        x = UpsampleBlock(self.dim, self.dim, self.dtype, name="up_8_4")(f4, x)
        logits = conv2d(1, 3, dtype=self.dtype, name="pred")(nn.relu(x))
        height, width = logits.shape[-3:-1]
        return resize_bilinear(logits.astype(jnp.float32), (height * 4, width * 4))[..., 0]
