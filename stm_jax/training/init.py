"""Initial model variables for a run that does not resume: `config.init_from` or random (scratch).

`init_from` may be an official `STM_weights.pth`, a torchvision ResNet `.pth` (both encoders' backbones
from ImageNet, heads and decoder new), or one of our checkpoints (a workdir / checkpoint dir).

The initialisation rule (one place, every path)
-----------------------------------------------
Every leaf that the source fills keeps the source's value. Every leaf it does not fill starts as the
reference code's layer does (seoungwugoh/STM, Training-Code-of-STM):

* Backbone layers (each encoder's `conv1`, `bn1` and res2..res4): torchvision ResNet's own init, as
  `resnet50(pretrained=False)` gives: conv kernels He-normal fan-out, BN scale 1 / bias 0, running
  mean 0 / var 1. (This is what `init_variables` draws; it is kept.)
* Every other layer -- the memory encoder's extra stems `conv1_m` / `conv1_o`, the key/value heads and
  the decoder, including its output conv `pred2` -- uses PyTorch's default `nn.Conv2d` init
  (`kaiming_uniform_(a=sqrt(5))`): kernel ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and bias ~
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = kh * kw * in_channels (Flax HWIO kernel: the product
  of all but the last axis).

He fan-out init on the heads and decoder (no normalisation there) gave ImageNet-scale features a
fg-bg logit spread of ~50: most pixels sat past soft aggregation's clamp, where cross-entropy passes
no gradient. PyTorch's default gives a spread well under 1 (`tests/test_init_paths.py` measures it).

Sources: scratch fills nothing; a torchvision `.pth` fills the backbones; the official `.pth` fills
everything (`max_objects` does not change any weight), or, when `config.model` differs from it
(another backbone, key or value width), every leaf whose name and shape match; our checkpoint with
another `config.model` (new heads) likewise fills the leaves whose path and shape match.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import jax
import numpy as np

from stm_jax.convert.torch_files import CheckpointFileError
from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import init_variables
from stm_jax.weights import load_weights

BACKBONE_LAYERS = ("conv1", "bn1", "backbone")  # under Encoder_M / Encoder_Q: torchvision's init


def is_backbone_leaf(path: tuple[str, ...]) -> bool:
    """True for leaves of a ResNet backbone (stem conv1/bn1, res2..res4) of either encoder."""
    return path[0] in ("Encoder_M", "Encoder_Q") and path[1] in BACKBONE_LAYERS


def pytorch_default(shape: tuple[int, ...], fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default conv/linear weight and bias init."""
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _leaf_rng(seed: int, path: tuple[str, ...]) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("/".join(path).encode())])


def apply_init_rule(variables: dict, filled: set[tuple[str, ...]], seed: int) -> list[str]:
    """Re-initialises every param leaf not in `filled` per the module rule, in place.

    Args:
      variables: {'params', 'batch_stats'} nested numpy dicts as drawn by `init_variables`.
      filled: param paths (tuples of names) that the source filled; they are left alone.
      seed: seeds the draws (each leaf also by its path, so the values do not depend on order).
    Returns:
      The '/'-joined names of the modules that got PyTorch's default init.
    """
    fresh = []

    def visit(tree: dict, path: tuple[str, ...]) -> None:
        if "kernel" in tree and not isinstance(tree["kernel"], dict):
            if is_backbone_leaf(path) or path + ("kernel",) in filled:
                return
            kernel = tree["kernel"]
            fan_in = int(np.prod(kernel.shape[:-1]))
            tree["kernel"] = pytorch_default(kernel.shape, fan_in, _leaf_rng(seed, path + ("k",)))
            if "bias" in tree:
                tree["bias"] = pytorch_default(
                    tree["bias"].shape, fan_in, _leaf_rng(seed, path + ("b",))
                )
            fresh.append("/".join(path))
            return
        for key, value in tree.items():
            if isinstance(value, dict):
                visit(value, path + (key,))

    visit(variables["params"], ())
    return fresh


def param_paths(tree: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf path of a nested dict."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += param_paths(value, prefix + (key,))
        else:
            out.append(prefix + (key,))
    return out


def _get(tree: dict, path: tuple[str, ...]):
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def fill_matching(target: dict, source: dict) -> set[tuple[str, ...]]:
    """Copies every leaf of `source` whose path and shape exist in `target`; returns their paths."""
    filled = set()
    for collection in ("params", "batch_stats"):
        for path in param_paths(target[collection]):
            value = _get(source.get(collection, {}), path)
            if value is None or np.shape(value) != np.shape(_get(target[collection], path)):
                continue
            tree = target[collection]
            for part in path[:-1]:
                tree = tree[part]
            tree[path[-1]] = np.array(value, np.float32)
            if collection == "params":
                filled.add(path)
    return filled


def fresh_variables(model_config: ModelConfig, seed: int) -> dict:
    """Random variables as `init_variables` draws them (numpy, mutable nested dicts)."""
    drawn = init_variables(jax.random.key(seed), model_config)
    return {c: jax.tree.map(np.array, dict(t)) for c, t in drawn.items()}


def _unfreeze(tree):
    if hasattr(tree, "items"):
        return {k: _unfreeze(v) for k, v in tree.items()}
    return np.array(tree)


def _finish(variables: dict, filled: set, seed: int, origin: str) -> tuple[dict, str]:
    variables = {c: _unfreeze(t) for c, t in variables.items()}
    total = len(param_paths(variables["params"]))
    fresh = apply_init_rule(variables, filled, seed)
    note = f"{origin}; {len(filled)}/{total} param leaves from the source"
    if fresh:
        note += f"; PyTorch default init: {len(fresh)} layers"
    return variables, note


def _partial_official(path: Path, model_config: ModelConfig, seed: int, error: ValueError):
    from stm_jax.convert.official import leaves, strip_prefix, to_flax, torch_name
    from stm_jax.convert.torch_files import load_state_dict

    state_dict = strip_prefix(dict(load_state_dict(path)), "module.")
    variables = fresh_variables(model_config, seed)
    source: dict = {"params": {}, "batch_stats": {}}
    for collection, leaf_path, _ in leaves(variables):
        name = torch_name(collection, leaf_path)
        if name in state_dict:
            tree = source[collection]
            for part in leaf_path[:-1]:
                tree = tree.setdefault(part, {})
            tree[leaf_path[-1]] = to_flax(name, np.asarray(state_dict[name], np.float32))
    filled = fill_matching(variables, source)
    if not filled:
        raise error
    return variables, filled


def initial_variables(model_config: ModelConfig, init_from: str, seed: int) -> tuple[dict, str]:
    """Variables to start training from (see the module docstring for the rule).

    Args:
      model_config: the architecture being trained.
      init_from: '' (scratch) or a path read by `stm_jax.weights.load_weights`.
      seed: random seed for parameters not covered by `init_from`.
    Returns:
      ({'params', 'batch_stats'} numpy nested dicts, a description for the log).
    """
    if not init_from:
        return _finish(fresh_variables(model_config, seed), set(), seed, "scratch")
    path = Path(init_from)
    try:
        weights = load_weights(path, model_config, seed)
    except (
        CheckpointFileError
    ) as error:  # official weights for another backbone / key / value width
        variables, filled = _partial_official(path, model_config, seed, error)
        origin = f"official STM weights {path} (matching layers only: config.model differs)"
        return _finish(variables, filled, seed, origin)
    if weights.kind == "checkpoint" and weights.model_config != model_config:
        variables = fresh_variables(model_config, seed)
        filled = fill_matching(variables, weights.variables)
        if not filled:
            raise ValueError(
                f"init_from={path} ({weights.model_config}) shares no layer with config.model "
                f"({model_config}). Make config.model match the checkpoint."
            )
        return _finish(variables, filled, seed, f"{weights.description} (other config.model)")
    variables = weights.variables
    if weights.kind == "torchvision":
        from stm_jax.convert.torchvision_resnet import torchvision_name

        filled = {
            p for p in param_paths(variables["params"]) if torchvision_name("params", p) is not None
        }
    else:  # our checkpoint of this architecture, or the official weights: every leaf
        filled = set(param_paths(variables["params"]))
    return _finish(variables, filled, seed, weights.description)
