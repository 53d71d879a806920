"""Orbax checkpoints of training runs, self-describing, and loading them for inference.

Layout of a training workdir:
    <workdir>/checkpoints/<step>/   one orbax manager: the latest N steps plus the step with the best
                                    in-training J&F (train state, frozen BN stats, data iterator, meta)
    <workdir>/best/<step>/          older runs only: their best step, still read as a candidate
Items of a step (orbax `args.Composite`):
    state        {'step', 'params', 'opt_state', 'rng'}     (a release export keeps only 'params')
    batch_stats  frozen BN statistics
    data         the grain iterator state of every process  (training checkpoints only)
    meta         JSON: {'model': ModelConfig fields, 'step', 'score', 'config'}
    metrics      JSON {'score': J&F}, written by orbax for steps saved with an evaluation score;
                 orbax's BestN policy keeps the best of them (unscored steps are never "best")
Orbax writes a step into a temporary directory and renames it when complete, so a process killed
mid-save never leaves a step that `latest_step()` would return. A step damaged later (disk errors,
a deleted file) is skipped with a warning for the newest intact one, for inference and resume alike.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from stm_jax.checkpoint_fallback import check_same_model, move_aside, newest_intact
from stm_jax.cli_errors import MissingFileError
from stm_jax.model.config import ModelConfig


class _DropReadOnlyNotes(logging.Filter):
    """Orbax warns (through absl's logger) on every read-only CheckpointManager, which is how
    inference opens checkpoints: expected, so not printed, for the CLI and the Python API alike."""

    NOISE = ("read_only=True", "Given directory is read only")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in self.NOISE)


logging.getLogger("absl").addFilter(_DropReadOnlyNotes())

CHECKPOINTS = "checkpoints"
BEST = "best"  # the separate best-step manager of older runs; read, no longer written
SCORE = "score"


def _metric(metrics) -> float:
    return float(metrics[SCORE])


def make_manager(
    directory, keep: int = 3, async_save: bool = True, keep_best: bool = False
) -> ocp.CheckpointManager:
    """A CheckpointManager keeping the last `keep` steps (all if `keep` <= 0).

    With `keep_best`, it also keeps the step with the highest metrics['score'] (see `save_step`):
    orbax's AnyPreservationPolicy([LatestN(keep), BestN(n=1)]); steps saved without a score only
    count for LatestN. Incomplete temp dirs are cleaned up.
    """
    policy = {}
    if keep_best and keep > 0:
        cp = ocp.checkpoint_managers
        policy["preservation_policy"] = cp.AnyPreservationPolicy(
            [
                cp.LatestN(n=keep),
                cp.BestN(get_metric_fn=_metric, n=1, keep_checkpoints_without_metrics=False),
            ]
        )
    else:
        policy["max_to_keep"] = keep if keep > 0 else None
    options = ocp.CheckpointManagerOptions(
        best_fn=_metric if keep_best else None,  # orbax writes `metrics` only when best_fn is set
        best_mode="max",
        keep_checkpoints_without_metrics=True,
        enable_async_checkpointing=async_save,
        create=True,
        cleanup_tmp_directories=True,
        **policy,
    )
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def save_step(
    manager, step: int, state, batch_stats, meta: dict, iterator=None, score: float | None = None
) -> None:
    """Saves one step (asynchronously if the manager is async). Every process must call it.

    `score` (the in-training J&F, if this step was evaluated) goes to orbax's metrics, which a
    `make_manager(keep_best=True)` manager ranks the steps by.
    """
    import grain

    items = {
        "state": ocp.args.StandardSave(state),
        "batch_stats": ocp.args.StandardSave(batch_stats),
        "meta": ocp.args.JsonSave(meta),
    }
    if iterator is not None:
        items["data"] = grain.checkpoint.CheckpointSave(iterator)
    metrics = None if score is None else {SCORE: float(score)}
    manager.save(int(step), args=ocp.args.Composite(**items), metrics=metrics, force=True)


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


def step_score(directory, step: int) -> float | None:
    """The in-training J&F a step was saved with: orbax's metrics, else our meta 'score'; or None."""
    folder = Path(directory) / str(step)
    # The JSON items as orbax writes them: the manager's metrics, and our args.JsonSave meta.
    for item, handler in (
        ("metrics", ocp.JsonCheckpointHandler(filename="metrics")),
        ("meta", ocp.JsonCheckpointHandler()),
    ):
        try:
            value = handler.restore(folder / item)
        except (OSError, ValueError):  # absent (unscored or older step) or unreadable
            continue
        if isinstance(value, dict) and isinstance(value.get(SCORE), (int, float)):
            return float(value[SCORE])
    return None


def candidate_steps(path, which: str = "best") -> list[tuple[Path, int]]:
    """Every (directory, step) `find_checkpoint` could pick, in order of preference.

    'best': the scored steps (of checkpoints/, and best/ of older runs), highest score first, then
    the others newest first. 'latest': newest first. A damaged step is then skipped for the next
    one (see `checkpoint_fallback.newest_intact`).
    """
    path = Path(path)
    if _is_step_dir(path):
        return [(path.parent, int(path.name))]
    directories = [path / BEST, path / CHECKPOINTS] if which == "best" else [path / CHECKPOINTS]
    directories.append(path)
    found = [(d, step) for d in directories for step in reversed(_steps(d))]
    if not found:
        raise MissingFileError(
            f"{path}: no complete checkpoint found (expected a training workdir with {CHECKPOINTS}/"
            f" or {BEST}/, a checkpoint directory of step folders, a step folder, or the workdir "
            "of configs/convert.py)."
        )
    if which != "best":
        return found
    scores = {c: step_score(*c) for c in found}
    scored = sorted((c for c in found if scores[c] is not None), key=lambda c: (-scores[c], -c[1]))
    return scored + [c for c in found if scores[c] is None]


def best_score(workdir) -> float | None:
    """The highest in-training J&F of a workdir's steps (checkpoints/, or best/ of older runs)."""
    workdir = Path(workdir)
    scores = [
        step_score(d, step) for d in (workdir / BEST, workdir / CHECKPOINTS) for step in _steps(d)
    ]
    scores = [s for s in scores if s is not None]
    return max(scores) if scores else None


def find_checkpoint(path, which: str = "best") -> tuple[Path, int]:
    """Resolves a path to (checkpoint manager directory, step).

    Args:
      path: a training workdir (holding checkpoints/, and best/ if an older run), a checkpoint
        directory (holding step folders), or one step folder.
      which: 'best' (the step with the highest in-training J&F if any step has one, else the
        latest) or 'latest'.
    Returns:
      (directory holding the step folders, step).
    """
    return candidate_steps(path, which)[0]


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
    config, variables, _ = load_trained_model_and_meta(path, which)
    return config, variables


def load_trained_model_and_meta(path, which: str = "best") -> tuple[ModelConfig, dict, dict]:
    """`load_trained_model` plus the step's JSON metadata (see `read_meta`), read in one pass."""
    read = lambda d, s: _read_items(d, s, ("state", "batch_stats", "meta"))  # noqa: E731
    _, _, items = newest_intact(candidate_steps(path, which), read)
    meta = dict(items["meta"])
    check_trained_entries(path, meta)
    config = ModelConfig.from_config(meta["model"])
    variables = {
        "params": _to_numpy(items["state"]["params"]),
        "batch_stats": _to_numpy(items["batch_stats"]),
    }
    return config, variables, meta


def check_trained_entries(path, meta: dict) -> None:
    """Every registry entry a checkpoint was trained with (family, backbones, memory read and
    policy) must be registered in this process: a plugin it was trained with must be loaded."""
    from stm_jax.memory.policy import POLICIES
    from stm_jax.memory.similarity import SIMILARITIES
    from stm_jax.model.backbone import BACKBONES
    from stm_jax.model.family import FAMILIES
    from stm_jax.plugins import check_checkpoint_entries

    saved = dict(meta.get("config") or {})
    saved["model"] = {**(saved.get("model") or {}), **(meta.get("model") or {})}
    saved["plugins"] = meta.get("plugins") or saved.get("plugins") or ""
    fields = {
        ("model", "family"): FAMILIES,
        ("model", "backbone"): BACKBONES,
        ("model", "value_backbone"): BACKBONES,
        ("memory", "similarity"): SIMILARITIES,
        ("memory", "eviction"): POLICIES,
    }
    check_checkpoint_entries(path, saved, fields)


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
