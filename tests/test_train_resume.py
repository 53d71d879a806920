"""Exact resume and crash safety of checkpoints.

* 10 steps, stop, resume, 10 more == a straight 20-step run (params within 1e-6, same batches seen);
* a process killed with SIGKILL while an (async) save is in flight leaves only complete steps behind,
  and the next run resumes from the last complete one.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from stm_jax import checkpoint_io
from stm_jax.jobs import train as train_job
from tests.train_fixtures import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _batches(workdir: Path) -> list[tuple[int, int]]:
    lines = (workdir / "batches.jsonl").read_text().splitlines()
    return [(r["step"], r["crc"]) for r in map(json.loads, lines)]


def _config(num_steps):
    config = tiny_config(num_steps=num_steps)
    config.train.checkpoint_every = 5
    config.train.log_batches = True
    return config


@pytest.mark.slow
def test_resume_is_exact(tmp_path):
    straight = train_job.run(_config(20), str(tmp_path / "straight"))
    first = train_job.run(_config(10), str(tmp_path / "resumed"))
    assert first["step"] == 10
    resumed = train_job.run(_config(20), str(tmp_path / "resumed"))  # finds step 10 in the workdir
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
        straight["variables"]["params"],
        resumed["variables"]["params"],
    )
    assert _batches(tmp_path / "straight") == _batches(tmp_path / "resumed")
    assert len(_batches(tmp_path / "resumed")) == 20


@pytest.mark.slow
def test_resume_from_config_resume_path(tmp_path):
    train_job.run(_config(10), str(tmp_path / "a"))
    config = _config(12)
    config.resume = str(tmp_path / "a")
    result = train_job.run(config, str(tmp_path / "b"))
    assert result["step"] == 12
    assert [s for s, _ in _batches(tmp_path / "b")] == [10, 11]


_KILLED_RUN = textwrap.dedent(
    """
    import sys
    from absl import flags
    flags.FLAGS.mark_as_parsed()
    from stm_jax.jobs import train as train_job
    from tests.train_fixtures import tiny_config
    config = tiny_config(num_steps=10_000)
    config.train.checkpoint_every = 1
    config.train.async_checkpoint = True
    config.train.keep_checkpoints = 3
    train_job.run(config, sys.argv[1])
    """
)


@pytest.mark.slow
def test_kill_during_save_leaves_only_complete_steps(tmp_path):
    workdir = tmp_path / "run"
    checkpoints = workdir / "checkpoints"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(workdir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    caught = False
    deadline = time.time() + 120
    try:
        while time.time() < deadline and process.poll() is None:
            if checkpoints.is_dir():
                names = [p.name for p in checkpoints.iterdir()]
                complete = [n for n in names if n.isdigit()]
                if any("tmp" in n for n in names) and len(complete) >= 2:
                    process.send_signal(signal.SIGKILL)  # mid-save: a temp dir exists right now
                    caught = True
                    break
            time.sleep(0.002)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    assert caught, "never observed a save in flight"
    directory, step = checkpoint_io.find_checkpoint(workdir, which="latest")
    assert (directory / str(step) / "meta").is_dir()
    config = tiny_config(num_steps=step + 1)
    result = train_job.run(config, str(workdir))  # restores `step`, ignoring the partial save
    assert result["step"] == step + 1
