"""DAVIS evaluate job end to end: CSVs equal the standalone scorer; 8 fake devices equal 1 device."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from configs import davis2017_val, score
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.jobs.evaluate import run
from stm_jax.jobs.score import run as run_score
from tests.model_fixtures import TINY_OVERRIDES, tiny_run_config, write_tiny_pth
from tests.test_train_parallel import _subprocess_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    pth = write_tiny_pth(base / "tiny.pth")
    root = write_synthetic_davis(
        base / "davis", num_train=1, num_val=3, num_frames=5, height=40, width=56
    )
    return pth, root


def test_evaluate_writes_csvs_equal_to_the_scorer(tmp_path, setup):
    pth, root = setup
    run(tiny_run_config(davis2017_val, pth, root=str(root)), str(tmp_path / "eval"))
    score_config = score.get_config()
    score_config.gt, score_config.pred = str(root), str(tmp_path / "eval" / "predictions")
    run_score(score_config, str(tmp_path / "score"))
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        ours = (tmp_path / "eval" / name).read_text()
        assert ours == (tmp_path / "score" / name).read_text()
    rows = (tmp_path / "eval" / "per-sequence_results-val.csv").read_text().splitlines()
    assert rows[0] == "Sequence,J-Mean,F-Mean" and len(rows) > 3  # >= 1 object per sequence


@pytest.mark.slow
def test_eight_fake_devices_give_the_single_device_result(tmp_path, setup):
    """Videos spread over 8 devices give exactly the numbers of 1 device under the same XLA setup.

    (Forcing 8 host devices changes XLA's CPU thread partitioning, hence float rounding, so the
    1-device run is made in the same 8-device process with --config.num_devices=1; a random tiny
    model has near-tie pixels everywhere, so rounding alone can flip a few of them.)
    """
    pth, root = setup
    env = _subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=8")
    probe = "import jax; print(jax.device_count())"
    devices = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert devices.stdout.strip() == "8"
    for name, count in (("one", 1), ("eight", 0)):
        command = [
            sys.executable,
            "main.py",
            "--config=configs/davis2017_val.py",
            f"--workdir={tmp_path / name}",
            f"--config.data.root={root}",
            f"--config.checkpoint={pth}",
            "--config.memory.capacity=4",
            f"--config.num_devices={count}",
        ] + [f"--config.model.{k}={v}" for k, v in TINY_OVERRIDES.items()]
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    one = json.loads((tmp_path / "one" / "results-val.json").read_text())
    eight = json.loads((tmp_path / "eight" / "results-val.json").read_text())
    assert one == eight
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "eight" / name).read_text()
