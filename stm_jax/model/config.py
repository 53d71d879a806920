"""Static model hyper-parameters (hashable, so they can sit on a Flax module).

Only what shapes the network or its arithmetic lives here; how memory is read and kept
(similarity, top_k, capacity, ...) is `stm_jax.memory.config.MemoryConfig`, free to change for any
checkpoint. Fields left at 0 / '' take the family's defaults (`ModelFamily.defaults`), so
`ModelConfig(family="stcn")` is STCN as released and `ModelConfig()` is STM as released.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
DEFAULT_FAMILY = "stm"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The architecture.

    Attributes:
      family: the architecture family, a name in `stm_jax.model.family.FAMILIES`: 'stm' (default),
        'stcn', or one you register. '' = 'stm' (inference: the checkpoint's family).
      backbone: the (query / key) encoder's backbone, a name in `stm_jax.model.backbone.BACKBONES`
        ('resnet50' official, 'resnet18', 'tiny' for tests / CPU training, ...).
      value_backbone: the memory-frame encoder's backbone (STM: the same as `backbone`; STCN's
        value encoder: 'resnet18').
      key_dim: channels of the keys (STM 128, STCN 64).
      value_dim: channels of the values (512 for both).
      decoder_dim: channels inside the decoder (STM 256).
      max_objects: objects per video; K = max_objects + 1 aggregation slots (official 10 -> K = 11).
      dtype: compute dtype name; affinity and softmax always run in float32.
    """

    family: str = ""
    backbone: str = ""
    value_backbone: str = ""
    key_dim: int = 0
    value_dim: int = 0
    decoder_dim: int = 0
    max_objects: int = 10
    dtype: str = "float32"

    def __post_init__(self):
        from stm_jax.model.backbone import BACKBONES
        from stm_jax.model.family import FAMILIES

        family = self.family or DEFAULT_FAMILY
        defaults = FAMILIES.get(family).defaults  # an unknown family is a one-line error here
        object.__setattr__(self, "family", family)
        for field, default in defaults.items():
            if not getattr(self, field):
                object.__setattr__(self, field, default)
        if not self.value_backbone:
            object.__setattr__(self, "value_backbone", self.backbone)
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype={self.dtype!r}; choose one of {sorted(DTYPES)}.")
        if self.max_objects < 1:
            raise ValueError("model.max_objects must be >= 1.")
        for field in ("backbone", "value_backbone"):
            BACKBONES.get(getattr(self, field), f"model.{field}")
        for field in ("key_dim", "value_dim", "decoder_dim"):
            if getattr(self, field) < 1:
                raise ValueError(f"model.{field} must be >= 1 (0 = the family's default).")

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
        if isinstance(config, ModelConfig):
            return config
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(config).items() if k in names})

    @classmethod
    def unresolved_defaults(cls) -> dict:
        """The fields' own defaults (0 / '' = the family's), for config files: a run that sets
        only `model.family` gets that family's architecture."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
