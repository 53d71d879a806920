"""Data workers die with their parent, and only then: after `kill -9` of a training with grain
workers, a wrapper reading its output returns and no worker remains, within 5 s; a worker whose
forking thread ends (as grain's prefetch threads do on `set_state`) keeps serving."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stm_jax.data.config import default_data_config
from stm_jax.data.pipeline import make_train_iterator
from tests.train_fixtures import cache_env

ROOT = Path(__file__).resolve().parents[1]

# A parent that starts one spawned worker from a short-lived thread. Its main module imports
# stm_jax.entry, as main.py does, so the worker meets `die_with_parent_if_spawned` on start-up.
PARENT = """
import ctypes, functools, multiprocessing as mp, os, sys, threading, time
import stm_jax.entry  # noqa: F401
from stm_jax.data import workers

def pdeathsig():
    sig = ctypes.c_int(-1)
    ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
    return sig.value

def worker(init, queue, slow_start):
    early = pdeathsig()
    time.sleep(slow_start)  # like grain's import before it runs worker_init_fn
    init(0, 1)
    queue.put((os.getpid(), early, pdeathsig()))
    while True:
        time.sleep(0.05)  # busy enough to need the scheduler, like a worker making batches

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "watchdog":  # the portable path alone: no kernel signal asked for
        init = functools.partial(workers.worker_init, os.getpid(), False)
    else:
        init = workers.worker_init_fn()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    slow_start = 30 if mode == "starting" else 0
    process = ctx.Process(target=worker, args=(init, queue, slow_start), daemon=True)
    if mode == "starting":  # killed before the worker gets to worker_init
        process.start()
        print("STARTED", process.pid, flush=True)
        time.sleep(60)
    ready = []

    def start():  # like a grain prefetch thread: forks the worker, serves, ends
        process.start()
        ready.append(queue.get(timeout=120))

    starter = threading.Thread(target=start)
    starter.start()
    starter.join()  # the thread that forked the worker is gone; the worker must not be
    pid, early, late = ready[0]
    time.sleep(1.0)
    print("READY", pid, early, late, int(process.is_alive()), flush=True)
    while True:
        time.sleep(1)
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_9_and_wait(process: subprocess.Popen, pids: list[int]) -> None:
    """kill -9 `process`; assert its output reaches EOF and every pid in `pids` is gone in 5 s."""
    reader = threading.Thread(target=process.stdout.read, daemon=True)
    reader.start()  # drains what is left, then waits for EOF: every writer gone
    process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading the output did not return: a child holds it open"
    while time.monotonic() - killed_at < 5 and any(map(_alive, pids)):
        time.sleep(0.05)
    assert not any(map(_alive, pids)), [p for p in pids if _alive(p)]


def _reap(process: subprocess.Popen, pids: list[int]) -> None:
    process.kill()
    process.wait()
    for pid in pids:  # a failed run must not leave its workers behind
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _read_line(process: subprocess.Popen, prefix: bytes, timeout: float) -> bytes:
    lines: list[bytes] = []

    def read():
        for line in process.stdout:
            lines.append(line)
            if line.startswith(prefix):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines and lines[-1].startswith(prefix), b"".join(lines).decode()[-3000:]
    return lines[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl")
def test_worker_killed_while_starting_exits_at_once(tmp_path):
    # The parent dies before the worker reaches worker_init (here 30 s away): the worker either
    # already asked for the kernel signal on importing the main module, or finds itself orphaned
    # there.
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    process = subprocess.Popen(
        [sys.executable, str(script), "starting"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pids: list[int] = []
    try:
        _read_line(process, b"STARTED", 120)
        pids = _children(process.pid)
        assert pids
        _kill_9_and_wait(process, pids)
    finally:
        _reap(process, pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl")
@pytest.mark.parametrize("mode", ["spawner", "watchdog"])
def test_worker_outlives_its_forking_thread_and_dies_with_its_parent(tmp_path, mode):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    process = subprocess.Popen(
        [sys.executable, str(script), mode],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pids: list[int] = []
    try:
        _, pid, early, late, alive = _read_line(process, b"READY", 120).split()
        pids = _children(process.pid)
        assert alive == b"1", "the worker died with the thread that forked it"
        assert int(pid) in pids
        if mode == "spawner":  # asked for by the main module's import, then by worker_init
            assert (int(early), int(late)) == (signal.SIGKILL, signal.SIGKILL)
        else:  # forked outside the spawner thread: the kernel signal would come too early
            assert (int(early), int(late)) == (0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM):  # the parent's to handle at a step boundary
            os.kill(int(pid), sig)
        time.sleep(0.3)
        assert _alive(int(pid)), "a worker ended on SIGINT/SIGTERM"
        _kill_9_and_wait(process, pids)
    finally:
        _reap(process, pids)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_grain_workers_outlive_set_state_which_ends_the_threads_that_forked_them():
    config = default_data_config()
    config.sources = {"synth": {"kind": "synthetic", "ratio": 1.0, "num_videos": 4, "seed": 0}}
    config.update(crop_size=32, resize_shorter=36, num_workers=2, batch_size=2)
    iterator = make_train_iterator(config, 0, 1)
    try:
        for _ in range(3):
            next(iterator)
        workers = [
            p
            for p in _children(os.getpid())
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(workers) == 2
        iterator.set_state(iterator.get_state())  # grain stops and replaces its prefetch threads
        time.sleep(0.5)
        assert all(map(_alive, workers)), "a worker died with the thread that forked it"
        for _ in range(3):
            next(iterator)  # grain raises if a worker was killed
        assert all(map(_alive, workers))
    finally:
        iterator.close()


@pytest.mark.slow
def test_kill_9_of_training_ends_its_workers_and_its_output(tmp_path):
    workdir = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "--config",
            "configs/synthetic_cpu.py:tiny",
            "--workdir",
            str(workdir),
            "--config.train.num_steps=10000",
            "--config.train.eval_every=0",
            "--config.train.checkpoint_every=0",
            "--config.data.num_workers=2",
        ],
        cwd=ROOT,
        env={**os.environ, **cache_env(), "JAX_PLATFORMS": "cpu"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    everyone: list[int] = []
    try:
        # Training: steps logged (log_every=1), so both workers have made batches.
        metrics = workdir / "metrics.jsonl"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the training never logged 3 steps")
        everyone = _children(process.pid)
        workers = [p for p in everyone if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 2, everyone
        _kill_9_and_wait(process, everyone)
    finally:
        _reap(process, everyone)
