"""STCN's released checkpoints (hkchengrex/STCN: `stcn.pth`, s012 / s03 / s0 / s01) -> stm_jax
variables, strictly.

A bare state dict (saved without the `module.` prefix; one with it is accepted too) recognised by its
top-level modules `key_encoder`, `key_proj`, `key_comp`, `value_encoder`. Every parameter and BN
statistic of our 'stcn' model is looked up under its STCN name: the key encoder's stages are `res2`,
`layer2`, `layer3`, the value encoder's `layer1..3`; conv weights OIHW -> HWIO, linear weights
transposed. A stage-0 (static-image, single-object) checkpoint has a 4-channel value `conv1` (no
others-mask channel): its 5th input channel is zero, as STCN's evaluation scripts make it. Every key
must be consumed (but `num_batches_tracked`) and every shape must match; otherwise the error lists
what is missing, unexpected or mis-shaped. The architecture is read from the file's shapes where the
run's model fields leave it open.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from stm_jax.convert.common import StrictFill, leaves, torch_name
from stm_jax.convert.formats import CHECKPOINT_FORMATS, CheckpointFormat, strip_prefix
from stm_jax.model.backbone import BACKBONES
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables

TOP_LEVEL = ("key_encoder", "key_proj", "key_comp", "value_encoder")
# STCN's names of res2, res3, res4 (torchvision's layer1..3) in each encoder.
STAGE_NAMES = {
    "key_encoder": ("res2", "layer2", "layer3"),
    "value_encoder": ("layer1", "layer2", "layer3"),
}
# Module names with "_<digits>" that are not PyTorch Sequential indices.
LITERAL_NAMES = ("up_16_8", "up_8_4")
VALUE_CONV1 = "value_encoder.conv1.weight"


def stcn_name(collection: str, path: tuple[str, ...]) -> str:
    """STCN's state-dict name of our leaf at `path` of `collection`."""
    if len(path) > 2 and path[1] in LITERAL_NAMES:
        return f"{path[0]}.{path[1]}." + torch_name(collection, path[2:])
    name = torch_name(collection, path)
    if path[0] in STAGE_NAMES and path[1] == "backbone":
        stage = int(path[2][len("res")]) - 2  # 'res3_0' -> 1
        ours = f"{path[0]}.res{stage + 2}."
        name = f"{path[0]}.{STAGE_NAMES[path[0]][stage]}." + name[len(ours) :]
    return name


def _infer_backbone(state_dict: Mapping, encoder: str) -> str | None:
    """The registered ResNet whose blocks, widths and stem the encoder's keys hold, or None."""
    stages = STAGE_NAMES[encoder]
    stem = state_dict.get(f"{encoder}.conv1.weight")
    first = state_dict.get(f"{encoder}.{stages[0]}.0.conv1.weight")
    if stem is None or first is None:
        return None
    block = "bottleneck" if f"{encoder}.{stages[0]}.0.conv3.weight" in state_dict else "basic"
    blocks, widths = [], []
    for stage in stages:
        count = 0
        while f"{encoder}.{stage}.{count}.conv1.weight" in state_dict:
            count += 1
        blocks.append(count)
        head = state_dict.get(f"{encoder}.{stage}.0.conv1.weight")
        widths.append(None if head is None else int(np.shape(head)[0]))
    for name in BACKBONES:
        spec = getattr(BACKBONES.get(name), "spec", None)
        if spec is not None and (
            spec.block,
            tuple(spec.stage_blocks),
            tuple(spec.widths),
            spec.stem_width,
        ) == (block, tuple(blocks), tuple(widths), int(np.shape(stem)[0])):
            return name
    return None


def infer_model_fields(state_dict: Mapping) -> dict:
    """The architecture fields the file's shapes determine (those it cannot are left out)."""
    fields = {
        "backbone": _infer_backbone(state_dict, "key_encoder"),
        "value_backbone": _infer_backbone(state_dict, "value_encoder"),
    }
    for field, key, axis in (
        ("key_dim", "key_proj.key_proj.weight", 0),
        ("value_dim", "key_comp.weight", 0),
        ("decoder_dim", "decoder.pred.weight", 1),
    ):
        if key in state_dict and np.ndim(state_dict[key]) == 4:
            fields[field] = int(np.shape(state_dict[key])[axis])
    return {field: value for field, value in fields.items() if value is not None}


def _pad_stage0_conv1(array: np.ndarray) -> np.ndarray:
    """A stage-0 value conv1 (HWIO with 4 input channels: RGB + mask) gets a zero others-mask
    channel, as STCN's evaluation scripts give it."""
    if array.ndim == 4 and array.shape[2] == 4:
        return np.concatenate([array, np.zeros_like(array[:, :, :1])], axis=2)
    return array


def convert_stcn_state_dict(
    state_dict: Mapping[str, np.ndarray], config: ModelConfig, source: str = "checkpoint"
) -> dict:
    """Converts an STCN state dict to {'params', 'batch_stats'} numpy nested dicts for `config`.

    Args:
      state_dict: {name: array}, with or without the 'module.' prefix; stage-0 files accepted.
      config: a 'stcn' model config whose backbones and dims match the file.
      source: file name used in error messages.
    """
    state_dict = strip_prefix(state_dict)
    template = jax.eval_shape(lambda: init_variables(jax.random.key(0), config))
    filler = StrictFill(template, state_dict)
    for collection, path, _ in leaves(template):
        name = stcn_name(collection, path)
        filler.fill(collection, path, name, _pad_stage0_conv1 if name == VALUE_CONV1 else None)
    return filler.check(
        source,
        f"the STCN model (backbone={config.backbone}, value_backbone={config.value_backbone}, "
        f"key_dim={config.key_dim}, value_dim={config.value_dim}, "
        f"decoder_dim={config.decoder_dim})",
        "Use a released STCN checkpoint (stcn.pth, s0/s01/s03 weights) and leave config.model's "
        "sizes unset, or fix them.",
    )


class StcnCheckpoint(CheckpointFormat):
    """hkchengrex/STCN's state dicts (every training stage's, multi-object or stage-0)."""

    family = "stcn"

    def recognises(self, state_dict: Mapping) -> bool:
        return any(key.split(".", 1)[0] in TOP_LEVEL for key in state_dict)

    def model_config(self, state_dict: Mapping, fields: Mapping) -> ModelConfig:
        """The run's model fields where set; the file's shapes for the rest (the family's defaults
        for what neither gives)."""
        chosen = {field: value for field, value in dict(fields).items() if value}
        merged = {**infer_model_fields(strip_prefix(state_dict)), **chosen}
        return ModelConfig.from_config({**merged, "family": self.family})

    def convert(self, state_dict: Mapping, config: ModelConfig, source: str) -> dict:
        return convert_stcn_state_dict(state_dict, config, source)

    def torch_name(self, collection: str, path: tuple[str, ...]) -> str | None:
        return stcn_name(collection, path)


CHECKPOINT_FORMATS.register("stcn")(StcnCheckpoint())


def load_stcn_checkpoint(path, config: ModelConfig) -> dict:
    """Reads an STCN `.pth` (weights_only) and converts it; see `convert_stcn_state_dict`."""
    from stm_jax.convert.torch_files import load_state_dict

    return convert_stcn_state_dict(load_state_dict(path), config, source=str(path))
