"""The package's import graph runs downward only: library below, jobs on top, no `configs` import.

Layers (a module may import its own package and any lower layer, never a higher or a sibling one):
    0 cli_errors                            (the user-error types every layer raises)
    1 io, assets, registry, plugins,        (the shipped checkpoint's path; registries by name;
      workdir_lock                          the user's plugin modules; one writer per workdir)
    2 model, memory, data, evaluation,      (evaluation is numpy metrics/CSVs: io only)
      checkpoint_fallback
    3 convert, core, checkpoint_io, config_checks
    4 weights                               (every weight source, for training and inference)
    5 inference
    6 training, segmenter                  (segmenter: the streaming Python API)
    7 jobs                                  (the CLI jobs and their config base)
    8 cli                                   (flag parsing and error reporting)
    9 entry                                 (the stm-jax console script, which main.py runs)
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stm_jax"
LAYER = {
    "cli_errors": 0,
    "io": 1,
    "assets": 1,
    "registry": 1,
    "plugins": 1,
    "workdir_lock": 1,
    "model": 2,
    "memory": 2,
    "data": 2,
    "evaluation": 2,
    "checkpoint_fallback": 2,
    "convert": 3,
    "core": 3,
    "checkpoint_io": 3,
    "config_checks": 3,
    "weights": 4,
    "inference": 5,
    "training": 6,
    "segmenter": 6,
    "jobs": 7,
    "cli": 8,
    "entry": 9,
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
    assert any("evaluation (layer 2) imports stm_jax.inference.step" in f for f in found)
    assert any("configs.common" in f for f in found)
