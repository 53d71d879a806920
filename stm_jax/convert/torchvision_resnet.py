"""torchvision ImageNet ResNet `.pth` -> the backbones of a model's encoders, for training from
ImageNet.

The model's family names its encoders and their backbones (`ModelFamily.torchvision_backbones`: STM's
Encoder_M and Encoder_Q, STCN's key and value encoders); every encoder whose backbone matches the
file (every torchvision name it needs is there, with its shape) is filled from it: `conv1`, `bn1`,
`layer1..layer3`. `layer4.*` and `fc.*` are not part of the model and are skipped. A stem taking
more input channels than the file's (STM's memory stems are separate layers; STCN's value encoder
reads RGB + 2 masks) gets the file's RGB filters and keeps its own init for the extra channels.
Every other layer keeps the modules' own init (`init_variables`). Keys no encoder uses, or no
matching encoder at all, are an error listing what is missing, unexpected or mis-shaped.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from stm_jax.convert.common import leaves, set_leaf, to_flax, unfreeze
from stm_jax.convert.torch_files import CheckpointFileError
from stm_jax.model.backbone import BACKBONES
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import get_family, init_variables

_NOT_IN_THE_MODEL = ("layer4.", "fc.")


def is_torchvision_resnet(state_dict: Mapping) -> bool:
    """torchvision ResNet names: a stem `conv1` and `layer1` blocks at the top level."""
    return "conv1.weight" in state_dict and any(key.startswith("layer1.") for key in state_dict)


def _fill_input_channels(ours: np.ndarray, file: np.ndarray) -> np.ndarray | None:
    """The file's kernel where only our input-channel axis is wider (extra channels keep ours)."""
    if ours.ndim == 4 and ours.shape[:2] + ours.shape[3:] == file.shape[:2] + file.shape[3:]:
        if file.shape[2] < ours.shape[2]:
            merged = np.array(ours, np.float32)
            merged[:, :, : file.shape[2], :] = file
            return merged
    return None


def _encoder_fill(variables, state_dict, encoder: str, backbone):
    """(updates {(collection, path): array}, consumed names, problems) for one encoder."""
    updates, consumed, missing, mismatched = {}, set(), [], []
    for collection, path, leaf in leaves(variables):
        if path[0] != encoder:
            continue
        name = backbone.torchvision_name(collection, path[1:])
        if name is None:
            continue
        if name not in state_dict:
            missing.append(name)
            continue
        array = to_flax(name, np.asarray(state_dict[name], np.float32))
        if array.shape != np.shape(leaf):
            array = _fill_input_channels(np.asarray(leaf), array)
            if array is None:
                mismatched.append(
                    f"{name}: file {np.shape(state_dict[name])} vs {encoder} {np.shape(leaf)}"
                )
                continue
        consumed.add(name)
        updates[(collection, path)] = array
    return updates, consumed, missing, mismatched


def convert_torchvision_resnet(
    state_dict: Mapping[str, np.ndarray],
    config: ModelConfig,
    rng=None,
    source: str = "checkpoint",
    variables: dict | None = None,
) -> tuple[dict, set]:
    """Variables whose matching encoders' backbones come from `state_dict`.

    Args:
      state_dict: torchvision ResNet state dict ({name: array}).
      config: the model; its family names the encoders and their backbones.
      rng: key for `init_variables` (default PRNGKey(0)); unused when `variables` is given.
      source: file name used in error messages.
      variables: start from these (numpy nested dicts) instead of a fresh `init_variables`.
    Returns:
      (variables as numpy nested dicts, the set of (collection, path) filled from the file).
    """
    if variables is None:
        rng = jax.random.key(0) if rng is None else rng
        variables = jax.tree.map(np.asarray, init_variables(rng, config))
    variables = {c: unfreeze(t) for c, t in variables.items()}
    used, problems, filled = set(), [], set()
    for encoder, backbone_name in get_family(config).torchvision_backbones().items():
        backbone = BACKBONES.get(backbone_name)
        updates, consumed, missing, mismatched = _encoder_fill(
            variables, state_dict, encoder, backbone
        )
        if missing or mismatched:
            problems.append((encoder, backbone_name, missing, mismatched))
            continue
        for (collection, path), array in updates.items():
            set_leaf(variables[collection], path, array)
        filled |= set(updates)
        used |= consumed
    unexpected = sorted(
        key
        for key in state_dict
        if key not in used
        and not key.startswith(_NOT_IN_THE_MODEL)
        and not key.endswith("num_batches_tracked")
    )
    if not filled or unexpected:
        details = "".join(
            f"\n  {encoder} ({name}): missing ({len(m)}): {m[:10]}; wrong shape ({len(w)}): {w[:10]}"
            for encoder, name, m, w in problems
        )
        raise CheckpointFileError(
            f"{source} is not a torchvision ResNet state dict that fits this model's encoders "
            f"({', '.join(f'{e}: {b}' for e, b in get_family(config).torchvision_backbones().items())})."
            f"{details}\n  unexpected ({len(unexpected)}): {unexpected[:20]}\n"
            "Use torchvision's ImageNet weights of the encoder's backbone (e.g. resnet50-0676ba61.pth "
            "with model.backbone='resnet50', resnet18 weights with model.backbone='resnet18')."
        )
    return variables, filled


def load_torchvision_resnet(path, config: ModelConfig, rng=None) -> dict:
    """Reads a torchvision ResNet `.pth` (weights_only) and converts it (variables only)."""
    from stm_jax.convert.torch_files import load_state_dict

    return convert_torchvision_resnet(load_state_dict(path), config, rng, source=str(path))[0]
