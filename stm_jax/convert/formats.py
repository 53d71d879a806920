"""The checkpoint-format registry: released PyTorch state dicts recognised by their keys.

An entry (an instance of a `CheckpointFormat` subclass, `CHECKPOINT_FORMATS.register("name")(it)`)
reads one family's released weights:
* `family`: the model family the file holds (`stm_jax.model.family.FAMILIES`);
* `recognises(state_dict)`: True for this format's keys (a 'module.' prefix is already stripped);
* `model_config(state_dict, fields)`: the architecture to build (`ModelConfig`) from the run's model
  fields `fields` (a dict whose fields at 0 / '' take the family's defaults) and the file's shapes;
* `convert(state_dict, config, source)`: {'params', 'batch_stats'} numpy nested dicts, strictly:
  every key consumed (but `num_batches_tracked`), every shape checked; else a `CheckpointFileError`
  listing what is missing, unexpected or mis-shaped;
* `torch_name(collection, path)`: the state-dict name of one of our leaves (for partial fills).
`detect(state_dict)` finds the entry; `stm_jax.weights.load_weights` uses it for every `.pth` that is
not a torchvision ResNet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from stm_jax.registry import Registry

CHECKPOINT_FORMATS = Registry(
    "checkpoint format", "checkpoint", builtins=("stm_jax.convert.official", "stm_jax.convert.stcn")
)


class CheckpointFormat:
    """Base class of a released-checkpoint reader (see the module docstring)."""

    family: ClassVar[str] = ""

    def recognises(self, state_dict: Mapping) -> bool:
        raise NotImplementedError

    def model_config(self, state_dict: Mapping, fields: Mapping):
        from stm_jax.model.config import ModelConfig

        return ModelConfig.from_config({**dict(fields), "family": self.family})

    def convert(self, state_dict: Mapping, config, source: str) -> dict:
        raise NotImplementedError

    def torch_name(self, collection: str, path: tuple[str, ...]) -> str | None:
        """The state-dict name of our leaf at `path` (None: a leaf the format does not hold); used to
        start training from a released checkpoint of another width (matching leaves only)."""
        from stm_jax.model.torch_names import torch_name

        return torch_name(collection, path)


def strip_prefix(state_dict: Mapping, prefix: str = "module.") -> dict:
    """The state dict without a prefix that every key has (nn.DataParallel / DDP saves)."""
    state_dict = dict(state_dict)
    if state_dict and all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix) :]: value for key, value in state_dict.items()}
    return state_dict


def detect(state_dict: Mapping) -> CheckpointFormat | None:
    """The registered format whose keys `state_dict` holds (prefix stripped), or None."""
    state_dict = strip_prefix(state_dict)
    for name in CHECKPOINT_FORMATS:
        entry = CHECKPOINT_FORMATS.get(name)
        if entry.recognises(state_dict):
            return entry
    return None
