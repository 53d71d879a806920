"""STM (Oh et al., ICCV 2019), spec A: the 'stm' model family.

Two ResNet encoders: the memory encoder (RGB + this object's mask + the other objects' mask) gives
per-object keys and values; the query encoder gives the query frame's key, value and the decoder's
skips. The decoder turns [memory readout, query value] into (bg, fg) logits per object; the
foreground probability is their softmax. Submodule names follow the official checkpoint
(`Encoder_M`, `Encoder_Q`, `KV_M_r4`, `KV_Q_r4`, `Decoder`) so converted weights map one-to-one.

Variables: {'params': ..., 'batch_stats': ...}; 'batch_stats' holds frozen BN statistics and is never
mutated.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from stm_jax.model.config import ModelConfig
from stm_jax.model.decoder import Decoder
from stm_jax.model.encoders import KeyValue, MemoryEncoder, QueryEncoder
from stm_jax.model.family import FAMILIES, ModelFamily


class STM(nn.Module):
    """Space-Time Memory Network (the family's module; see `stm_jax.model.family`)."""

    config: ModelConfig

    def setup(self):
        config, dtype = self.config, self.config.compute_dtype
        self.Encoder_M = MemoryEncoder(config.value_backbone, dtype)
        self.Encoder_Q = QueryEncoder(config.backbone, dtype)
        self.KV_M_r4 = KeyValue(config.key_dim, config.value_dim, dtype)
        self.KV_Q_r4 = KeyValue(config.key_dim, config.value_dim, dtype)
        self.Decoder = Decoder(config.decoder_dim, dtype)

    def encode_memory(self, frames, masks, others, query=None):
        """Args: frames [B, H, W, 3] in [0, 1]; masks, others [B, O, H, W]; query unused (STM
        encodes a memory frame on its own).

        Returns: keys [B, O, h, w, Dk], values [B, O, h, w, Dv] (h, w = H/16, W/16).
        """
        del query
        return self.KV_M_r4(self.Encoder_M(frames, masks, others))

    def encode_query(self, frames):
        """Args: frames [B, H, W, 3] in [0, 1]. Returns {'key' [B,h,w,Dk], 'value' [B,h,w,Dv],
        'r3', 'r2'} (the decoder's skips at strides 8 and 4)."""
        r4, r3, r2 = self.Encoder_Q(frames)
        key, value = self.KV_Q_r4(r4)
        return {"key": key, "value": value, "r3": r3, "r2": r2}

    def decode_logits(self, readout, query):
        """Args: readout [B, O, h, w, Dv]; query from `encode_query`.

        Returns: [B, O, H, W, 2] float32 (bg, fg) logits.
        """
        query_value = jnp.broadcast_to(query["value"][:, None], readout.shape)
        memory_out = jnp.concatenate([readout, query_value.astype(readout.dtype)], axis=-1)
        return self.Decoder(memory_out.astype(self.config.compute_dtype), query["r3"], query["r2"])

    def decode(self, readout, query):
        """Each object's foreground probability [B, O, H, W] float32: softmax over (bg, fg)."""
        logits = self.decode_logits(readout, query)
        return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)[..., 1]

    def __call__(self, frames, masks, others):
        """Initialisation path touching every submodule (the memory read has no parameters: the
        memory frame's own values stand in for a readout)."""
        _, values = self.encode_memory(frames, masks, others)
        return self.decode(values, self.encode_query(frames))


@FAMILIES.register("stm")
class StmFamily(ModelFamily):
    """STM as released: ResNet-50 encoders, 128-d keys, 512-d values, 256-channel decoder; the
    official protocol is the memory defaults (`MemoryConfig`)."""

    defaults = {"backbone": "resnet50", "key_dim": 128, "value_dim": 512, "decoder_dim": 256}
    encoder_modules = (MemoryEncoder, QueryEncoder)
    decoder_modules = (Decoder,)

    def module(self) -> nn.Module:
        return STM(self.config)

    def torchvision_backbones(self) -> dict[str, str]:
        return {"Encoder_M": self.config.value_backbone, "Encoder_Q": self.config.backbone}
