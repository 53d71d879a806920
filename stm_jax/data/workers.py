"""Data worker processes end with the training process, however it ends.

grain's `mp_prefetch` workers are spawned children holding the parent's stdout/stderr. When the
parent dies without closing the iterator (SIGKILL, the OOM killer) they would keep running, and a
wrapper waiting for the output (`| tee`, a scheduler, `subprocess.run(capture_output=True)`) would
wait forever. Three layers make them go with it:

- On Linux the kernel kills a worker the moment its parent dies: `prctl(PR_SET_PDEATHSIG, SIGKILL)`.
  That signal fires when the *thread* that forked the worker exits, and grain forks from its own
  prefetch threads, which end (and are replaced) on `set_state` while the worker keeps serving.
  So `worker_init_fn()` first routes every multiprocessing launch of this process through one
  thread that lives as long as the process (`_spawn_from_one_thread`); only a worker forked there
  asks for the signal.
- The signal is asked for as early as the worker can: a spawned worker re-imports the parent's main
  module, and `stm_jax.entry` (the console script, and what `main.py` runs) calls
  `die_with_parent_if_spawned()` at import, long before grain runs its `worker_init_fn` (grain's
  import alone takes seconds on busy cores). `worker_init` asks again for other main modules.
- A watchdog thread in each worker (every platform) ends it when its parent pid changes (the
  kernel re-parents an orphan): it waits on a pidfd of the parent where there is one (woken at
  the death) and polls every `POLL_S` otherwise.

Workers also ignore SIGINT/SIGTERM: a Ctrl-C or a scheduler's SIGTERM to the whole process group
lets the training process stop at a step boundary (stm_jax.training.preemption) with its workers
still serving; they end with it. A dead worker holds nothing open: its copies of the stdout/stderr
pipes close with it, and multiprocessing's resource tracker (the other child holding them) exits
once the parent and every worker are gone.
"""

from __future__ import annotations

import functools
import multiprocessing.util as mp_util
import os
import select
import signal
import sys
import threading
import time

POLL_S = 0.1
# The pid of the process whose multiprocessing launches all come from one long-lived thread, for
# its spawned children (inherited by later subprocesses too; they check it against their ppid).
PARENT_ENV = "STM_JAX_SPAWNING_PARENT"
_PR_SET_PDEATHSIG = 1

_lock = threading.Lock()
_spawner: _Spawner | None = None


def _kill_me_when_parent_dies() -> bool:
    """prctl(PR_SET_PDEATHSIG, SIGKILL) for this process; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class _Spawner:
    """One daemon thread that runs every `spawnv_passfds` of this process. It never returns, so
    it ends only with the process: the children it forks can rely on PR_SET_PDEATHSIG."""

    def __init__(self, spawn) -> None:
        self.spawn = spawn
        self.requests: list = []
        self.ready = threading.Condition(threading.Lock())
        self.thread = threading.Thread(target=self._serve, name="stm-jax-spawner", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            with self.ready:
                while not self.requests:
                    self.ready.wait()
                args, kwargs, result, done = self.requests.pop(0)
            try:
                result.append((True, self.spawn(*args, **kwargs)))
            except BaseException as e:  # handed to the caller, raised in its thread
                result.append((False, e))
            done.set()

    def __call__(self, *args, **kwargs):
        if threading.current_thread() is self.thread:
            return self.spawn(*args, **kwargs)
        result: list = []
        done = threading.Event()
        with self.ready:
            self.requests.append((args, kwargs, result, done))
            self.ready.notify()
        done.wait()
        ok, value = result[0]
        if ok:
            return value
        raise value


def _forget_spawner_in_child() -> None:
    # A fork()ed child has no spawner thread: it launches as multiprocessing would.
    global _spawner
    if _spawner is not None:
        mp_util.spawnv_passfds = _spawner.spawn
        _spawner = None
    os.environ.pop(PARENT_ENV, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_spawner_in_child)


def _spawn_from_one_thread() -> None:
    """Route this process's multiprocessing launches (spawn, forkserver) through `_Spawner`."""
    global _spawner
    with _lock:
        if _spawner is None:
            _spawner = _Spawner(mp_util.spawnv_passfds)
            mp_util.spawnv_passfds = _spawner
        os.environ[PARENT_ENV] = str(os.getpid())


def _exists(pid: int) -> bool:
    """Whether `pid` runs (a killed parent stays a zombie until its own parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        pass  # no /proc
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def die_with_parent_if_spawned() -> None:
    """In a multiprocessing child that a `_spawn_from_one_thread` process launched: ask the kernel
    for SIGKILL at the parent's death, and exit if it is dead already. Elsewhere: nothing."""
    if "--multiprocessing-fork" not in getattr(sys, "orig_argv", ()):
        return
    parent = os.environ.get(PARENT_ENV, "")
    if not parent.isdigit():
        return
    if int(parent) == os.getppid():
        if _kill_me_when_parent_dies() and os.getppid() != int(parent):
            os._exit(1)  # it died before the request took effect
    elif not _exists(int(parent)):
        # Orphaned while starting (or a descendant of a dead training): nobody reads our output.
        os._exit(1)


def _wait_for_orphaning(parent_pid: int) -> None:
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(parent_pid)
        except OSError:
            pidfd = None
    poller = None
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
    # The pidfd is of the right process only while it is still our parent: checked every round.
    while os.getppid() == parent_pid:
        if poller is not None:
            poller.poll(POLL_S * 1000)  # readable when the parent exits
        else:
            time.sleep(POLL_S)
    os._exit(1)  # the parent is gone: nothing reads what this worker makes


def worker_init(
    parent_pid: int, forked_by_spawner: bool, worker_index: int = 0, worker_count: int = 1
) -> None:
    """grain `worker_init_fn` body (bound to the parent with `worker_init_fn()`)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    if forked_by_spawner and os.getppid() == parent_pid:
        _kill_me_when_parent_dies()
    threading.Thread(
        target=_wait_for_orphaning, args=(parent_pid,), name="exit-with-parent", daemon=True
    ).start()
    if os.getppid() != parent_pid:  # the parent died before the watchdog started
        os._exit(1)


def worker_init_fn():
    """The `worker_init_fn` for grain's `mp_prefetch`, bound to this (the parent) process. Call it
    in the parent before the workers start: it also makes their launches come from one thread."""
    _spawn_from_one_thread()
    return functools.partial(worker_init, os.getpid(), True)
