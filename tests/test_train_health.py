"""Health checks in the trainer: metrics at the first and every log step, warnings, dry runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stm_jax.jobs import train as train_job
from stm_jax.training.health import health_warnings
from tests.train_fixtures import tiny_config


@pytest.mark.slow
def test_dry_run_reports_health_and_saves_nothing(tmp_path, capsys):
    config = tiny_config(num_steps=100)
    config.train.update(dry_run=2, log_every=50, checkpoint_every=1)
    result = train_job.run(config, str(tmp_path))
    assert result["step"] == 2 and len(result["health_reports"]) == 2
    assert not any((tmp_path / "checkpoints").glob("[0-9]*"))
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # the first step and the last, not only log steps
    for module in ("Encoder_M", "Encoder_Q", "KV_M_r4", "KV_Q_r4", "Decoder"):
        assert rows[0][f"train/grad_norm/{module}"] > 0
    assert 0 <= rows[0]["train/saturated_fraction"] < 0.05
    assert rows[0]["train/max_skip"] == 1 and "train/data/resampled_synthetic" in rows[0]
    out = capsys.readouterr().out
    assert "[health] step 0" in out and "grad norm per module" in out
    assert "past soft aggregation's clamp" not in out


@pytest.mark.slow
def test_dead_start_is_warned_with_the_fix(tmp_path, capsys, monkeypatch):
    original = train_job.initial_variables

    def saturated_init(*args):
        variables, origin = original(*args)
        variables["params"]["Decoder"]["pred2"]["bias"] = np.array([0.0, 1e4], np.float32)
        return variables, origin

    monkeypatch.setattr(train_job, "initial_variables", saturated_init)
    config = tiny_config(num_steps=1)
    config.train.dry_run = 1
    train_job.run(config, str(tmp_path))
    out = capsys.readouterr().out
    assert "100% of foreground pixels are past soft aggregation's clamp" in out
    assert "PyTorch's default init" in out
    dead = "Decoder, Encoder_M, Encoder_Q, KV_M_r4, KV_Q_r4"
    assert f"modules with exactly zero gradient at step 0: {dead}" in out


def test_warnings_only_when_something_is_wrong():
    healthy = {"saturated_fraction": 0.01, "grad_norm/Decoder": 1.0, "grad_norm/KV_M_r4": 0.5}
    assert health_warnings(healthy, first_step=True) == []
    dead = dict(healthy, **{"grad_norm/KV_M_r4": 0.0})
    assert "KV_M_r4" in health_warnings(dead, first_step=True)[0]
    assert health_warnings(dead, first_step=False) == []  # a zero gradient later is not flagged
