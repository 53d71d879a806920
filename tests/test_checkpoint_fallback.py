"""A damaged latest checkpoint step falls back to the newest intact one; a resume into another model
names the differing fields."""

import shutil

import jax
import numpy as np
import pytest

from stm_jax import checkpoint_io
from stm_jax.checkpoint_fallback import CheckpointError
from stm_jax.cli_errors import ConfigError
from stm_jax.jobs import train as train_job
from tests.train_fixtures import tiny_config

# End-to-end runs of jobs and trainings: the full suite's.
pytestmark = pytest.mark.slow


def _config(num_steps):
    config = tiny_config(num_steps=num_steps)
    config.train.checkpoint_every = 5
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    train_job.run(_config(10), str(workdir))
    return workdir


def _damaged_copy(trained, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained, workdir)
    chunks = list((workdir / "checkpoints/10/state").rglob("d/*"))
    assert chunks
    for chunk in chunks:  # a disk error / interrupted copy: the array data is cut short
        chunk.write_bytes(chunk.read_bytes()[:20])
    return workdir


def test_inference_load_falls_back_to_the_previous_step(trained, tmp_path, capsys):
    workdir = _damaged_copy(trained, tmp_path)
    config, variables = checkpoint_io.load_trained_model(workdir, which="latest")
    err = capsys.readouterr().err
    assert f"checkpoint step {workdir / 'checkpoints/10'} is unreadable" in err
    assert "using step 5" in err and "Traceback" not in err
    _, step5 = checkpoint_io.load_trained_model(workdir / "checkpoints/5")
    jax.tree.map(np.testing.assert_array_equal, variables, step5)
    assert config.backbone == "tiny"


def test_resume_falls_back_and_saves_the_step_again(trained, tmp_path, capsys):
    workdir = _damaged_copy(trained, tmp_path)
    result = train_job.run(_config(12), str(workdir))
    captured = capsys.readouterr()
    assert result["step"] == 12
    assert "resumed step 5" in captured.out
    assert "moved the damaged step aside" in captured.err
    names = sorted(p.name for p in (workdir / "checkpoints").iterdir())
    assert "10" in names and "12" in names and any(n.startswith("10.damaged-") for n in names)
    checkpoint_io.load_trained_model(workdir / "checkpoints/10")  # the re-saved step reads


def test_every_step_damaged_is_one_clear_error(trained, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained, workdir)
    for chunk in (workdir / "checkpoints").rglob("state/**/d/*"):
        chunk.write_bytes(b"")
    with pytest.raises(CheckpointError, match="every checkpoint step is unreadable"):
        checkpoint_io.load_trained_model(workdir, which="latest")


def test_resume_with_another_model_names_the_fields(trained, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained, workdir)
    config = _config(12)
    config.model.key_dim = 16
    config.model.decoder_dim = 32
    with pytest.raises(ConfigError, match="model.decoder_dim: 16 -> 32; model.key_dim: 8 -> 16"):
        train_job.run(config, str(workdir))  # config.json holds other settings: refused first
    config.resume_changed = True  # allowed: the checkpoint itself still does not fit
    with pytest.raises(CheckpointError) as error:
        train_job.run(config, str(workdir))
    assert not list(workdir.glob("config.previous-*"))  # the failed resume kept the saved settings
    assert '"key_dim": 8' in (workdir / "config.json").read_text()
    message = str(error.value)
    assert "decoder_dim: checkpoint 16 vs config 32" in message
    assert "key_dim: checkpoint 8 vs config 16" in message
    assert "--config.init_from=" in message and "strict" not in message
