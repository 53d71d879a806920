"""The model-family registry (`model.family`): an architecture as the per-frame core sees it.

A family is a `ModelFamily` subclass registered with `@FAMILIES.register("name")`. Its Flax module
(`module()`) has three methods the core (`stm_jax.core`) calls, plus `__call__` for initialisation:

* `encode_query(x) -> query`: a dict of the query frame's features, holding at least 'key'
  [B, h, w, Dk] (h, w = padded size / 16); the rest is the family's (decoder skips, ...).
* `encode_memory(x, masks, others, query) -> (keys, values)`: a memory frame, given its per-object
  soft masks and "others" masks [B, O, H, W]: keys [B, 1 or O, h, w, Dk] (1 when the family shares
  one key across objects, `shares_memory_keys`), values [B, O, h, w, Dv]. `query` is the same frame's
  `encode_query` output when the core has it (a frame memorised right after it was segmented) and
  None otherwise (frame 0, a corrected frame); a family that needs it (`memory_uses_query`)
  computes it then.
* `decode(readout, query) -> probabilities`: readout [B, O, h, w, Dv] (the memory read) -> each
  object's foreground probability [B, O, H, W] float32 at the padded resolution; the core merges
  objects by soft aggregation.
* `__call__(frames, masks, others)` touches every layer (for `init`).
Layers carry their own initialisers, so `init_variables` is the model training starts from.

`x` is `model_input(frames, padding)`: uint8 frames become the family's input convention (STM: [0, 1],
zero-padded, normalised inside its encoders). `torchvision_backbones` names the encoders that
ImageNet weights fill. `memory_defaults` is the family's published inference protocol, used for
every memory field the user did not set. A family's released PyTorch checkpoints are read by its
entry in `stm_jax.convert.formats.CHECKPOINT_FORMATS`.

Built-in families live in `stm_jax/model/families/`; register your own in a plugin module.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from stm_jax.model.padding import Padding
from stm_jax.registry import Registry

FAMILIES = Registry("model family", "model.family", builtins=("stm_jax.model.families.*",))


class ModelFamily:
    """Base class of a registered architecture; see the module docstring for the contract.

    Args:
      config: the resolved `ModelConfig` (no field left at its "family default" value).
    """

    # Fields of `ModelConfig` left at 0 / '' take these values (e.g. {'key_dim': 128}).
    defaults: ClassVar[dict] = {}
    # The published inference protocol: `MemoryConfig` fields the user did not set take these.
    memory_defaults: ClassVar[dict] = {}
    # A dataset's own published protocol, on top of memory_defaults (`memory_protocol`), by name:
    # e.g. {'youtubevos': {...}}, used by the YouTube-VOS job.
    dataset_memory_defaults: ClassVar[dict] = {}
    # Where training reads memory otherwise (e.g. {'top_k': 0}: STCN trains with the full softmax).
    training_memory_defaults: ClassVar[dict] = {}
    # The module types `train.remat` may rematerialise: 'encoders', and 'all' adds 'decoders'.
    encoder_modules: ClassVar[tuple] = ()
    decoder_modules: ClassVar[tuple] = ()
    # One key per memory position for every object (STCN) instead of one per object (STM).
    shares_memory_keys: ClassVar[bool] = False
    # `encode_memory` uses the frame's query features (it computes them when given None).
    memory_uses_query: ClassVar[bool] = False
    # A segmented frame is memorised with its predicted probabilities in the padding too (STCN
    # encodes the padded-size prediction); otherwise the masks are zero there (STM).
    memorizes_padding_predictions: ClassVar[bool] = False

    def __init__(self, config):
        self.config = config

    def memory_protocol(self, dataset: str = "") -> dict:
        """The published protocol's `MemoryConfig` fields: memory_defaults, then those of `dataset`
        (a key of dataset_memory_defaults, e.g. 'youtubevos'; '' = none)."""
        return {**self.memory_defaults, **self.dataset_memory_defaults.get(dataset, {})}

    def module(self) -> nn.Module:
        raise NotImplementedError

    def model_input(self, frames, padding: Padding):
        """uint8 [..., H, W, 3] -> float32 in [0, 1], zero-padded to a multiple of 16 (STM pads
        before normalising: padding is black)."""
        return padding.pad(frames.astype(jnp.float32) / 255.0)

    def init_variables(self, rng, image_size: tuple[int, int] = (64, 64)) -> dict:
        """{'params', 'batch_stats'} as the modules' own initialisers draw them."""
        frames = jnp.zeros((1, *image_size, 3), jnp.float32)
        masks = jnp.zeros((1, 1, *image_size), jnp.float32)
        return jax.jit(self.module().init)(rng, frames, masks, masks)

    def torchvision_backbones(self) -> dict[str, str]:
        """Encoder module name -> backbone name, for the encoders ImageNet weights fill."""
        return {}


def get_family(config) -> ModelFamily:
    """The family object of a resolved `ModelConfig`."""
    return FAMILIES.get(config.family)(config)


def init_variables(rng, config, image_size: tuple[int, int] = (64, 64)) -> dict:
    """Freshly initialised {'params', 'batch_stats'} of `config`'s family (shapes do not depend on
    `image_size`); what training from scratch starts from."""
    return get_family(config).init_variables(rng, image_size)
