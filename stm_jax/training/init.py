"""Initial model variables for a run that does not resume: `config.init_from` or random (scratch).

`init_from` may be an official `STM_weights.pth`, a torchvision ResNet `.pth` (both encoders' backbones
from ImageNet, heads and decoder random), or one of our checkpoints (a workdir / checkpoint dir).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import init_variables


def _looks_official(path: Path) -> bool:
    from stm_jax.convert.torch_files import load_state_dict

    return any("Encoder_M" in k or "KV_M_r4" in k for k in load_state_dict(path))


def initial_variables(model_config: ModelConfig, init_from: str, seed: int) -> tuple[dict, str]:
    """Variables to start training from.

    Args:
      model_config: the architecture being trained.
      init_from: '' (scratch) or a path (see module docstring).
      seed: random seed for parameters not covered by `init_from`.
    Returns:
      ({'params', 'batch_stats'} numpy nested dicts, a description for the log).
    """
    rng = jax.random.key(seed)
    if not init_from:
        variables = jax.tree.map(np.array, init_variables(rng, model_config))
        # Random decoders without normalisation put the logits at +-16, where soft aggregation's
        # clamp to [1e-7, 1 - 1e-7] passes no gradient and training never starts. A zero output
        # conv starts every pixel at p = 0.5 and still receives gradients from its input features.
        head = variables["params"]["Decoder"]["pred2"]
        head["kernel"][...] = 0.0
        head["bias"][...] = 0.0
        return variables, "scratch (random init, zero decoder output conv)"
    path = Path(init_from)
    if path.is_dir():
        from stm_jax.checkpoint_io import load_trained_model

        saved_config, variables = load_trained_model(path)
        if saved_config != model_config:
            raise ValueError(
                f"init_from={path} was trained with {saved_config}, but config.model is "
                f"{model_config}. Make config.model match the checkpoint."
            )
        return variables, f"our checkpoint {path}"
    if not path.is_file():
        raise FileNotFoundError(f"init_from={path}: no such file or directory.")
    if _looks_official(path):
        from stm_jax.convert.official import load_official_checkpoint

        return load_official_checkpoint(path, model_config), f"official STM weights {path}"
    from stm_jax.convert.torchvision_resnet import load_torchvision_resnet

    variables = load_torchvision_resnet(path, model_config, rng)
    return variables, f"torchvision ResNet {path}"
