"""Tiny model configurations and variables shared by tests (fast on 2 CPU cores)."""

import jax

from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables

TINY = ModelConfig(backbone="tiny", key_dim=8, value_dim=16, decoder_dim=16, max_objects=4)


def tiny_variables(config: ModelConfig = TINY, seed: int = 0):
    return init_variables(jax.random.key(seed), config)


TINY_OVERRIDES = {
    "backbone": "tiny",
    "key_dim": TINY.key_dim,
    "value_dim": TINY.value_dim,
    "decoder_dim": TINY.decoder_dim,
}


def write_tiny_pth(path, seed=0):
    """An official-layout ('module.'-prefixed) .pth of a tiny reference STM."""
    import torch

    from tests.torch_stm_reference import STM as TorchSTM

    torch.manual_seed(seed)
    model = TorchSTM("tiny", TINY.key_dim, TINY.value_dim, TINY.decoder_dim)
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, path)
    return path


def tiny_run_config(module, checkpoint, **data):
    """A config file's get_config() with the tiny model, capacity 4 and data overrides."""
    config = module.get_config()
    config.checkpoint = str(checkpoint)
    config.model.update(TINY_OVERRIDES)
    config.memory.capacity = 4
    config.data.update(data)
    return config
