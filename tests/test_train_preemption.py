"""Preemption and failed saves of the train job, through main.py as a scheduler would run it.

* SIGTERM mid-run: the step in flight finishes, that step is saved, logs are flushed, one line, exit
  code 75; the rerun resumes at that step and its losses equal an uninterrupted run's.
* A checkpoint whose temporary folder orbax cannot create (a symlink in its place, which orbax's
  background thread fails to remove and its main thread then waits for forever): the run ends in
  seconds with one line naming the folder and the intact steps, exit code 2.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stm_jax.jobs import train as train_job
from stm_jax.training.metric_writer import read_jsonl
from tests.train_fixtures import cache_env

ROOT = Path(__file__).resolve().parents[1]
TINY = "configs/synthetic_cpu.py:tiny"
FLAGS = ["--config.train.eval_every=0", "--config.train.log_every=1"]


def _popen(workdir, *flags):
    return subprocess.Popen(
        [sys.executable, "main.py", "--config", TINY, "--workdir", str(workdir), *FLAGS, *flags],
        cwd=ROOT,
        env={**os.environ, **cache_env(), "JAX_PLATFORMS": "cpu"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _tiny(num_steps):
    sys.path.insert(0, str(ROOT))
    from configs.synthetic_cpu import get_config

    config = get_config("tiny")
    config.train.eval_every, config.train.log_every = 0, 1
    config.train.num_steps, config.train.checkpoint_every = num_steps, 1000
    config.train.log_batches = True
    return config


def _losses(workdir) -> dict[int, float]:
    return {
        r["step"]: r["train/loss_step"]
        for r in read_jsonl(Path(workdir) / "metrics.jsonl")
        if "train/loss_step" in r
    }


@pytest.mark.slow
def test_sigterm_saves_the_step_and_the_rerun_matches_an_uninterrupted_run(tmp_path):
    workdir = tmp_path / "preempted"
    process = _popen(
        workdir,
        "--config.train.num_steps=10000",
        "--config.train.checkpoint_every=1000",
        "--config.train.log_batches=True",
    )
    try:
        deadline = time.time() + 300
        while (
            time.time() < deadline
            and len(_losses(workdir) if (workdir / "metrics.jsonl").exists() else {}) < 3
        ):
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 75, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped: training stopped by SIGTERM at step "), err
    stopped_at = int(last.split("at step ")[1].split(";")[0])
    assert f"checkpoint step {stopped_at} saved" in last
    assert (workdir / "checkpoints" / str(stopped_at)).is_dir()
    # Every step until the stop is in the flushed logs, and nothing after it.
    batches = read_jsonl(workdir / "batches.jsonl")
    assert [b["step"] for b in batches] == list(range(stopped_at))
    assert sorted(_losses(workdir)) == list(range(1, stopped_at + 1))

    resumed = train_job.run(_tiny(stopped_at + 2), str(workdir))
    assert resumed["step"] == stopped_at + 2
    straight = tmp_path / "straight"
    train_job.run(_tiny(stopped_at + 2), str(straight))
    reference, continued = _losses(straight), _losses(workdir)
    for step in range(1, stopped_at + 3):
        assert abs(continued[step] - reference[step]) <= 1e-6, (step, continued, reference)
    assert read_jsonl(workdir / "batches.jsonl") == read_jsonl(straight / "batches.jsonl")


@pytest.mark.slow
def test_failed_checkpoint_save_ends_in_seconds_with_one_line(tmp_path):
    workdir = tmp_path / "run"
    checkpoints = workdir / "checkpoints"
    checkpoints.mkdir(parents=True)
    os.symlink(tmp_path, checkpoints / "4.orbax-checkpoint-tmp")  # orbax cannot replace it
    process = _popen(
        workdir,
        "--config.train.num_steps=6",
        "--config.train.checkpoint_every=2",
        "--config.train.async_checkpoint=True",
    )
    _, err = process.communicate(timeout=240)  # today's code: stuck in orbax's save for good
    assert process.returncode == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert len(lines) - first == 2, err  # the error and the debug hint only
    assert f"cannot save checkpoint step 4 in {checkpoints}" in lines[first]
    assert "steps [2] there are intact" in lines[first]
    assert (checkpoints / "2").is_dir() and not (checkpoints / "4").exists()
