"""Data worker processes end with the training process, however it ends.

grain's `mp_prefetch` workers are spawned children holding the parent's stdout/stderr. When the
parent dies without closing the iterator (SIGKILL, the OOM killer) they would keep running, and a
wrapper waiting for the output (`| tee`, a scheduler, `subprocess.run(capture_output=True)`) would
wait forever. `worker_init(parent_pid)` (passed as grain's `worker_init_fn`) starts a daemon thread
in each worker that ends the worker within `POLL_S` of its parent's death (the parent pid changes
when the kernel re-parents an orphan). A thread rather than `prctl(PR_SET_PDEATHSIG)`: the latter
fires when the *thread* that started the worker exits, which may be a short-lived grain thread.

Workers also ignore SIGINT/SIGTERM: a Ctrl-C or a scheduler's SIGTERM to the whole process group
lets the training process stop at a step boundary (stm_jax.training.preemption) with its workers
still serving; they end with it.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time

POLL_S = 0.5


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_S)
    os._exit(1)  # the parent is gone: nothing reads what this worker makes


def worker_init(parent_pid: int, worker_index: int = 0, worker_count: int = 1) -> None:
    """grain `worker_init_fn` body (bind `parent_pid` with `worker_init_fn()`)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), name="exit-with-parent", daemon=True
    ).start()
    if os.getppid() != parent_pid:  # the parent died before the thread started
        os._exit(1)


def worker_init_fn():
    """The `worker_init_fn` for grain's `mp_prefetch`, bound to this (the parent) process."""
    return functools.partial(worker_init, os.getpid())
