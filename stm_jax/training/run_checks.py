"""Checks of a training config before the first step, and of a resume against the run it continues.

* `check_run_config(config, max_objects, device_count)`: batch size, step count, crop size, object
  slots and the batch split over devices, each a one-line `ConfigError` naming the field and the fix.
* `changed_settings(old, new)`: the fields of a resumed run whose new value would change its results
  (fields that only change logging, saving or evaluation are left out, see `HARMLESS`; so is
  `train.num_steps` where the steps already trained would be the same, see
  `run_length_is_harmless`).
* `check_resume(config, workdir, done)`: on a resume from the workdir's own checkpoints, refuses
  changed settings unless `resume_changed=True`; `keep_previous_config` then keeps the old
  `config.json` as `config.previous-<n>.json`, so the settings of every part of the run stay on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stm_jax.cli_errors import ConfigError
from stm_jax.training.optimizer import make_schedule

STRIDE = 16  # the encoders' output stride: crops must divide into whole feature cells
CONFIG_FILE = "config.json"

# Fields a resumed run may change without changing its weights or losses: how often it logs or
# saves (a resume from any saved step is exact), how it shows progress, how often and on what it
# evaluates (evaluation only reads the weights; it picks the best step, not the training), where its
# processes meet, and remat (the same values, recomputed in the backward pass). The data-loading
# fields (num_workers, ...) are not here: the data position saved in a checkpoint belongs to the
# loader it was saved with.
HARMLESS = frozenset(
    {
        "job",
        "resume_changed",
        "train.log_every",
        "train.progress_bar",
        "train.log_batches",
        "train.checkpoint_every",
        "train.keep_checkpoints",
        "train.async_checkpoint",
        "train.dry_run",
        "train.eval_every",
        "train.remat",
    }
)
HARMLESS_SECTIONS = ("eval.", "distributed.")


def _nearest_multiples(value: int) -> str:
    below = (value // STRIDE) * STRIDE
    above = below + STRIDE
    return f"{below} or {above}" if below >= STRIDE else f"{above}"


def check_run_config(config, max_objects: int, device_count: int) -> None:
    """Raises ConfigError for a training config that cannot run (naming the field and the fix).

    Args:
      config: the training config.
      max_objects: the resolved `model.max_objects`.
      device_count: the devices the global batch is split over.
    """
    data, t = config.data, config.train
    batch, steps, crop = int(data.batch_size), int(t.num_steps), int(data.crop_size)
    if batch <= 0:
        raise ConfigError(
            f"data.batch_size={batch} must be >= 1 (clips per update); set "
            "--config.data.batch_size=4 or another positive number."
        )
    if steps <= 0:
        raise ConfigError(
            f"train.num_steps={steps} must be >= 1 (optimizer updates to run); set "
            "--config.train.num_steps to the length of the run."
        )
    if crop <= 0 or crop % STRIDE:
        raise ConfigError(
            f"data.crop_size={crop} must be a positive multiple of {STRIDE} (the encoders' "
            f"stride); use --config.data.crop_size={_nearest_multiples(max(crop, 0))}."
        )
    if int(data.max_train_objects) > max_objects:
        raise ConfigError(
            f"data.max_train_objects={data.max_train_objects} exceeds model.max_objects="
            f"{max_objects}; lower the first or raise the second."
        )
    split = device_count * max(int(t.accumulate), 1)
    if batch % split:
        raise ConfigError(
            f"data.batch_size={batch} must be a multiple of devices ({device_count}) x "
            f"train.accumulate ({t.accumulate}) = {split}; set --config.data.batch_size to a "
            "multiple of it."
        )


def flat(tree: dict, prefix: str = "") -> dict:
    """{'a.b': value} of a nested dict (lists and scalars are leaves)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out


def run_length_is_harmless(config, old_num_steps: int, done: int) -> bool:
    """Whether `config` with `train.num_steps=old_num_steps` gives the `done` steps already trained
    the same learning rates and max skips: then the resumed run is exactly the new config's run (a
    constant lr, or a longer run still in its warm-up). A poly or step lr schedule and an stcn max-skip
    curriculum are laid out over the whole run, so a new length changes them otherwise."""
    new_steps = int(config.train.num_steps)
    if new_steps == old_num_steps:
        return True
    before = config.train.copy_and_resolve_references()
    before.num_steps = old_num_steps
    steps = np.arange(done)
    if not np.array_equal(
        np.asarray(make_schedule(before)(steps)), np.asarray(make_schedule(config.train)(steps))
    ):
        return False
    skip = config.data.max_skip
    if skip.kind == "stcn" and int(skip.get("total_clips", 0)) <= 0:  # total = num_steps x batch
        fractions = np.asarray(skip.fractions)
        stage = lambda total: np.searchsorted(fractions, steps / total, side="right")  # noqa: E731
        return np.array_equal(stage(old_num_steps), stage(new_steps))
    return True


def changed_settings(
    old: dict, new: dict, defaults: dict | None = None, ignore: tuple[str, ...] = ()
) -> list[str]:
    """'field: old -> new' for every field whose change would change the run's results.

    Args:
      old, new: the saved and the new config as nested dicts (JSON values).
      defaults: the base config's values, for fields the saved config does not have yet (a newer
        version added them): such a field counts as changed only if the new value is not its default.
      ignore: more fields not to compare (e.g. train.num_steps, see `run_length_is_harmless`).
    """
    old, new, defaults = flat(old), flat(new), flat(defaults or {})
    changes = []
    for name in sorted(new):  # a field only the old config has is no longer read: not compared
        if name in HARMLESS or name in ignore or name.startswith(HARMLESS_SECTIONS):
            continue
        if name in old or name in defaults:
            before = old[name] if name in old else defaults[name]
            if before != new[name]:
                changes.append(f"{name}: {before!r} -> {new[name]!r}")
        else:
            changes.append(f"{name}: (absent) -> {new[name]!r}")
    return changes


def as_json(config) -> dict:
    """The config as the JSON values `config.json` holds (tuples as lists, placeholders as null)."""
    return json.loads(config.to_json_best_effort(sort_keys=True))


def check_resume(config, workdir: Path, done: int, defaults: dict | None = None) -> list[str]:
    """On a resume in `workdir`: refuses changed settings unless `resume_changed`.

    Args:
      config: the new config.
      workdir: the run folder whose own checkpoint is being resumed.
      done: the step it resumes at (the steps already trained).
      defaults: see `changed_settings`.
    Returns:
      The changed settings ('field: old -> new'; empty when none changed or there is no saved
      config); call `keep_previous_config` before the new config is written.
    Raises:
      ConfigError: settings that change results differ and `resume_changed` is not set.
    """
    path = Path(workdir) / CONFIG_FILE
    if not path.is_file():
        return []
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{path} cannot be read ({error}); it holds the settings of the run being resumed: "
            "restore it, or pass another --workdir for a new run."
        ) from error
    old_steps = old.get("train", {}).get("num_steps")
    harmless_length = isinstance(old_steps, int) and run_length_is_harmless(config, old_steps, done)
    ignore = ("train.num_steps",) if harmless_length else ()
    changes = changed_settings(old, as_json(config), defaults, ignore)
    if changes and not config.get("resume_changed", False):
        shown = "; ".join(changes[:8]) + (
            f"; and {len(changes) - 8} more" if len(changes) > 8 else ""
        )
        raise ConfigError(
            f"{workdir} holds a run with other settings ({shown}); resuming it would mix them. "
            "Pass --workdir DIR for a new run, or --config.resume_changed=True to continue this "
            "run with the new settings."
        )
    return changes


def keep_previous_config(workdir: Path) -> Path:
    """Renames WORKDIR/config.json to the first free config.previous-<n>.json; returns that path."""
    path = Path(workdir) / CONFIG_FILE
    n = 1
    while (kept := path.with_name(f"config.previous-{n}.json")).exists():
        n += 1
    path.rename(kept)
    return kept
