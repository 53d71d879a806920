"""Initial model variables for a run that does not resume: `config.init_from` or scratch.

`init_from` may be a released checkpoint (the official `STM_weights.pth`, an STCN `.pth`: any
format of `stm_jax.convert.formats`), torchvision ResNet `.pth` files (comma-separated: each fills the
encoders whose backbone it fits, e.g. STCN's ResNet-50 key encoder and ResNet-18 value encoder), or
one of our checkpoints (a workdir / checkpoint dir).

The rule, on every path: a leaf the source fills keeps the source's value; every other leaf is
exactly what `stm_jax.model.family.init_variables(seed)` draws, i.e. the modules' own initialisers
(torchvision's init for backbone layers, PyTorch's default for the layers the reference code adds;
`stm_jax.model.layers.CONV_INITS`). Scratch fills nothing; a torchvision file fills backbones; a
released checkpoint fills everything, or, when `config.model` differs from it (another backbone, key
or value width), every leaf whose name and shape match; our checkpoint with another `config.model`
(new heads) likewise fills the leaves whose path and shape match.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from stm_jax.convert.torch_files import CheckpointFileError
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables
from stm_jax.weights import load_weights


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


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for part in path[:-1]:
        tree = tree[part]
    tree[path[-1]] = value


def fill_matching(target: dict, source: dict) -> set[tuple[str, ...]]:
    """Copies every leaf of `source` whose path and shape exist in `target`; returns the param
    paths filled."""
    filled = set()
    for collection in ("params", "batch_stats"):
        for path in param_paths(target[collection]):
            value = _get(source.get(collection, {}), path)
            if value is None or np.shape(value) != np.shape(_get(target[collection], path)):
                continue
            _set(target[collection], path, np.array(value, np.float32))
            if collection == "params":
                filled.add(path)
    return filled


def fresh_variables(model_config: ModelConfig, seed: int) -> dict:
    """`init_variables(key(seed))` as mutable nested numpy dicts."""
    drawn = init_variables(jax.random.key(seed), model_config)
    return {c: jax.tree.map(np.array, dict(t)) for c, t in drawn.items()}


def _note(variables: dict, filled: set, origin: str) -> str:
    total = len(param_paths(variables["params"]))
    return f"{origin}; {len(filled)}/{total} param leaves from the source, the rest as initialised"


def _partial_release(path: Path, model_config: ModelConfig, seed: int, error: Exception):
    """A released checkpoint of another width: the leaves whose names and shapes match."""
    from stm_jax.convert.common import leaves, to_flax
    from stm_jax.convert.formats import detect, strip_prefix
    from stm_jax.convert.torch_files import load_state_dict

    state_dict = strip_prefix(load_state_dict(path))
    entry = detect(state_dict)
    variables = fresh_variables(model_config, seed)
    source: dict = {"params": {}, "batch_stats": {}}
    for collection, leaf_path, _ in leaves(variables):
        name = entry.torch_name(collection, leaf_path) if entry else None
        if name in state_dict:
            tree = source[collection]
            for part in leaf_path[:-1]:
                tree = tree.setdefault(part, {})
            tree[leaf_path[-1]] = to_flax(name, np.asarray(state_dict[name], np.float32))
    filled = fill_matching(variables, source)
    if not filled:
        raise error
    return variables, filled


def _torchvision_files(paths: list[Path], model_config: ModelConfig, seed: int):
    from stm_jax.convert.torch_files import load_state_dict
    from stm_jax.convert.torchvision_resnet import convert_torchvision_resnet

    variables, filled = fresh_variables(model_config, seed), set()
    for path in paths:
        variables, more = convert_torchvision_resnet(
            load_state_dict(path), model_config, source=str(path), variables=variables
        )
        filled |= {p for c, p in more if c == "params"}
    return variables, filled


def initial_variables(model_config: ModelConfig, init_from: str, seed: int) -> tuple[dict, str]:
    """Variables to start training from (see the module docstring for the rule).

    Args:
      model_config: the architecture being trained.
      init_from: '' (scratch), a path read by `stm_jax.weights.load_weights`, or comma-separated
        torchvision ResNet files.
      seed: random seed of the modules' own initialisers.
    Returns:
      ({'params', 'batch_stats'} numpy nested dicts, a description for the log).
    """
    if not init_from:
        variables = fresh_variables(model_config, seed)
        return variables, _note(variables, set(), "scratch")
    paths = [Path(p.strip()) for p in str(init_from).split(",") if p.strip()]
    if len(paths) > 1:
        variables, filled = _torchvision_files(paths, model_config, seed)
        return variables, _note(variables, filled, f"torchvision ResNets {init_from}")
    path = paths[0]
    try:
        weights = load_weights(path, model_config, seed)
    except CheckpointFileError as error:  # a release of another backbone / key / value width
        if not path.is_file():
            raise
        variables, filled = _partial_release(path, model_config, seed, error)
        origin = f"released weights {path} (matching layers only: config.model differs)"
        return variables, _note(variables, filled, origin)
    if weights.kind == "torchvision":
        filled = {p for c, p in weights.filled if c == "params"}
        return weights.variables, _note(weights.variables, filled, weights.description)
    if weights.kind == "checkpoint" and weights.model_config != model_config:
        variables = fresh_variables(model_config, seed)
        filled = fill_matching(variables, weights.variables)
        if not filled:
            raise ValueError(
                f"init_from={path} ({weights.model_config}) shares no layer with config.model "
                f"({model_config}). Make config.model match the checkpoint."
            )
        return variables, _note(variables, filled, f"{weights.description} (other config.model)")
    variables = {c: jax.tree.map(np.array, dict(t)) for c, t in weights.variables.items()}
    filled = set(param_paths(variables["params"]))
    return variables, _note(variables, filled, weights.description)
