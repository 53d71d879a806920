"""What every PyTorch -> stm_jax converter shares: walking our variables, OIHW -> HWIO, and the
strict fill that lists every missing, unexpected and mis-shaped key in one error."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import numpy as np

from stm_jax.convert.torch_files import CheckpointFileError
from stm_jax.model.torch_names import torch_name

__all__ = ["StrictFill", "leaves", "set_leaf", "strict_fill", "to_flax", "torch_name", "unfreeze"]


def leaves(variables):
    """Yields (collection, path, leaf) for every leaf of {'params', 'batch_stats'}."""
    for collection, tree in variables.items():
        for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            yield collection, tuple(k.key for k in key_path), leaf


def to_flax(name: str, array: np.ndarray) -> np.ndarray:
    """A PyTorch tensor in our layout: conv weights OIHW -> HWIO, linear weights [out, in] ->
    [in, out], everything else as is."""
    if name.endswith(".weight") and array.ndim == 4:
        return np.transpose(array, (2, 3, 1, 0))
    if name.endswith(".weight") and array.ndim == 2:
        return np.transpose(array)
    return array


def to_torch(array: np.ndarray) -> np.ndarray:
    """Inverse of `to_flax` for a leaf of ours (HWIO -> OIHW, [in, out] -> [out, in])."""
    array = np.asarray(array)
    if array.ndim == 4:
        array = np.transpose(array, (3, 2, 0, 1))
    elif array.ndim == 2:
        array = np.transpose(array)
    return np.ascontiguousarray(array)


def set_leaf(tree: dict, path: tuple[str, ...], value):
    for part in path[:-1]:
        tree = tree[part]
    tree[path[-1]] = value


def unfreeze(tree):
    """Nested mappings -> nested plain dicts (numpy leaves; abstract leaves of a `jax.eval_shape`
    template stay abstract until filled)."""
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return {k: unfreeze(v) for k, v in tree.items()}
    if isinstance(tree, jax.ShapeDtypeStruct):
        return tree
    return np.asarray(tree) if hasattr(tree, "shape") else tree


class StrictFill:
    """Fills a template's leaves from a state dict and collects what does not fit."""

    def __init__(self, template: dict, state_dict: Mapping):
        self.state_dict = state_dict
        self.variables = {c: unfreeze(t) for c, t in template.items()}
        self.consumed: set[str] = set()
        self.missing: list[str] = []
        self.mismatched: list[str] = []

    def fill(self, collection, path, name: str, transform: Callable | None = None) -> None:
        """Sets leaf `path` of `collection` from state-dict key `name` (transformed to our layout)."""
        if name not in self.state_dict:
            self.missing.append(name)
            return
        self.consumed.add(name)
        array = to_flax(name, np.asarray(self.state_dict[name], np.float32))
        if transform is not None:
            array = transform(array)
        leaf = _get(self.variables[collection], path)
        expected = tuple(getattr(leaf, "shape", np.shape(leaf)))
        if array.shape != expected:
            self.mismatched.append(f"{name}: checkpoint {array.shape} vs model {expected}")
            return
        set_leaf(self.variables[collection], path, array)

    def unexpected(self, ignore: Callable[[str], bool] = lambda key: False) -> list[str]:
        return sorted(
            key
            for key in self.state_dict
            if key not in self.consumed
            and not key.endswith("num_batches_tracked")
            and not ignore(key)
        )

    def check(self, source: str, what: str, fix: str, ignore=lambda key: False) -> dict:
        """The filled variables, or a CheckpointFileError listing every problem."""
        unexpected = self.unexpected(ignore)
        if self.missing or unexpected or self.mismatched:
            raise CheckpointFileError(
                f"{source} does not match {what}.\n"
                f"  missing ({len(self.missing)}): {self.missing[:20]}\n"
                f"  unexpected ({len(unexpected)}): {unexpected[:20]}\n"
                f"  wrong shape ({len(self.mismatched)}): {self.mismatched[:20]}\n{fix}"
            )
        return self.variables


def _get(tree, path):
    for part in path:
        tree = tree[part]
    return tree


def strict_fill(template: dict, state_dict: Mapping, name_of: Callable) -> StrictFill:
    """A `StrictFill` of every leaf of `template` whose `name_of(collection, path)` is not None."""
    filler = StrictFill(template, state_dict)
    for collection, path, _ in leaves(template):
        name = name_of(collection, path)
        if name is not None:
            filler.fill(collection, path, name)
    return filler
