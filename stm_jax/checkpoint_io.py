"""Orbax checkpoints of training runs, self-describing, and loading them for inference.

Layout of a training workdir:
    <workdir>/checkpoints/<step>/   latest N steps (train state, frozen BN stats, data iterator, meta)
    <workdir>/best/<step>/          the step with the best in-training J&F (same items)
Items of a step (orbax `args.Composite`):
    state        {'step', 'params', 'opt_state', 'rng'}     (a release export keeps only 'params')
    batch_stats  frozen BN statistics
    data         the grain iterator state of every process  (training checkpoints only)
    meta         JSON: {'model': ModelConfig fields, 'step', 'score', 'config'}
Orbax writes a step into a temporary directory and renames it when complete, so a process killed
mid-save never leaves a step that `latest_step()` would return. A step damaged later (disk errors,
a deleted file) is skipped with a warning for the newest intact one, for inference and resume alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from stm_jax.checkpoint_fallback import check_same_model, move_aside, newest_intact
from stm_jax.cli_errors import MissingFileError
from stm_jax.model.config import ModelConfig

CHECKPOINTS = "checkpoints"
BEST = "best"


def make_manager(directory, keep: int = 3, async_save: bool = True) -> ocp.CheckpointManager:
    """A CheckpointManager keeping the last `keep` steps; incomplete temp dirs are cleaned up."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep if keep > 0 else None,
        enable_async_checkpointing=async_save,
        create=True,
        cleanup_tmp_directories=True,
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def save_step(manager, step: int, state, batch_stats, meta: dict, iterator=None) -> None:
    """Saves one step (asynchronously if the manager is async). Every process must call it."""
    import grain

    items = {
        "state": ocp.args.StandardSave(state),
        "batch_stats": ocp.args.StandardSave(batch_stats),
        "meta": ocp.args.JsonSave(meta),
    }
    if iterator is not None:
        items["data"] = grain.checkpoint.CheckpointSave(iterator)
    manager.save(int(step), args=ocp.args.Composite(**items), force=True)


def restore_step(manager, step: int, abstract_state, abstract_batch_stats, iterator=None):
    """Restores the full training state of `step` onto the abstract targets' shardings.

    Args:
      manager: the manager of the checkpoint directory.
      step: the step to restore.
      abstract_state, abstract_batch_stats: jax.ShapeDtypeStruct trees with shardings (optax states
        keep their types only when restored against a target).
      iterator: the data iterator to position, or None.
    Returns:
      (state, batch_stats, meta).
    """
    import grain

    items = {
        "state": ocp.args.StandardRestore(abstract_state),
        "batch_stats": ocp.args.StandardRestore(abstract_batch_stats),
        "meta": ocp.args.JsonRestore(),
    }
    if iterator is not None:
        items["data"] = grain.checkpoint.CheckpointRestore(iterator)
    restored = manager.restore(int(step), args=ocp.args.Composite(**items))
    return restored["state"], restored["batch_stats"], restored["meta"]


def restore_newest_intact(
    manager, abstract_state, abstract_batch_stats, model_config, where: str, iterator=None, own=True
):
    """Restores the newest readable step of `manager` after checking its model config.

    Args:
      manager: the manager of the checkpoint directory.
      abstract_state, abstract_batch_stats, iterator: see `restore_step`.
      model_config: the run's ModelConfig; a checkpoint of another model raises CheckpointError
        naming the fields (before orbax would fail on shapes).
      where: the directory, for messages.
      own: the run's own checkpoints: a damaged step is moved aside so that it can be saved again.
    Returns:
      (state, batch_stats, meta, step).
    """
    directory = Path(manager.directory)
    checked = []

    def read(_, step):
        meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        if not checked:  # the newest step that reads decides; older steps hold the same model
            check_same_model(
                ModelConfig.from_config(meta["model"]).to_dict(), model_config.to_dict(), where
            )
            checked.append(step)
        return restore_step(manager, step, abstract_state, abstract_batch_stats, iterator)

    damaged = []
    steps = [(directory, step) for step in sorted(manager.all_steps(), reverse=True)]
    _, step, (state, batch_stats, meta) = newest_intact(steps, read, lambda d, s: damaged.append(s))
    if own and damaged:
        for bad in damaged:
            move_aside(directory, bad)
        manager.reload()
    return state, batch_stats, meta, step


def _is_step_dir(path: Path) -> bool:
    return path.name.isdigit() and (path / "meta").is_dir()


def _steps(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if _is_step_dir(p))


def candidate_steps(path, which: str = "best") -> list[tuple[Path, int]]:
    """Every (directory, step) `find_checkpoint` could pick, in order of preference (newest first).

    A damaged step is then skipped for the next one (see `checkpoint_fallback.newest_intact`).
    """
    path = Path(path)
    if _is_step_dir(path):
        return [(path.parent, int(path.name))]
    candidates = [path / BEST, path / CHECKPOINTS] if which == "best" else [path / CHECKPOINTS]
    found = []
    for directory in [*candidates, path]:
        found.extend((directory, step) for step in reversed(_steps(directory)))
    if not found:
        find_checkpoint(path, which)  # raises the not-found error
    return found


def find_checkpoint(path, which: str = "best") -> tuple[Path, int]:
    """Resolves a path to (checkpoint manager directory, step).

    Args:
      path: a training workdir (holding best/ and/or checkpoints/), a checkpoint directory (holding
        step folders), or one step folder.
      which: 'best' (the best-J&F step if the run kept one, else the latest) or 'latest'.
    Returns:
      (directory holding the step folders, step).
    """
    path = Path(path)
    if _is_step_dir(path):
        return path.parent, int(path.name)
    candidates = [path / BEST, path / CHECKPOINTS] if which == "best" else [path / CHECKPOINTS]
    for directory in [*candidates, path]:
        steps = _steps(directory)
        if steps:
            return directory, steps[-1]
    raise MissingFileError(
        f"{path}: no complete checkpoint found (expected a training workdir with {CHECKPOINTS}/ or "
        f"{BEST}/, a checkpoint directory of step folders, a step folder, or the workdir of "
        "configs/convert.py)."
    )


def _read_items(directory: Path, step: int, names: tuple[str, ...]) -> dict:
    with ocp.CheckpointManager(
        directory.absolute(), options=ocp.CheckpointManagerOptions(read_only=True)
    ) as manager:
        args = {
            n: ocp.args.JsonRestore() if n == "meta" else ocp.args.StandardRestore() for n in names
        }
        return manager.restore(step, args=ocp.args.Composite(**args))


def _to_numpy(tree):
    return jax.tree.map(lambda x: np.asarray(x), tree)


def load_trained_model(path, which: str = "best") -> tuple[ModelConfig, dict]:
    """Loads a trained model for inference from its self-describing checkpoint.

    Args:
      path: a training workdir, a checkpoint directory, a step folder, or a release export.
      which: 'best' or 'latest' (see `find_checkpoint`).
    Returns:
      (ModelConfig saved with the checkpoint, {'params', 'batch_stats'} as numpy nested dicts).
    """
    read = lambda d, s: _read_items(d, s, ("state", "batch_stats", "meta"))  # noqa: E731
    _, _, items = newest_intact(candidate_steps(path, which), read)
    config = ModelConfig.from_config(items["meta"]["model"])
    variables = {
        "params": _to_numpy(items["state"]["params"]),
        "batch_stats": _to_numpy(items["batch_stats"]),
    }
    return config, variables


def read_meta(path, which: str = "best") -> dict:
    """The JSON metadata (model config, step, score, training config) of a checkpoint."""
    read = lambda d, s: _read_items(d, s, ("meta",))["meta"]  # noqa: E731
    return dict(newest_intact(candidate_steps(path, which), read)[2])


def export_for_release(workdir, out_dir, which: str = "best") -> Path:
    """Writes a small inference-only copy (params, BN stats, meta; no optimizer or data state).

    Args:
      workdir: a training workdir or checkpoint path (see `find_checkpoint`).
      out_dir: destination; `load_trained_model(out_dir)` reads it.
      which: 'best' or 'latest'.
    Returns:
      The step folder written.
    """
    directory, step = find_checkpoint(workdir, which)
    items = _read_items(directory, step, ("state", "batch_stats", "meta"))
    meta = dict(items["meta"])
    meta.pop("config", None)  # keep the export small and free of local paths
    out_dir = Path(out_dir).absolute()
    with make_manager(out_dir, keep=1, async_save=False) as manager:
        manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave({"params": _to_numpy(items["state"]["params"])}),
                batch_stats=ocp.args.StandardSave(_to_numpy(items["batch_stats"])),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )
    (out_dir / "README.txt").write_text(
        "stm_jax checkpoint export (load with stm_jax.checkpoint_io.load_trained_model).\n"
        + json.dumps(meta, indent=1, default=str)
        + "\n"
    )
    return out_dir / str(step)
