"""`python -m benchmarks.accelerator` runs on CPU at a tiny size and prints its full table."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_accelerator_benchmark_prints_the_table_on_cpu():
    command = [sys.executable, "-m", "benchmarks.accelerator", "--model=tiny", "--height=48"]
    command += ["--width=64", "--batches=2", "--frames=1", "--warmup=1", "--peak-tflops=1"]
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    header, rows = rows[0], rows[1:]
    assert [h.strip() for h in header][:3] == ["dtype", "videos/step", "frames/s"]
    assert [(r[0].strip(), int(r[1])) for r in rows] == [
        ("float32", 1),
        ("bfloat16", 1),
        ("bfloat16", 2),
    ]
    for row in rows:
        fps, ms, tflops, share, memory, compile_s = row[2:]
        assert float(fps) > 0 and float(ms) > 0 and float(tflops) > 0 and float(share) > 0
        assert float(memory.split()[0]) > 0 and float(compile_s) > 0
