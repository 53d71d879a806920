"""torchvision ResNet ImageNet `.pth` -> both STM encoders' backbones, for training from ImageNet.

torchvision `conv1`, `bn1`, `layer1..layer3` fill `Encoder_M` and `Encoder_Q` (stem, res2..res4);
`layer4.*` and `fc.*` are not part of STM and are skipped. The memory encoder's extra stems
(`conv1_m`, `conv1_o`) and everything after the encoders (key/value heads, decoder) are new layers:
`stm_jax.training.init` gives them PyTorch's default init, as in the reference code. Any other
missing, unexpected or mis-shaped key is an error.
"""

from __future__ import annotations

import jax
import numpy as np

from stm_jax.convert.official import leaves, set_leaf, to_flax, torch_name, unfreeze
from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import init_variables

_NOT_IN_STM = ("layer4.", "fc.")
_NEW_LAYERS = ("conv1_m", "conv1_o")


def torchvision_name(collection: str, path: tuple[str, ...]) -> str | None:
    """torchvision name of an encoder leaf, or None for leaves ImageNet weights do not cover."""
    if path[0] not in ("Encoder_M", "Encoder_Q") or path[1] in _NEW_LAYERS:
        return None
    name = torch_name(collection, path[1:])
    for stage in (2, 3, 4):
        name = name.replace(f"res{stage}.", f"layer{stage - 1}.")
    return name


def convert_torchvision_resnet(
    state_dict: dict[str, np.ndarray], config: ModelConfig, rng=None, source: str = "checkpoint"
) -> dict:
    """Returns full STM variables whose encoder backbones come from `state_dict`.

    Args:
      state_dict: torchvision ResNet state dict ({name: array}).
      config: model config; its backbone must be the one the file holds (resnet50 or resnet18).
      rng: key for the layers that stay randomly initialised (default PRNGKey(0)).
      source: file name used in error messages.
    """
    rng = jax.random.key(0) if rng is None else rng
    fresh = jax.jit(lambda key: init_variables(key, config))(rng)
    variables = {c: unfreeze(jax.tree.map(np.asarray, t)) for c, t in fresh.items()}
    consumed, missing, mismatched = set(), [], []
    for collection, path, leaf in leaves(fresh):
        name = torchvision_name(collection, path)
        if name is None:
            continue
        if name not in state_dict:
            missing.append(name)
            continue
        consumed.add(name)
        array = to_flax(name, np.asarray(state_dict[name], np.float32))
        if array.shape != tuple(leaf.shape):
            mismatched.append(f"{name}: file {array.shape} vs model {tuple(leaf.shape)}")
            continue
        set_leaf(variables[collection], path, array)
    unexpected = sorted(
        key
        for key in state_dict
        if key not in consumed
        and not key.startswith(_NOT_IN_STM)
        and not key.endswith("num_batches_tracked")
    )
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{source} is not a torchvision {config.backbone} state dict.\n"
            f"  missing ({len(missing)}): {missing[:20]}\n"
            f"  unexpected ({len(unexpected)}): {unexpected[:20]}\n"
            f"  wrong shape ({len(mismatched)}): {mismatched[:20]}\n"
            "Use torchvision's resnet50 ImageNet weights (e.g. resnet50-0676ba61.pth) with "
            "model.backbone='resnet50', or resnet18 weights with model.backbone='resnet18'."
        )
    return variables


def load_torchvision_resnet(path, config: ModelConfig, rng=None) -> dict:
    """Reads a torchvision ResNet `.pth` (weights_only) and converts it."""
    from stm_jax.convert.torch_files import load_state_dict

    return convert_torchvision_resnet(load_state_dict(path), config, rng, source=str(path))
