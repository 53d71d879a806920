"""The convert job: .pth -> stm_jax checkpoint with identical predictions, then no PyTorch needed."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from configs import davis2017_val
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.jobs.segment import run
from tests.model_fixtures import TINY_OVERRIDES, tiny_run_config, write_tiny_pth

# End-to-end runs of jobs and trainings: the full suite's.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "JAX_PLATFORMS": "cpu"}
MODEL_FLAGS = [f"--config.model.{k}={v}" for k, v in TINY_OVERRIDES.items()]


def convert(pth, workdir):
    command = [
        sys.executable,
        "main.py",
        "--config",
        "configs/convert.py",
        "--workdir",
        str(workdir),
    ]
    command += [f"--config.checkpoint={pth}", *MODEL_FLAGS]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    pth = write_tiny_pth(folder / "official_layout.pth", seed=4)
    result = convert(pth, folder / "stm")
    assert result.returncode == 0, result.stderr
    assert "each checked after reading back" in result.stdout
    return pth, folder / "stm"


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    return write_synthetic_davis(
        tmp_path_factory.mktemp("davis"), num_train=0, num_val=2, num_frames=6, height=40, width=56
    )


def _predictions(workdir):
    return {
        p.relative_to(workdir): np.asarray(Image.open(p))
        for p in sorted((Path(workdir) / "predictions").rglob("*.png"))
    }


def test_converted_checkpoint_gives_exactly_the_pth_predictions(converted, davis_root, tmp_path):
    pth, stm = converted
    run(tiny_run_config(davis2017_val, pth, root=str(davis_root)), str(tmp_path / "pth"))
    run(tiny_run_config(davis2017_val, stm, root=str(davis_root)), str(tmp_path / "stm"))
    from_pth, from_stm = _predictions(tmp_path / "pth"), _predictions(tmp_path / "stm")
    assert len(from_pth) == 12 and from_pth.keys() == from_stm.keys()
    for key in from_pth:
        np.testing.assert_array_equal(from_stm[key], from_pth[key])


SEGMENT_WITHOUT_TORCH = """
import runpy, sys
sys.argv = ["main.py"] + sys.argv[1:]
try:
    runpy.run_path("main.py", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
assert "torch" not in sys.modules, "torch was imported"
print("torch not imported")
"""


def test_segmenting_with_the_converted_checkpoint_never_imports_torch(
    converted, davis_root, tmp_path
):
    _, stm = converted
    args = ["--config", "configs/davis2017_val.py", "--workdir", str(tmp_path / "out")]
    args += [f"--config.data.root={davis_root}", f"--config.checkpoint={stm}"]
    args += ["--config.memory.capacity=4"]
    result = subprocess.run(
        [sys.executable, "-c", SEGMENT_WITHOUT_TORCH, *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "torch not imported" in result.stdout
    assert "J&F-Mean" in (tmp_path / "out/global_results-val.csv").read_text()


def test_rerun_is_a_no_op_and_another_pth_is_refused(converted, tmp_path):
    pth, stm = converted
    again = convert(pth, stm)
    assert again.returncode == 0 and "already holds this .pth converted" in again.stdout
    other = write_tiny_pth(tmp_path / "other.pth", seed=5)
    refused = convert(other, stm)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "already holds another converted checkpoint" in refused.stderr
