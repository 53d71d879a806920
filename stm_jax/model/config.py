"""Static model hyper-parameters (hashable, so they can sit on a Flax module).

Only what shapes the network or its arithmetic lives here; how memory is read and kept
(similarity, top_k, capacity, ...) is `stm_jax.memory.config.MemoryConfig`, free to change for any
checkpoint.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """STM architecture switches.

    Attributes:
      backbone: 'resnet50' (official), 'resnet18', or 'tiny' (tests / CPU training).
      key_dim: channels of the key heads (official 128).
      value_dim: channels of the value heads (official 512).
      decoder_dim: channels inside the decoder (official 256).
      max_objects: objects per video; K = max_objects + 1 aggregation slots (official 10 -> K = 11).
      dtype: compute dtype name; affinity and softmax always run in float32.
    """

    backbone: str = "resnet50"
    key_dim: int = 128
    value_dim: int = 512
    decoder_dim: int = 256
    max_objects: int = 10
    dtype: str = "float32"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype={self.dtype!r}; choose one of {sorted(DTYPES)}.")
        if self.max_objects < 1:
            raise ValueError("model.max_objects must be >= 1.")

    @property
    def num_slots(self) -> int:
        """K: background + max_objects aggregation channels."""
        return self.max_objects + 1

    @property
    def compute_dtype(self):
        return DTYPES[self.dtype]

    @classmethod
    def from_config(cls, config) -> ModelConfig:
        """Builds from a ConfigDict / dict, ignoring keys that are not architecture fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(config).items() if k in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
