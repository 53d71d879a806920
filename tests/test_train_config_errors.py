"""Training and config-file user errors: one line, exit code 2, naming the field or file and the fix.

Config-file errors go through main.py in a subprocess (they happen while flags are parsed, before
JAX is imported: about a second each). Training errors call `run_job` under `exit_on_user_error`,
what main.py does once the flags are parsed, in-process. One real training of one step: the run
the resume tests continue (module fixture).
"""

import importlib.util
import inspect
import json
import shutil
from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from stm_jax.cli_errors import ConfigError, exit_on_user_error
from stm_jax.jobs import run_job
from stm_jax.jobs import train as train_job
from stm_jax.training.run_checks import changed_settings, run_length_is_harmless
from tests.test_cli_errors import assert_user_error, main_py
from tests.train_fixtures import tiny_config

ROOT = Path(__file__).resolve().parents[1]


def run_main(config, workdir, capsys) -> str:
    """run_job as main.py runs it; asserts exit code 2 and returns the one `error:` line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        exit_on_user_error(run_job, config, None if workdir is None else str(workdir))
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: "), lines
    return lines[0]


def _config(**train):
    config = tiny_config(num_steps=1)
    config.train.checkpoint_every = 1
    config.train.update(train)
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workdir holding a one-step run of `_config()` (its checkpoint and config.json)."""
    workdir = tmp_path_factory.mktemp("trained") / "run"
    assert train_job.run(_config(), str(workdir))["step"] == 1
    return workdir


def _copy(trained, to: Path) -> Path:
    shutil.copytree(trained, to)
    return to


@pytest.mark.parametrize(
    "section,field,value,fragment",
    [
        ("data", "batch_size", 0, "data.batch_size=0 must be >= 1"),
        ("train", "num_steps", 0, "train.num_steps=0 must be >= 1"),
        ("train", "num_steps", -3, "train.num_steps=-3 must be >= 1"),
        ("data", "crop_size", 100, "data.crop_size=100 must be a positive multiple of 16"),
    ],
)
def test_bad_training_values_are_refused_before_anything_is_written(
    tmp_path, capsys, section, field, value, fragment
):
    config = tiny_config()
    config[section][field] = value
    line = run_main(config, tmp_path, capsys)
    assert fragment in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]  # no config.json, no checkpoint


@pytest.mark.parametrize("crop,nearest", [(100, "=96 or 112"), (8, "=16."), (390, "=384 or 400")])
def test_crop_size_message_names_the_nearest_valid_values(tmp_path, capsys, crop, nearest):
    config = tiny_config()
    config.data.crop_size = crop
    assert f"--config.data.crop_size{nearest}" in run_main(config, tmp_path, capsys)


def _variant_configs() -> list[Path]:
    """The bundled config files whose get_config takes a variant argument."""
    found = []
    for path in sorted((ROOT / "configs").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if getattr(module, "get_config", None) and inspect.signature(module.get_config).parameters:
            found.append((path, module))
    return found


def test_every_config_with_variants_refuses_an_unknown_one():
    configs = _variant_configs()
    assert {p.name for p, _ in configs} >= {
        "synthetic_cpu.py",
        "pretrain_static.py",
        "main_davis_ytvos.py",
    }
    for path, module in configs:
        assert module.get_config("tiny").train.num_steps == 2  # the known variant still works
        with pytest.raises(ConfigError, match=f"unknown variant 'huge' of configs/{path.name}; "):
            module.get_config("huge")


@pytest.mark.parametrize(
    "config,fragments",
    [
        (
            "configs/synthetic_cpu.py:huge",
            [
                "unknown variant 'huge' of configs/synthetic_cpu.py; its variants are tiny",
                "--config configs/synthetic_cpu.py:tiny",
            ],
        ),
        ("configs/segment.py:huge", ["config file configs/segment.py has no variants", ":huge"]),
    ],
)
def test_unknown_variant_through_main_py(tmp_path, config, fragments):
    assert_user_error(main_py("--config", config, "--workdir", tmp_path), *fragments)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("VALUE = 1\n", "has no get_config(); define get_config()"),
        (
            "def get_config():\n    raise KeyError('data_root')\n",
            "get_config() raised KeyError: 'data_root'; fix the config file",
        ),
    ],
)
def test_config_file_without_or_with_a_failing_get_config(tmp_path, text, fragment):
    path = tmp_path / "mine.py"
    path.write_text(text)
    result = main_py("--config", path, "--workdir", tmp_path / "out")
    assert_user_error(result, f"config file {path}", fragment)


@pytest.mark.slow
def test_non_finite_loss_names_its_step_and_that_nothing_was_saved(tmp_path, capsys, monkeypatch):
    # A step that diverges at once, without compiling the real one (tests/test_train_logging.py
    # covers a divergence after a saved step).
    def diverging(state, batch_stats, batch):
        return state, {"loss": jnp.float32(np.inf)}

    monkeypatch.setattr(train_job, "make_train_step", lambda *args, **kwargs: diverging)
    line = run_main(_config(), tmp_path, capsys)
    assert "non-finite loss inf at step 1; stopped before saving it" in line, line
    assert f"no checkpoint saved yet in {tmp_path / 'checkpoints'}" in line, line
    assert not (tmp_path / "checkpoints" / "1").exists()


@pytest.mark.slow
def test_resume_with_changed_settings_is_refused_naming_them(trained, tmp_path, capsys):
    workdir = _copy(trained, tmp_path / "run")
    saved = (workdir / "config.json").read_text()
    config = _config(lr=1e-2)
    config.data.batch_size = 4
    line = run_main(config, workdir, capsys)
    assert f"{workdir} holds a run with other settings" in line, line
    assert "data.batch_size: 2 -> 4; train.lr: 0.001 -> 0.01" in line, line
    assert "Pass --workdir DIR for a new run, or --config.resume_changed=True" in line, line
    assert (workdir / "config.json").read_text() == saved  # not overwritten
    assert not list(workdir.glob("config.previous-*"))


@pytest.mark.slow
def test_resume_with_harmless_changes_and_with_resume_changed(trained, tmp_path):
    workdir = _copy(trained, tmp_path / "run")
    harmless = _config(log_every=5, checkpoint_every=7, eval_every=0, keep_checkpoints=1)
    harmless.train.progress_bar = True
    assert train_job.run(harmless, str(workdir))["step"] == 1  # resumed at its end: no step run
    assert json.loads((workdir / "config.json").read_text())["train"]["log_every"] == 5
    assert not list(workdir.glob("config.previous-*"))

    for n, lr in ((1, 1e-2), (2, 3e-2)):
        changed = _config(lr=lr)
        changed.resume_changed = True
        assert train_job.run(changed, str(workdir))["step"] == 1
        assert json.loads((workdir / "config.json").read_text())["train"]["lr"] == lr
        previous = json.loads((workdir / f"config.previous-{n}.json").read_text())
        assert previous["train"]["lr"] == (1e-3 if n == 1 else 1e-2)


@pytest.mark.slow
def test_default_workdir_with_an_unrelated_run_says_to_pass_workdir(
    trained, tmp_path, capsys, monkeypatch
):
    _copy(trained, tmp_path / "workdir")  # what an earlier run without --workdir left here
    monkeypatch.chdir(tmp_path)
    config = _config()
    config.model.key_dim = 16
    line = run_main(config, None, capsys)
    assert "workdir holds a run with other settings (model.key_dim: 8 -> 16)" in line, line
    assert "Pass --workdir DIR for a new run" in line, line


def test_a_new_run_length_counts_only_when_the_trained_steps_would_change():
    config = tiny_config(num_steps=20)  # constant lr
    assert run_length_is_harmless(config, old_num_steps=10, done=10)
    config.train.lr_schedule = "poly"
    assert not run_length_is_harmless(config, old_num_steps=10, done=5)
    config.train.warmup_steps = 50  # still warming up: the poly decay has not started
    assert run_length_is_harmless(config, old_num_steps=10, done=5)
    config.train.lr_schedule, config.train.warmup_steps = "constant", 0
    config.data.max_skip = ml_collections.ConfigDict(
        {"kind": "stcn", "total_clips": 0, "values": (5, 10), "fractions": (0.1,)}
    )
    assert not run_length_is_harmless(config, old_num_steps=10, done=5)  # stage 2 from step 1
    assert run_length_is_harmless(config, old_num_steps=10, done=1)


def test_changed_settings_ignores_harmless_fields_and_compares_new_ones_with_defaults():
    old = {"train": {"num_steps": 10, "lr": 0.1, "log_every": 1}, "eval": {"max_videos": 1}}
    new = {"train": {"num_steps": 20, "lr": 0.1, "log_every": 5}, "eval": {"max_videos": 3}}
    assert changed_settings(old, new) == ["train.num_steps: 10 -> 20"]
    assert changed_settings(old, new, ignore=("train.num_steps",)) == []
    # A field the saved config predates counts only when it is not the default.
    assert changed_settings(old, {**old, "seed": 0}, {"seed": 0}) == []
    assert changed_settings(old, {**old, "seed": 3}, {"seed": 0}) == ["seed: 0 -> 3"]
    assert changed_settings(old, {**old, "extra": 1}) == ["extra: (absent) -> 1"]
