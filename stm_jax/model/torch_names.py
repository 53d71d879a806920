"""PyTorch state-dict names of our parameters, for every converter (official STM, torchvision, STCN).

A parameter path ('Encoder_M', 'backbone', 'res2_0', 'downsample_0', 'kernel') in collection 'params'
becomes 'Encoder_M.res2.0.downsample.0.weight': module names 'name_<i>' are PyTorch's 'name.<i>'
(Sequential / ModuleList children), our grouping module 'backbone' is dropped (PyTorch holds the
stages directly), and leaves are renamed (kernel/scale -> weight, mean/var -> running_mean/var).
"""

from __future__ import annotations

LEAF_NAMES = {
    ("params", "kernel"): "weight",
    ("params", "bias"): "bias",
    ("params", "scale"): "weight",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}


def torch_name(collection: str, path: tuple[str, ...], drop=("backbone",)) -> str:
    """PyTorch name of the leaf at `path` of `collection` (see the module docstring)."""
    parts = []
    for part in path[:-1]:
        if part in drop:
            continue
        stem, _, index = part.rpartition("_")
        parts.extend([stem, index] if index.isdigit() and stem else [part])
    parts.append(LEAF_NAMES[(collection, path[-1])])
    return ".".join(parts)
