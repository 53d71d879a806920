"""`benchmarks/device_check.sh --dry-run` prints its whole table on a CPU at tiny sizes, row by row;
parts past the time limit are reported as skipped."""

import os
import subprocess
import sys

import pytest

from benchmarks import device_check
from tests.test_train_parallel import ROOT
from tests.train_fixtures import cache_env


def table(text: str) -> list[list[str]]:
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]  # without the column names


@pytest.mark.slow
def test_dry_run_prints_every_row_on_cpu():
    # The test cache: the rows' steps that other tests compile (the accelerator benchmark's,
    # the bf16 accuracy test's) compile once.
    env = {**os.environ, "PYTHON": sys.executable, "JAX_PLATFORMS": "cpu", **cache_env()}
    command = ["bash", "benchmarks/device_check.sh", "--dry-run"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "device check (dry run, tiny sizes): cpu" in result.stdout
    rows = table(result.stdout)
    settings = [(row[0], row[1]) for row in rows]
    inference = [s for p, s in settings if p == "inference"]
    assert [s.split(", ")[2:] for s in inference] == [
        ["float32", "1 video(s)/step"],
        ["bfloat16", "1 video(s)/step"],
        ["bfloat16", "4 video(s)/step"],
        ["bfloat16", "16 video(s)/step"],
    ]
    for row in rows:
        if row[0] == "inference":
            assert float(row[2].split()[0]) > 0 and float(row[4]) > 0 and float(row[6]) > 0, row
    train = {s: row for (p, s), row in zip(settings, rows) if p == "train"}
    ours = train["ours, 32x32, 3 frames, 2 objects, tiny, bf16, batch 2"]
    theirs = train["PyTorch reference, 32x32, 3 frames, 2 objects, tiny, bf16, batch 2"]
    assert float(ours[2].split()[0]) > 0 and float(ours[6]) > 0  # clips/s, XLA's memory
    assert float(theirs[2].split()[0]) > 0 and "on cpu" in theirs[9]
    assert float(train["ours / PyTorch reference, batch 2"][2].rstrip("x")) > 0
    (agreement,) = [row for row in rows if row[0] == "agreement"]
    assert 90.0 <= float(agreement[2].split()[0]) <= 100.0 and "J&F float32" in agreement[9]


def test_parts_past_the_time_limit_are_skipped(capsys):
    assert device_check.main(["--dry-run", "--time-limit", "5"]) == 0
    rows = table(capsys.readouterr().out)
    assert [(row[0], row[9]) for row in rows] == [
        (part, "skipped: time limit reached") for part in device_check.PARTS
    ]
