"""STCN (Cheng, Tai, Tang, NeurIPS 2021): the 'stcn' model family.

One key encoder (ResNet-50 to layer3) serves query and memory frames: a memory frame's key is the key
it had as a query, shared by all its objects, so one affinity (negative squared L2, `memory.similarity
='l2'`) serves every object. `key_comp` gives the query's decoder input. The value encoder (ResNet-18 on
RGB + mask + others) is fused with the frame's key features into 512-d values per object; the decoder
gives one logit per object, then a sigmoid. Submodule names follow STCN's checkpoint (`key_encoder`,
`key_proj`, `key_comp`, `value_encoder`, `decoder`); `stm_jax.convert.stcn` reads it.

Variables: {'params': ..., 'batch_stats': ...}; 'batch_stats' holds frozen BN statistics.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from stm_jax.model.config import ModelConfig
from stm_jax.model.encoders import QueryEncoder, normalize
from stm_jax.model.family import FAMILIES, ModelFamily
from stm_jax.model.layers import conv2d
from stm_jax.model.padding import Padding
from stm_jax.model.stcn_decoder import StcnDecoder
from stm_jax.model.stcn_encoders import KeyProjection, ValueEncoder


class STCN(nn.Module):
    """Space-Time Correspondence Network (the family's module; see `stm_jax.model.family`)."""

    config: ModelConfig

    def setup(self):
        config, dtype = self.config, self.config.compute_dtype
        # Frames arrive normalised (see `StcnFamily.model_input`).
        self.key_encoder = QueryEncoder(config.backbone, dtype, normalise=False)
        self.key_proj = KeyProjection(config.key_dim, dtype)
        self.key_comp = conv2d(config.value_dim, 3, dtype=dtype)
        self.value_encoder = ValueEncoder(config.value_backbone, config.value_dim, dtype)
        self.decoder = StcnDecoder(config.decoder_dim, dtype)

    def encode_query(self, x):
        """Args: x [B, H, W, 3] normalised, padded frames.

        Returns: {'key' [B, h, w, Dk], 'value' [B, h, w, Dv] (key_comp: the decoder's query input),
        'f16', 'f8', 'f4'} (h, w = H/16, W/16; f16 feeds the value encoder, f8/f4 the decoder).
        """
        f16, f8, f4 = self.key_encoder(x)
        return {
            "key": self.key_proj(f16),
            "value": self.key_comp(f16),
            "f16": f16,
            "f8": f8,
            "f4": f4,
        }

    def encode_memory(self, x, masks, others, query=None):
        """Args: x [B, H, W, 3]; masks, others [B, O, H, W]; query: this frame's `encode_query`
        output (computed here when None).

        Returns: keys [B, 1, h, w, Dk] (the query key, shared by the objects), values
        [B, O, h, w, Dv].
        """
        if query is None:
            query = self.encode_query(x)
        values = self.value_encoder(x, query["f16"], masks, others)
        return query["key"][:, None], values

    def decode_logits(self, readout, query):
        """Args: readout [B, O, h, w, Dv]; query from `encode_query`. Returns [B, O, H, W] float32
        foreground logits."""
        query_value = jnp.broadcast_to(query["value"][:, None], readout.shape)
        memory_out = jnp.concatenate([readout, query_value.astype(readout.dtype)], axis=-1)
        dtype = self.config.compute_dtype
        return self.decoder(memory_out.astype(dtype), query["f8"], query["f4"])

    def decode(self, readout, query):
        """Each object's foreground probability [B, O, H, W] float32: the sigmoid of its logit."""
        return jax.nn.sigmoid(self.decode_logits(readout, query).astype(jnp.float32))

    def __call__(self, frames, masks, others):
        """Initialisation path touching every submodule (the memory frame's own values stand in for
        a readout)."""
        query = self.encode_query(frames)
        _, values = self.encode_memory(frames, masks, others, query)
        return self.decode(values, query)


@FAMILIES.register("stcn")
class StcnFamily(ModelFamily):
    """STCN as released: ResNet-50 key encoder, 64-d keys, ResNet-18 value encoder, 512-d values,
    256-channel decoder; its published protocol (eval_davis.py) is the memory default."""

    defaults = {
        "backbone": "resnet50",
        "value_backbone": "resnet18",
        "key_dim": 64,
        "value_dim": 512,
        "decoder_dim": 256,
    }
    # eval_davis.py: L2 affinity, top-20 read, a memory frame every 5 frames, the previous frame not
    # read (include_last False).
    memory_defaults = {"similarity": "l2", "top_k": 20, "mem_every": 5, "read_previous": False}
    # eval_youtube.py / inference_core_yv.py: each object has its own memory from the frame it is
    # given on; frames where objects are given are memory frames and restart the mem_every count;
    # the given masks merged into the prediction are soft-aggregated again.
    dataset_memory_defaults = {
        "youtubevos": {
            "mem_every_counts": "since_last",
            "per_object_memory": True,
            "given_merge": "reaggregate",
        }
    }
    # STCN trains with the full softmax over memory; top-k is an inference-time read only.
    training_memory_defaults = {"top_k": 0}
    encoder_modules = (QueryEncoder, ValueEncoder)
    decoder_modules = (StcnDecoder,)
    shares_memory_keys = True
    memory_uses_query = True
    # inference_core.py encodes a memory frame from its padded-size output, padding included.
    memorizes_padding_predictions = True

    def module(self) -> nn.Module:
        return STCN(self.config)

    def model_input(self, frames, padding: Padding):
        """uint8 [..., H, W, 3] -> ImageNet-normalised float32, then zero-padded to a multiple of 16
        (STCN normalises in its dataset and pads afterwards: padding is the mean colour)."""
        return padding.pad(normalize(frames.astype(jnp.float32) / 255.0))

    def torchvision_backbones(self) -> dict[str, str]:
        return {"key_encoder": self.config.backbone, "value_encoder": self.config.value_backbone}
