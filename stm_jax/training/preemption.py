"""Stopping a training run on SIGTERM / SIGINT at a step boundary, with a checkpoint.

Cloud TPU/GPU VMs announce preemption with SIGTERM; Ctrl-C is SIGINT. While `StopRequest` is active
either signal only records the request: the step in flight finishes, the train job saves that
step, waits for the save, flushes its logs and raises `TrainingPreempted`, which the command line
turns into one line and exit code 75 (EX_TEMPFAIL: rerun the same command to resume). A second
signal acts as usual at once (SIGINT: KeyboardInterrupt, SIGTERM: the process ends).

In a multi-process run every process asks at each step whether any process was signalled (one small
all-gather), so all of them stop at the same step and save it together.
"""

from __future__ import annotations

import signal
import threading

import numpy as np

from stm_jax.cli_errors import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingPreempted(Interrupted):
    """The run stopped on a signal after saving `step` (None: nothing was saved)."""

    def __init__(self, message: str, step: int | None) -> None:
        super().__init__(message)
        self.step = step


class StopRequest:
    """`with StopRequest() as stop:` ... `if stop.requested(): ...` (see the module docstring)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        self.signal_name = signal.Signals(signum).name
        for sig in SIGNALS:  # the next signal is not deferred
            signal.signal(
                sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            )

    def __enter__(self) -> StopRequest:
        if (
            threading.current_thread() is threading.main_thread()
        ):  # handlers live in the main thread
            self._previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
            for sig in SIGNALS:
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def requested(self) -> bool:
        """Whether this process (or, multi-process, any process) has been signalled."""
        import jax

        local = self.signal_name is not None
        if jax.process_count() == 1:
            return local
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.asarray(local, np.int32))
        if np.any(flags) and self.signal_name is None:
            self.signal_name = "a signal to another process"
        return bool(np.any(flags))
