"""Surviving a damaged checkpoint step, and refusing a resume into another model.

* `newest_intact` tries the steps of a checkpoint directory newest first; a step that cannot be read
  (a damaged or half-deleted TensorStore file) is reported in one warning line and the next older
  step is used. Inference and training resume both go through it.
* `check_same_model` compares the model config saved with a checkpoint to the run's config before
  anything is restored, and names the differing fields (orbax would only say "set strict=False").
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from stm_jax.cli_errors import UserError


class CheckpointError(UserError, ValueError):
    """No usable checkpoint: every step is unreadable, or it holds another model."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()).split(" See full TensorStore details")[0]
    return f"{type(error).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


@contextlib.contextmanager
def _quiet_unraisable():
    """Orbax leaves failed read coroutines behind; Python would print each as 'Exception ignored'."""
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    except BaseException:
        gc.collect()  # only a failed read leaves them; a full collection costs ~0.1 s per load
        raise
    finally:
        sys.unraisablehook = previous


def newest_intact(
    candidates: Iterable[tuple[Path, int]],
    read: Callable[[Path, int], object],
    on_damaged: Callable[[Path, int], None] | None = None,
):
    """Returns (directory, step, read(directory, step)) for the first candidate that reads.

    Args:
      candidates: (checkpoint directory, step), in order of preference (newest first).
      read: reads one step; any exception other than a UserError marks the step as damaged.
      on_damaged: called with each damaged step (e.g. to move it aside before training on).
    Raises:
      CheckpointError: when no candidate can be read.
    """
    failures = []
    for directory, step in candidates:
        try:
            with _quiet_unraisable():
                value = read(directory, step)
        except UserError:
            raise
        except Exception as error:  # orbax/TensorStore raise many types for damaged files
            failures.append(f"{directory / str(step)} ({_short(error)})")
            warn(
                f"checkpoint step {directory / str(step)} is unreadable ({_short(error)}); trying an older step."
            )
            if on_damaged is not None:
                on_damaged(directory, step)
            continue
        if failures:
            warn(f"using step {step} of {directory}, the newest intact one.")
        return directory, step, value
    if not failures:
        raise CheckpointError("no checkpoint step found.")
    raise CheckpointError(
        "every checkpoint step is unreadable: " + "; ".join(failures) + ". Restore the files or "
        "start from another checkpoint."
    )


def move_aside(directory: Path, step: int) -> Path:
    """Renames a damaged step folder to '<step>.damaged-<time>' so that training can save it again."""
    source = Path(directory) / str(step)
    target = source.with_name(f"{step}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(source, target)
    warn(f"moved the damaged step aside to {target}.")
    return target


def check_same_model(saved: dict, wanted: dict, where: str) -> None:
    """Raises CheckpointError naming the model fields that differ between checkpoint and config."""
    fields = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if not fields:
        return
    changes = ", ".join(
        f"{k}: checkpoint {saved.get(k)!r} vs config {wanted.get(k)!r}" for k in fields
    )
    raise CheckpointError(
        f"{where} holds another model ({changes}); a resume needs the same model. Set "
        "--config.model.<field> back, or train the changed model in a new --workdir, starting "
        f"from these weights with --config.init_from={where} where their shapes fit."
    )
