"""Model weights from any source, in one place: what training init and inference both call.

Sources (`load_weights(path, model_config)`):
* a directory: one of our checkpoints — a training workdir, a checkpoint or step folder, a release
  export, or the workdir of configs/convert.py. It carries its own `ModelConfig` and needs no PyTorch.
* a file holding the official STM state dict (`STM_weights.pth`, any suffix): converted strictly for
  `model_config` (every key and shape checked); needs PyTorch to read.
* a file holding a torchvision ResNet state dict: both encoders' backbones; every other layer is
  drawn fresh (`stm_jax.training.init` applies the reference code's init to those).
A `.pth` is read once, with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax

from stm_jax.cli_errors import MissingFileError
from stm_jax.model.config import ModelConfig


@dataclasses.dataclass
class Weights:
    """Variables read from a source.

    Attributes:
      model_config: the architecture the variables belong to (our checkpoints: the saved one).
      variables: {'params', 'batch_stats'} nested numpy dicts.
      kind: 'checkpoint' | 'official' | 'torchvision'.
      description: for logs.
      meta: our checkpoints' JSON metadata (model, step, score, training config); else None.
    """

    model_config: ModelConfig
    variables: dict
    kind: str
    description: str
    meta: dict | None = None


def is_official_state_dict(state_dict) -> bool:
    return any("Encoder_M" in key or "KV_M_r4" in key for key in state_dict)


def load_weights(path, model_config: ModelConfig, seed: int = 0) -> Weights:
    """Reads the weights at `path` (see the module docstring).

    Args:
      path: a checkpoint directory or a PyTorch weights file.
      model_config: the architecture wanted (files are converted for it; a directory keeps its own).
      seed: draws the layers a torchvision ResNet does not hold.
    Returns:
      The `Weights`.
    """
    path = Path(path)
    if path.is_dir():
        from stm_jax.checkpoint_io import load_trained_model_and_meta

        saved_config, variables, meta = load_trained_model_and_meta(path)
        return Weights(saved_config, variables, "checkpoint", f"our checkpoint {path}", meta)
    if not path.is_file():
        raise MissingFileError(
            f"{path}: checkpoint not found; expected the official STM_weights.pth (or .pt), "
            "a torchvision ResNet .pth, the workdir of configs/convert.py, or a training workdir."
        )
    from stm_jax.convert.torch_files import load_state_dict

    state_dict = load_state_dict(path)
    if is_official_state_dict(state_dict):
        from stm_jax.convert.official import convert_state_dict

        variables = convert_state_dict(state_dict, model_config, source=str(path))
        return Weights(model_config, variables, "official", f"official STM weights {path}")
    from stm_jax.convert.torchvision_resnet import convert_torchvision_resnet

    variables = convert_torchvision_resnet(
        state_dict, model_config, jax.random.key(seed), source=str(path)
    )
    return Weights(model_config, variables, "torchvision", f"torchvision ResNet {path}")
