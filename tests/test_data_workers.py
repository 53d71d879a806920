"""Data workers die with their parent: after `kill -9` of a training with grain workers, a wrapper
reading its output returns and no worker remains, within 5 s."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.train_fixtures import cache_env

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.slow
def test_kill_9_of_training_ends_its_workers_and_its_output(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "--config",
            "configs/synthetic_cpu.py:tiny",
            "--workdir",
            str(tmp_path / "run"),
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
        deadline = time.time() + 240
        workers = []
        while time.time() < deadline and len(workers) < 2:
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            # The spawned grain workers (the resource tracker is a child too).
            workers = [
                pid
                for pid in _children(process.pid)
                if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
                and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            time.sleep(0.2)
        assert len(workers) >= 2, "the workers never started"
        time.sleep(2)  # workers busy producing batches
        everyone = _children(process.pid)
        process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        reader = threading.Thread(target=process.stdout.read, daemon=True)
        reader.start()
        reader.join(timeout=5)
        assert not reader.is_alive(), "reading the output did not return: a worker holds it open"
        while time.time() - killed_at < 5 and any(map(_alive, everyone)):
            time.sleep(0.1)
        assert not any(map(_alive, everyone)), [p for p in everyone if _alive(p)]
    finally:
        process.kill()
        process.wait()
        for pid in everyone:  # a failed run must not leave its workers behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
