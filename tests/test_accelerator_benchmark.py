"""`python -m benchmarks.accelerator` runs on CPU at a tiny size and prints its full table, and its
FLOP count of a step is XLA's count corrected to the memory chunks the read visits."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from benchmarks.accelerator import MODELS, _memory_config, flops, read_cost_model
from stm_jax.inference.step_memory import step_inputs
from stm_jax.inference.stepper import Stepper
from stm_jax.model.family import init_variables
from tests.train_fixtures import cache_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_accelerator_benchmark_prints_the_table_on_cpu():
    command = [sys.executable, "-m", "benchmarks.accelerator", "--model=tiny", "--height=48"]
    command += ["--width=64", "--batches=2", "--frames=2", "--warmup=1", "--peak-tflops=1"]
    command += ["--memory-frames=3"]
    env = {**os.environ, **cache_env()}  # its steps are the device check's dry run's too
    out = subprocess.run(
        command, cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    header, rows = rows[0], rows[1:]
    assert [h.strip() for h in header][:3] == ["dtype", "videos/step", "frames/s"]
    assert [(r[0].strip(), int(r[1])) for r in rows] == [
        ("float32", 1),
        ("bfloat16", 1),
        ("bfloat16", 2),
    ]
    for row in rows:
        fps, ms, tflops, share, gflop, in_memory, memory, compile_s = row[2:]
        assert float(fps) > 0 and float(ms) > 0 and float(tflops) > 0 and float(share) > 0
        assert float(gflop) > 0 and in_memory.strip() == "3-4"  # 3 frames, then one more
        assert float(memory.split()[0]) > 0 and float(compile_s) > 0


def test_flops_of_a_step_count_every_memory_chunk():
    """rest + (capacity / c) chunks equals XLA's count of the step read in one chunk of all 40
    frames (where its loop body, counted once, is the whole read)."""
    model_config = MODELS["tiny"]
    variables = init_variables(jax.random.key(0), model_config)
    rest, chunk = read_cost_model(model_config, variables, 48, 64, chunk_frames=4)
    assert rest > 0 and chunk > 0
    stepper = Stepper(model_config, _memory_config(40))
    whole = flops(stepper.step.lower(variables, *step_inputs(stepper, variables, 1, 48, 64, 2)))
    assert rest + 10 * chunk == pytest.approx(whole, rel=1e-4)
