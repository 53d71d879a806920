"""One writer per workdir: a second job is refused at once naming the holder; the kernel frees the lock
when the holder dies, however it dies; a workdir that is a file or cannot be written is one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stm_jax import workdir_lock
from stm_jax.cli_errors import ConfigError
from tests.test_cli_errors import assert_user_error, main_py

ROOT = Path(__file__).resolve().parents[1]
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from stm_jax import workdir_lock
    workdir_lock.acquire(sys.argv[1], "train")
    print("holding", flush=True)
    time.sleep(120)
    """
)


def _start_holder(workdir: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(workdir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "holding"
    return process


def test_second_job_in_a_held_workdir_is_refused_naming_the_holder(tmp_path):
    workdir = tmp_path / "run"
    holder = _start_holder(workdir)
    try:
        written = json.loads((workdir / ".lock").read_text())
        assert written["pid"] == holder.pid and written["job"] == "train"
        assert written["host"] == socket.gethostname()
        started = time.time()
        result = main_py("--config", "configs/score.py", "--workdir", workdir)
        assert_user_error(result, str(workdir), f"pid {holder.pid}", "'train'", "started")
        assert time.time() - started < 60  # refused at once, not after waiting for the lock
        assert sorted(p.name for p in workdir.iterdir()) == [".lock"]  # nothing else touched
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_holder_is_free_again(tmp_path):
    workdir = tmp_path / "run"
    holder = _start_holder(workdir)
    with pytest.raises(workdir_lock.WorkdirBusyError, match=f"pid {holder.pid}"):
        workdir_lock.acquire(workdir, "segment")
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup code runs: the kernel drops the flock
    holder.wait()
    with workdir_lock.holding(workdir, "segment"):
        assert json.loads((workdir / ".lock").read_text())["pid"] == os.getpid()
        with workdir_lock.holding(workdir, "segment"):  # re-entrant within one process
            pass
        assert (workdir / ".lock").read_text()  # still held after the inner block
    assert (workdir / ".lock").read_text() == ""  # released: no stale holder text


def test_processes_of_one_run_lock_their_own_files(tmp_path):
    with workdir_lock.holding(tmp_path, "train", process=0):
        with workdir_lock.holding(tmp_path, "train", process=1):
            assert (tmp_path / ".lock.process1").is_file()


def test_workdir_that_is_a_file_is_one_line(tmp_path):
    file = tmp_path / "not_a_folder"
    file.write_text("x")
    result = main_py("--config", "configs/score.py", "--workdir", file / "sub")
    assert_user_error(result, f"{file} is a file, not a folder")
    with pytest.raises(ConfigError, match="is a file"):
        workdir_lock.acquire(file, "train")


def test_read_only_workdir_is_one_line(tmp_path):
    if os.geteuid() == 0:
        folder = Path("/sys")  # not writable even by root
    else:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
    result = main_py("--config", "configs/score.py", "--workdir", folder)
    assert_user_error(result, f"--workdir {folder}: cannot write in the folder")
