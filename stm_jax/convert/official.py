"""Official `STM_weights.pth` -> stm_jax variables, strictly (spec A.10).

Every parameter and BN statistic of our model is looked up under its PyTorch name; conv weights
OIHW -> HWIO; BN weight/bias -> params scale/bias, running_mean/var -> batch_stats mean/var. Every key
of the checkpoint must be consumed (except `num_batches_tracked`), every shape must match, and the
encoders' `mean`/`std` buffers must hold the ImageNet constants; otherwise the error lists what is
missing, unexpected or mis-shaped.
"""

from __future__ import annotations

import jax
import numpy as np

from stm_jax.convert.torch_files import CheckpointFileError
from stm_jax.model.config import ModelConfig
from stm_jax.model.encoders import IMAGENET_MEAN, IMAGENET_STD
from stm_jax.model.stm import init_variables

_LEAF_NAMES = {
    ("params", "kernel"): "weight",
    ("params", "bias"): "bias",
    ("params", "scale"): "weight",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}


def torch_name(collection: str, path: tuple[str, ...]) -> str:
    """PyTorch state-dict name (without 'module.') of a leaf of our variables.

    ('Encoder_M', 'backbone', 'res2_0', 'downsample_0', 'kernel') -> 'Encoder_M.res2.0.downsample.0.weight'.
    """
    parts = []
    for part in path[:-1]:
        if (
            part == "backbone"
        ):  # our grouping of res2..res4; the official encoders hold them directly
            continue
        stem, _, index = part.rpartition("_")
        parts.extend([stem, index] if index.isdigit() and stem else [part])
    parts.append(_LEAF_NAMES[(collection, path[-1])])
    return ".".join(parts)


def leaves(variables):
    """Yields (collection, path, leaf) for every leaf of {'params', 'batch_stats'}."""
    for collection, tree in variables.items():
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            yield collection, tuple(k.key for k in key_path), leaf


def to_flax(name: str, array: np.ndarray) -> np.ndarray:
    if name.endswith(".weight") and array.ndim == 4:
        return np.transpose(array, (2, 3, 1, 0))
    return array


def _strip_prefix(state_dict: dict, prefix: str) -> dict:
    if state_dict and all(key.startswith(prefix) for key in state_dict):
        return {key[len(prefix) :]: value for key, value in state_dict.items()}
    return state_dict


def set_leaf(tree: dict, path: tuple[str, ...], value):
    for part in path[:-1]:
        tree = tree[part]
    tree[path[-1]] = value


def convert_state_dict(
    state_dict: dict[str, np.ndarray], config: ModelConfig, source: str = "checkpoint"
) -> dict:
    """Converts an official-layout STM state dict to {'params', 'batch_stats'} for `config`.

    Args:
      state_dict: {name: array}, with or without the 'module.' DataParallel prefix.
      config: model config; its backbone / key / value dims must match the checkpoint.
      source: file name used in error messages.
    Returns:
      Variables as nested dicts of numpy float32 arrays.
    """
    state_dict = _strip_prefix(dict(state_dict), "module.")
    template = jax.eval_shape(lambda: init_variables(jax.random.key(0), config))
    variables = {c: unfreeze(t) for c, t in template.items()}  # plain dicts to fill in
    consumed, missing, mismatched = set(), [], []
    for collection, path, leaf in leaves(template):
        name = torch_name(collection, path)
        if name not in state_dict:
            missing.append(name)
            continue
        array = to_flax(name, np.asarray(state_dict[name], np.float32))
        consumed.add(name)
        if array.shape != tuple(leaf.shape):
            mismatched.append(f"{name}: checkpoint {array.shape} vs model {tuple(leaf.shape)}")
            continue
        set_leaf(variables[collection], path, array)
    for encoder in ("Encoder_M", "Encoder_Q"):
        for buffer, expected in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
            name = f"{encoder}.{buffer}"
            if name not in state_dict:
                missing.append(name)
                continue
            consumed.add(name)
            if not np.allclose(np.ravel(state_dict[name]), expected, atol=1e-6):
                mismatched.append(
                    f"{name}: {np.ravel(state_dict[name])} is not ImageNet {expected}"
                )
    unexpected = sorted(
        key for key in state_dict if key not in consumed and not key.endswith("num_batches_tracked")
    )
    if missing or unexpected or mismatched:
        raise CheckpointFileError(
            f"{source} does not match the model (backbone={config.backbone}, key_dim="
            f"{config.key_dim}, value_dim={config.value_dim}).\n"
            f"  missing ({len(missing)}): {missing[:20]}\n"
            f"  unexpected ({len(unexpected)}): {unexpected[:20]}\n"
            f"  wrong shape ({len(mismatched)}): {mismatched[:20]}\n"
            "Use the official STM_weights.pth with the default model config, or fix config.model."
        )
    return variables


def unfreeze(tree):
    """Nested mappings -> nested plain dicts."""
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return {k: unfreeze(v) for k, v in tree.items()}
    return tree


def load_official_checkpoint(path, config: ModelConfig) -> dict:
    """Reads `STM_weights.pth` (weights_only) and converts it; see `convert_state_dict`."""
    from stm_jax.convert.torch_files import load_state_dict

    return convert_state_dict(load_state_dict(path), config, source=str(path))
