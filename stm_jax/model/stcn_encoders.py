"""STCN's encoders (Cheng et al., NeurIPS 2021): the key projection of the key encoder (STM's query
encoder without normalisation, `stm_jax.model.encoders.QueryEncoder`), and the value encoder with its
fusion block (ResBlock, CBAM, ResBlock).

Frames enter already ImageNet-normalised and zero-padded (STCN normalises in its dataset, then pads),
so the encoders do not normalise. Submodule names follow STCN's checkpoint (`conv1`, `bn1`,
`fuser.block1`, `fuser.attention.ChannelGate.mlp_1`, ...) so its weights map one-to-one
(`stm_jax.convert.stcn`). Initialisers are the ones STCN's code gives: the backbones start as
torchvision's ResNets (ImageNet weights fill them for training), the value stem's mask filters
orthogonal, `key_proj` orthogonal with a zero bias, every other layer PyTorch's default.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.backbone import BACKBONES
from stm_jax.model.decoder import ResBlock
from stm_jax.model.layers import ChannelSplitInit, Linear, conv2d

CBAM_REDUCTION = 16


class KeyProjection(nn.Module):
    """3x3 conv from the key encoder's f16 to the keys (STCN names it `key_proj.key_proj`)."""

    key_dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, f16):
        return conv2d(self.key_dim, 3, dtype=self.dtype, init="orthogonal", name="key_proj")(f16)


class ChannelGate(nn.Module):
    """CBAM's channel attention: x * sigmoid(mlp(mean over h, w) + mlp(max over h, w)), one MLP
    (Linear, ReLU, Linear; STCN's Sequential indices 1 and 3) for both pools."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        hidden = Linear(max(channels // CBAM_REDUCTION, 1), self.dtype, name="mlp_1")
        out = Linear(channels, self.dtype, name="mlp_3")

        def mlp(pooled):
            return out(nn.relu(hidden(pooled)))

        scores = mlp(jnp.mean(x, axis=(-3, -2))) + mlp(jnp.max(x, axis=(-3, -2)))
        return x * nn.sigmoid(scores)[..., None, None, :]


class SpatialConv(nn.Module):
    """CBAM's spatial 7x7 conv (2 -> 1 channels, with bias), named `spatial.conv` as in STCN."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return conv2d(1, 7, dtype=self.dtype, name="conv")(x)


class SpatialGate(nn.Module):
    """CBAM's spatial attention: x * sigmoid(conv7x7([max over channels, mean over channels]))."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        pooled = jnp.stack([jnp.max(x, axis=-1), jnp.mean(x, axis=-1)], axis=-1)
        return x * nn.sigmoid(SpatialConv(self.dtype, name="spatial")(pooled))


class CBAM(nn.Module):
    """Channel gate, then spatial gate (Woo et al., 2018), as STCN's fuser uses it."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = ChannelGate(self.dtype, name="ChannelGate")(x)
        return SpatialGate(self.dtype, name="SpatialGate")(x)


class FeatureFusion(nn.Module):
    """STCN's `fuser`: block1(cat(value f16, key f16)) -> x; block2(x + CBAM(x))."""

    value_dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, value_f16, key_f16):
        """Args: value_f16 [B, O, h, w, Cv]; key_f16 [B, h, w, Ck] (shared by the objects).
        Returns [B, O, h, w, value_dim]."""
        key_f16 = jnp.broadcast_to(key_f16[:, None], (*value_f16.shape[:-1], key_f16.shape[-1]))
        x = jnp.concatenate([value_f16, key_f16.astype(value_f16.dtype)], axis=-1)
        x = ResBlock(self.value_dim, self.dtype, name="block1")(x)
        x = x + CBAM(self.dtype, name="attention")(x)
        return ResBlock(self.value_dim, self.dtype, name="block2")(x)


class ValueEncoder(nn.Module):
    """A ResNet (ResNet-18 to layer3 as released; every conv with a bias) on RGB + this object's mask +
    the other objects' mask, fused with the frame's key-encoder f16 into per-object values."""

    backbone: str
    value_dim: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, key_f16, masks, others):
        """Args:
          x: [B, H, W, 3] the frame as the key encoder saw it (normalised, padded).
          key_f16: [B, H/16, W/16, Ck] the key encoder's f16 of the same frame.
          masks, others: [B, O, H, W] each object's soft mask and the sum of the other objects'.
        Returns:
          values [B, O, H/16, W/16, value_dim].
        """
        backbone = BACKBONES.get(self.backbone)
        frames = jnp.broadcast_to(x[:, None], (*masks.shape, x.shape[-1]))
        inputs = jnp.concatenate([frames, masks[..., None], others[..., None]], axis=-1)
        stem_init = ChannelSplitInit(x.shape[-1], "resnet", "orthogonal")
        features = backbone.stem(
            inputs.astype(self.dtype), None, self.dtype, use_bias=True, conv1_init=stem_init
        )
        value_f16, _, _ = backbone.stages(features, self.dtype, use_bias=True)
        return FeatureFusion(self.value_dim, self.dtype, name="fuser")(value_f16, key_f16)
