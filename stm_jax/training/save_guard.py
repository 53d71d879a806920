"""A checkpoint save that fails ends the run in one line, never in a hang or a flood of tracebacks.

Orbax writes a step in background threads. When one of them fails (disk full, a folder it cannot
create or replace, permissions) it logs the traceback and, for some failures, the main thread's
`save` then waits forever for a signal the failed thread never sends. `SaveGuard`:

* captures those background errors from orbax's log records (and drops the tracebacks);
* drops the "Event loop is closed" errors that orbax's writer callbacks raise, as unraisable
  exceptions, once a failed save has closed their event loop (one traceback per pending write:
  hundreds of them on a full disk, before the line that says what happened);
* after each save call and at each step, also asks orbax (`check_for_errors`);
* on the first failure prints one line naming the checkpoint folder, the step and the steps still
  intact there, and ends the process with exit code 2 (`os._exit`: orbax's blocked threads cannot be
  stopped otherwise). metrics.jsonl and batches.jsonl are written line by line, so they are intact.

A watchdog thread does the ending when the main thread is stuck inside orbax.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

from stm_jax.cli_errors import DEBUG_HINT, EXIT_USER_ERROR

POLL_S = 0.1
GRACE_S = 2.0  # a failure orbax raises in the main thread itself gets this long to do so


class _BackgroundErrors(logging.Filter):
    """Keeps orbax's logged background exceptions; drops their tracebacks from the output."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "did not provide metrics" in str(record.msg):
            return False  # saves between evaluations have no score by design (best-J&F tracking)
        if record.exc_info and "orbax" in (record.pathname or "") and record.exc_info[1]:
            self.errors.append(record.exc_info[1])
            return False
        return True


def _intact_steps(directory: Path) -> list[int]:
    try:
        return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())
    except OSError:
        return []


def failure_message(directory: Path, step: int, error: BaseException) -> str:
    """'cannot save checkpoint step N in DIR: reason; intact: ...; fix and rerun' in one line."""
    reason = " ".join(str(error).split()) or type(error).__name__
    steps = _intact_steps(directory)
    intact = (
        f"steps {steps} there are intact and a rerun resumes from step {steps[-1]}"
        if steps
        else "no step was saved before, so a rerun starts from scratch"
    )
    return (
        f"cannot save checkpoint step {step} in {directory}: {reason} "
        f"({type(error).__name__}); {intact}. Free disk space or fix the folder (permissions, a "
        "file in the way), then rerun the same command."
    )


def _closed_loop_noise(unraisable) -> bool:
    error = unraisable.exc_value
    return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


class SaveGuard:
    """`with SaveGuard(checkpoint_dir) as guard:` wraps every save, wait and step (see above)."""

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        self.step: int | None = None
        self._filter = _BackgroundErrors()
        self._busy_since: float | None = None
        self._stop = threading.Event()

    def __enter__(self) -> SaveGuard:
        for name in ("absl", "orbax"):
            logging.getLogger(name).addFilter(self._filter)
        self._unraisable = sys.unraisablehook
        sys.unraisablehook = self._drop_closed_loop_noise
        self._watchdog = threading.Thread(target=self._watch, name="save-guard", daemon=True)
        self._watchdog.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for name in ("absl", "orbax"):
            logging.getLogger(name).removeFilter(self._filter)
        sys.unraisablehook = self._unraisable

    def _drop_closed_loop_noise(self, unraisable) -> None:
        if not _closed_loop_noise(unraisable):
            self._unraisable(unraisable)

    def _fail(self, error: BaseException) -> None:
        message = failure_message(self.directory, self.step if self.step is not None else -1, error)
        print(f"error: {message}\n{DEBUG_HINT}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(EXIT_USER_ERROR)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            busy = self._busy_since
            if self._filter.errors and busy is not None and time.time() - busy > GRACE_S:
                self._fail(self._filter.errors[0])

    def run(self, step: int, function, *args, **kwargs):
        """Calls an orbax save/wait `function` for `step`; any failure ends the run (see above)."""
        self.step = step
        self._busy_since = time.time()
        try:
            result = function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every save failure is reported the same way
            self._fail(error)
        finally:
            self._busy_since = None
        self.check()
        return result

    def check(self, manager=None) -> None:
        """Ends the run if a background save has failed (orbax's log or `check_for_errors`)."""
        if manager is not None:
            try:
                manager.check_for_errors()
            except Exception as error:  # noqa: BLE001
                self._fail(error)
        if self._filter.errors:
            self._fail(self._filter.errors[0])
