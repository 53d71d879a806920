"""Model weights from any source, in one place: what training init and inference both call.

Sources (`load_weights(path, model)`):
* a directory: one of our checkpoints — a training workdir, a checkpoint or step folder, a release
  export, or the workdir of configs/convert.py. It carries its own `ModelConfig` and needs no PyTorch.
* a file holding a released state dict of a registered format (`stm_jax.convert.formats`: the
  official STM `STM_weights.pth`, STCN's checkpoints, ...; any suffix), recognised by its keys and
  converted strictly (every key and shape checked); needs PyTorch to read.
* a file holding a torchvision ResNet state dict: the backbones of the encoders it fits; every other
  layer keeps the modules' own init.
A `.pth` is read once, with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import jax

from stm_jax.cli_errors import ConfigError, MissingFileError
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
      filled: 'torchvision': the (collection, path) leaves the file filled.
    """

    model_config: ModelConfig
    variables: dict
    kind: str
    description: str
    meta: dict | None = None
    filled: set | None = None


def _fields(model) -> dict:
    """The run's model fields as a dict (a ModelConfig is fully explicit, its family included)."""
    return model.to_dict() if isinstance(model, ModelConfig) else dict(model)


def check_family(path, found: str, fields: Mapping) -> None:
    """A family set explicitly in the run's model fields must be the one the weights hold."""
    wanted = fields.get("family") or ""
    if wanted and wanted != found:
        raise ConfigError(
            f"{path} holds a {found!r} model but model.family={wanted!r}; drop --config.model.family "
            f"(the checkpoint's family is used) or pass --config.model.family={found}."
        )


def load_weights(path, model, seed: int = 0) -> Weights:
    """Reads the weights at `path` (see the module docstring).

    Args:
      path: a checkpoint directory or a PyTorch weights file.
      model: the architecture wanted: a `ModelConfig`, or the run's `config.model` fields (fields at
        0 / '' take the defaults of the family the file holds).
      seed: draws the layers a torchvision ResNet does not hold.
    Returns:
      The `Weights`.
    """
    path = Path(path)
    fields = _fields(model)
    if path.is_dir():
        from stm_jax.checkpoint_io import load_trained_model_and_meta

        saved_config, variables, meta = load_trained_model_and_meta(path)
        check_family(path, saved_config.family, fields)
        return Weights(saved_config, variables, "checkpoint", f"our checkpoint {path}", meta)
    if not path.is_file():
        raise MissingFileError(
            f"{path}: checkpoint not found; expected a released .pth (STM_weights.pth, an STCN "
            "checkpoint), a torchvision ResNet .pth, the workdir of configs/convert.py, or a "
            "training workdir."
        )
    from stm_jax.convert.formats import detect, strip_prefix
    from stm_jax.convert.torch_files import CheckpointFileError, load_state_dict
    from stm_jax.convert.torchvision_resnet import convert_torchvision_resnet, is_torchvision_resnet

    state_dict = strip_prefix(load_state_dict(path))
    if is_torchvision_resnet(state_dict):
        config = ModelConfig.from_config(fields)
        variables, filled = convert_torchvision_resnet(
            state_dict, config, jax.random.key(seed), source=str(path)
        )
        return Weights(config, variables, "torchvision", f"torchvision ResNet {path}", None, filled)
    entry = detect(state_dict)
    if entry is None:
        raise CheckpointFileError(
            f"{path}: no known checkpoint format holds these keys ({', '.join(list(state_dict)[:4])}, "
            "...); expected a released STM or STCN state dict or a torchvision ResNet."
        )
    check_family(path, entry.family, fields)
    config = entry.model_config(state_dict, fields)
    variables = entry.convert(state_dict, config, str(path))
    return Weights(config, variables, "official", f"official {entry.family.upper()} weights {path}")
