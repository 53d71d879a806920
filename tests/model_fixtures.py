"""Tiny model configurations and variables shared by tests (fast on 2 CPU cores)."""

import jax

from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import init_variables

TINY = ModelConfig(backbone="tiny", key_dim=8, value_dim=16, decoder_dim=16, max_objects=4)


def tiny_variables(config: ModelConfig = TINY, seed: int = 0):
    return init_variables(jax.random.key(seed), config)
