"""The official STM checkpoint (`STM_weights.pth`, spec A.10) -> stm_jax variables, strictly.

Every parameter and BN statistic of our model is looked up under its PyTorch name; conv weights
OIHW -> HWIO; BN weight/bias -> params scale/bias, running_mean/var -> batch_stats mean/var. Every key
of the checkpoint must be consumed (except `num_batches_tracked`), every shape must match, and the
encoders' `mean`/`std` buffers must hold the ImageNet constants; otherwise the error lists what is
missing, unexpected or mis-shaped. The architecture is the run's `config.model` (the defaults are the
official release's; a ResNet-18 STM needs `model.backbone=resnet18`).
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from stm_jax.convert.common import strict_fill, torch_name
from stm_jax.convert.formats import CHECKPOINT_FORMATS, CheckpointFormat, strip_prefix
from stm_jax.convert.torch_files import CheckpointFileError
from stm_jax.model.config import ModelConfig
from stm_jax.model.encoders import IMAGENET_MEAN, IMAGENET_STD
from stm_jax.model.family import init_variables


class OfficialStm(CheckpointFormat):
    """seoungwugoh/STM's `STM_weights.pth` (and Training-Code-of-STM's, same names)."""

    family = "stm"

    def recognises(self, state_dict: Mapping) -> bool:
        return any(key.startswith(("Encoder_M.", "KV_M_r4.")) for key in state_dict)

    def convert(self, state_dict: Mapping, config: ModelConfig, source: str) -> dict:
        return convert_state_dict(state_dict, config, source)


CHECKPOINT_FORMATS.register("stm")(OfficialStm())  # entries are instances (see formats.py)


def convert_state_dict(
    state_dict: Mapping[str, np.ndarray], config: ModelConfig, source: str = "checkpoint"
) -> dict:
    """Converts an official-layout STM state dict to {'params', 'batch_stats'} for `config`.

    Args:
      state_dict: {name: array}, with or without the 'module.' DataParallel prefix.
      config: model config; its backbone / key / value dims must match the checkpoint.
      source: file name used in error messages.
    Returns:
      Variables as nested dicts of numpy float32 arrays.
    """
    state_dict = strip_prefix(state_dict)
    template = jax.eval_shape(lambda: init_variables(jax.random.key(0), config))
    filler = strict_fill(template, state_dict, torch_name)
    for encoder in ("Encoder_M", "Encoder_Q"):
        for buffer, expected in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
            name = f"{encoder}.{buffer}"
            if name not in state_dict:
                filler.missing.append(name)
                continue
            filler.consumed.add(name)
            if not np.allclose(np.ravel(state_dict[name]), expected, atol=1e-6):
                filler.mismatched.append(
                    f"{name}: {np.ravel(state_dict[name])} is not ImageNet {expected}"
                )
    return filler.check(
        source,
        f"the model (backbone={config.backbone}, key_dim={config.key_dim}, "
        f"value_dim={config.value_dim})",
        "Use the official STM_weights.pth with the default model config, or fix config.model.",
    )


def load_official_checkpoint(path, config: ModelConfig) -> dict:
    """Reads `STM_weights.pth` (weights_only) and converts it; see `convert_state_dict`."""
    from stm_jax.convert.torch_files import load_state_dict

    return convert_state_dict(load_state_dict(path), config, source=str(path))


__all__ = ["CheckpointFileError", "OfficialStm", "convert_state_dict", "load_official_checkpoint"]
