"""The STM network as one Flax module with one method per stage (spec A).

Methods (call through `model.apply(variables, ..., method=...)`):
* `encode_memory(frames, masks, others) -> (keys, values)` per object;
* `encode_query(frames) -> (key, value, r3, r2)`, shared by all objects of a frame;
* `decode(readout, query_value, r3, r2) -> logits` (bg, fg) per object at full padded resolution.
The memory read between query and decoder lives in `stm_jax.memory` and is not a module: it has no
parameters. The per-frame loop that joins them is `stm_jax.core`.

Variables: {'params': ..., 'batch_stats': ...}; 'batch_stats' holds frozen BN statistics and is never
mutated.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.config import ModelConfig
from stm_jax.model.decoder import Decoder
from stm_jax.model.encoders import KeyValue, MemoryEncoder, QueryEncoder
from stm_jax.model.resnet import get_backbone_spec


class STM(nn.Module):
    """Space-Time Memory Network."""

    config: ModelConfig

    def setup(self):
        spec = get_backbone_spec(self.config.backbone)
        dtype = self.config.compute_dtype
        self.Encoder_M = MemoryEncoder(spec, dtype)
        self.Encoder_Q = QueryEncoder(spec, dtype)
        self.KV_M_r4 = KeyValue(self.config.key_dim, self.config.value_dim, dtype)
        self.KV_Q_r4 = KeyValue(self.config.key_dim, self.config.value_dim, dtype)
        self.Decoder = Decoder(self.config.decoder_dim, dtype)

    def encode_memory(self, frames, masks, others):
        """Args: frames [B, H, W, 3] in [0, 1]; masks, others [B, O, H, W].

        Returns: keys [B, O, h, w, Dk], values [B, O, h, w, Dv] (h, w = H/16, W/16).
        """
        return self.KV_M_r4(self.Encoder_M(frames, masks, others))

    def encode_query(self, frames):
        """Args: frames [B, H, W, 3] in [0, 1]. Returns key [B,h,w,Dk], value [B,h,w,Dv], r3, r2."""
        r4, r3, r2 = self.Encoder_Q(frames)
        key, value = self.KV_Q_r4(r4)
        return key, value, r3, r2

    def decode(self, readout, query_value, r3, r2):
        """Args: readout [B, O, h, w, Dv]; query_value [B, h, w, Dv]; r3, r2 query skips.

        Returns: [B, O, H, W, 2] float32 (bg, fg) logits.
        """
        query_value = jnp.broadcast_to(query_value[:, None], readout.shape).astype(readout.dtype)
        memory_out = jnp.concatenate([readout, query_value], axis=-1)
        return self.Decoder(memory_out.astype(self.config.compute_dtype), r3, r2)

    def __call__(self, frames, masks, others):
        """Initialisation path touching every submodule (the memory read has no parameters: the
        memory frame's own values stand in for a readout)."""
        keys, values = self.encode_memory(frames, masks, others)
        del keys
        _, q_value, r3, r2 = self.encode_query(frames)
        return self.decode(values, q_value, r3, r2)


def init_variables(rng, config: ModelConfig, image_size: tuple[int, int] = (64, 64)):
    """Randomly initialised {'params', 'batch_stats'} for `config` (shapes do not depend on size)."""
    import jax

    frames = jnp.zeros((1, *image_size, 3), jnp.float32)
    masks = jnp.zeros((1, 1, *image_size), jnp.float32)
    return jax.jit(STM(config).init)(rng, frames, masks, masks)
