"""One writer per workdir: an exclusive `flock` on WORKDIR/.lock while a job writes there.

Every job goes through `stm_jax.jobs.run_job`, which holds the lock for the whole job; the training
job also takes it when called from Python. The kernel releases a `flock` when its process dies,
however it dies (SIGKILL, the OOM killer), so a stale `.lock` file never blocks the next run; the
file's content (pid, host, start time, job) only names the holder for the refusal message.

In a multi-process run each process locks its own file (`.lock` for process 0, `.lock.process<N>`
for the others), so the processes of one run share the workdir and a second run's are refused.
Within one process the lock is re-entrant (a job calling another job's function on the same
workdir), so it excludes other processes, not other threads of the same process.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from stm_jax.cli_errors import ConfigError, UserError

LOCK_NAME = ".lock"
log = logging.getLogger(__name__)
# realpath of the lock file -> [file descriptor, depth]: the locks this process holds.
_HELD: dict[str, list[int]] = {}


class WorkdirBusyError(UserError, RuntimeError):
    """Another process holds the workdir's lock."""


def _holder_text(lock_path: Path) -> str:
    try:
        holder = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "another process (it has not written its name yet)"
    return (
        f"job {holder.get('job', '?')!r} (pid {holder.get('pid', '?')} on host "
        f"{holder.get('host', '?')}, started {holder.get('started', '?')})"
    )


def prepare_workdir(workdir) -> Path:
    """Creates `workdir` (and parents); a file in its place or a folder that cannot be written is
    one ConfigError naming the path and the fix."""
    path = Path(workdir).absolute()
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(
                f"--workdir {path}: {parent} is a file, not a folder; pass another --workdir."
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"--workdir {path}: cannot create the folder ({error.strerror or error}); pass a "
            "writable --workdir."
        ) from error
    return path


def lock_name(process: int = 0) -> str:
    """The lock file of process `process` of a run."""
    return LOCK_NAME if process == 0 else f"{LOCK_NAME}.process{process}"


def _open_lock_file(lock_path: Path) -> int:
    path = lock_path.parent
    try:
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(
            f"--workdir {path}: cannot write in the folder ({error.strerror or error}); pass a "
            "writable --workdir or fix its permissions."
        ) from error


def acquire(workdir, job: str, process: int = 0) -> Path:
    """Takes the workdir's lock for this process (re-entrant); returns the workdir's path.

    Raises:
      ConfigError: the workdir is a file or cannot be written.
      WorkdirBusyError: another process holds the lock (the message names it).
    """
    path = prepare_workdir(workdir)
    lock_path = path / lock_name(process)
    key = os.path.realpath(lock_path)
    if key in _HELD:
        _HELD[key][1] += 1
        return path
    fd = _open_lock_file(lock_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkdirBusyError(
            f"--workdir {path} is in use by {_holder_text(lock_path)}; wait for it to "
            "finish or pass another --workdir."
        ) from None
    except OSError as error:
        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            os.close(fd)
            raise
        # A file system without locks (some network mounts): run, but nothing guards the folder.
        log.warning(
            "%s: the file system does not support locks; concurrent jobs are not refused", path
        )
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "job": job,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    _HELD[key] = [fd, 1]
    return path


def release(workdir, process: int = 0) -> None:
    """Undoes one `acquire` of this process; the last one unlocks and closes the lock file."""
    key = os.path.realpath(Path(workdir).absolute() / lock_name(process))
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _HELD[key]
        fd = held[0]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale holder text for the next reader
        os.close(fd)  # closing the last descriptor releases the flock


@contextlib.contextmanager
def holding(workdir, job: str, process: int = 0):
    """`with holding(workdir, job) as path:` the lock for the block (see `acquire`)."""
    path = acquire(workdir, job, process)
    try:
        yield path
    finally:
        release(path, process)
