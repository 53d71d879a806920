"""STM decoder (spec A.5): convFM -> ResMM -> Refine(r3) -> Refine(r2) -> pred2 -> x4 bilinear.

No normalisation layers. The skip branches (convFS + ResFS of r3 / r2) depend only on the query frame,
so they are computed once per frame and broadcast over objects, unlike the official code which repeats
them per object; the result is identical.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.layers import conv2d, resize_bilinear


class ResBlock(nn.Module):
    """Pre-activation residual block without BN: x + conv2(relu(conv1(relu(x)))). An input of
    another width than `dim` goes through a 3x3 conv `downsample` instead of the identity (STCN's
    ResBlock(indim, outdim); STM's blocks keep their width)."""

    dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        r = conv2d(self.dim, 3, dtype=self.dtype, name="conv1")(nn.relu(x))
        r = conv2d(self.dim, 3, dtype=self.dtype, name="conv2")(nn.relu(r))
        if x.shape[-1] != self.dim:
            x = conv2d(self.dim, 3, dtype=self.dtype, name="downsample")(x)
        return x + r


class Refine(nn.Module):
    """s = ResFS(convFS(skip)); m = s + up2(prev); out = ResMM(m)."""

    dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, skip, prev):
        """Args: skip [B, h, w, C] (shared by objects); prev [B, O, h/2, w/2, dim]."""
        s = conv2d(self.dim, 3, dtype=self.dtype, name="convFS")(skip)
        s = ResBlock(self.dim, self.dtype, name="ResFS")(s)
        m = s[:, None] + resize_bilinear(prev, skip.shape[-3:-1])
        return ResBlock(self.dim, self.dtype, name="ResMM")(m)


class Decoder(nn.Module):
    """Returns 2-channel (bg, fg) logits per object at the full padded resolution."""

    dim: int = 256
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, memory_out, r3, r2):
        """Args:
          memory_out: [B, O, h, w, 2 * value_dim] (readout concatenated with the query value).
          r3: [B, 2h, 2w, C3]; r2: [B, 4h, 4w, C2] query-encoder skips.
        Returns:
          [B, O, 16h, 16w, 2] logits.
        """
        m4 = conv2d(self.dim, 3, dtype=self.dtype, name="convFM")(memory_out)
        m4 = ResBlock(self.dim, self.dtype, name="ResMM")(m4)
        m3 = Refine(self.dim, self.dtype, name="RF3")(r3, m4)
        m2 = Refine(self.dim, self.dtype, name="RF2")(r2, m3)
        p2 = conv2d(2, 3, dtype=self.dtype, name="pred2")(nn.relu(m2))
        height, width = p2.shape[-3:-1]
        return resize_bilinear(p2.astype(jnp.float32), (height * 4, width * 4))
