"""The package's import graph runs downward only: library below, jobs on top, no `configs` import.

Layers (a module may import its own package and any lower layer, never a higher or a sibling one):
    0 io
    1 model, memory, data, evaluation       (evaluation is numpy metrics/CSVs: io only)
    2 convert, core, checkpoint_io
    3 weights                               (every weight source, for training and inference)
    4 inference
    5 training, segmenter                   (segmenter: the public streaming API)
    6 jobs                                  (the CLI jobs and their config base)
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stm_jax"
LAYER = {
    "io": 0,
    "model": 1,
    "memory": 1,
    "data": 1,
    "evaluation": 1,
    "convert": 2,
    "core": 2,
    "checkpoint_io": 2,
    "weights": 3,
    "inference": 4,
    "training": 5,
    "segmenter": 5,
    "jobs": 6,
}


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "stm_jax":  # `from stm_jax import checkpoint_io`
                names += [f"stm_jax.{alias.name}" for alias in node.names]
    return names


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "__init__.py":
            continue  # the public API re-exports lazily from every layer
        here = path.relative_to(package).with_suffix("").parts[0]
        assert here in LAYER, f"{path}: add its package to LAYER in tests/test_layering.py"
        for name in imported_modules(path):
            if name == "configs" or name.startswith("configs."):
                found.append(f"{path}: imports {name} (configs/ is not part of the package)")
            if not name.startswith("stm_jax.") or name.count(".") < 1:
                continue
            there = name.split(".")[1]
            if there != here and LAYER.get(there, -1) >= LAYER[here]:
                found.append(
                    f"{path.relative_to(package)}: {here} (layer {LAYER[here]}) "
                    f"imports {name} (layer {LAYER.get(there)})"
                )
    return found


def test_imports_only_point_downward():
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path):
    """The scanner sees both import forms (a check that cannot fail would prove nothing)."""
    module = tmp_path / "stm_jax" / "evaluation" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("from stm_jax.inference.step import FrameStepper\nimport configs.common\n")
    found = violations(tmp_path / "stm_jax")
    assert any("evaluation (layer 1) imports stm_jax.inference.step" in f for f in found)
    assert any("configs.common" in f for f in found)
