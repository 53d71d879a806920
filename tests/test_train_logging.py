"""Metric writer: JSONL lines and TensorBoard scalars (tensorboardX) read back by TensorBoard's own
loader; non-finite loss stop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax import checkpoint_io
from stm_jax.jobs import train as train_job
from stm_jax.training.metric_writer import MetricWriter, read_jsonl
from tests.train_fixtures import read_tensorboard_scalars, tiny_config


def test_metric_writer_jsonl_and_tensorboard(tmp_path):
    writer = MetricWriter(tmp_path)
    writer.write(1, {"loss": 1.5, "lr": 1e-5, "note": "text"}, prefix="train/")
    writer.write(2, {"loss": 0.1, "lr": 2e-5, "grad_norm": float("nan")}, prefix="train/")
    writer.write(2, {"J&F": 0.75, "J": 0.7}, prefix="eval/")
    writer.write(10, {"loss": np.float64(-3.25), "steps": 7}, prefix="train/")
    writer.close()

    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 2, 10]
    assert records[0]["train/loss"] == 1.5 and records[0]["train/note"] == "text"
    assert records[2]["eval/J&F"] == 0.75  # JSONL keeps keys verbatim

    (events_file,) = (tmp_path / "tensorboard").iterdir()
    assert events_file.name.startswith("events.out.tfevents.")
    scalars = read_tensorboard_scalars(tmp_path / "tensorboard")
    # Strings and NaN stay out of TensorBoard; '&' is not a legal tag character there.
    assert sorted(scalars) == ["eval/J", "eval/J_F", "train/loss", "train/lr", "train/steps"]
    steps = {tag: [s for s, _ in points] for tag, points in scalars.items()}
    assert steps == {
        "eval/J": [2],
        "eval/J_F": [2],
        "train/loss": [1, 2, 10],
        "train/lr": [1, 2],
        "train/steps": [10],
    }
    values = {tag: [v for _, v in points] for tag, points in scalars.items()}
    np.testing.assert_allclose(values["train/loss"], [1.5, 0.1, -3.25], rtol=1e-7)
    np.testing.assert_allclose(values["train/lr"], [1e-5, 2e-5], rtol=1e-7)  # float32 precision
    np.testing.assert_allclose(values["eval/J_F"] + values["eval/J"], [0.75, 0.7], rtol=1e-7)
    assert values["train/steps"] == [7.0]


def test_inactive_metric_writer_writes_nothing(tmp_path):
    writer = MetricWriter(tmp_path, active=False)
    writer.write(1, {"loss": 1.0})
    writer.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real_make = train_job.make_train_step

    def make_poisoned(*args, **kwargs):
        step = real_make(*args, **kwargs)
        calls = {"n": 0}

        def poisoned(state, batch_stats, batch):
            state, metrics = step(state, batch_stats, batch)
            calls["n"] += 1
            if calls["n"] == 3:  # the third update "diverges"
                metrics = {**metrics, "loss": jnp.float32(np.nan)}
            return state, metrics

        return poisoned

    monkeypatch.setattr(train_job, "make_train_step", make_poisoned)
    config = tiny_config(num_steps=6)
    config.train.checkpoint_every = 2
    with pytest.raises(train_job.NonFiniteLossError, match="last good checkpoint is step 2"):
        train_job.run(config, str(tmp_path))
    directory, step = checkpoint_io.find_checkpoint(tmp_path, which="latest")
    assert step == 2 and sorted(p.name for p in directory.iterdir() if p.name.isdigit()) == ["2"]
    _, variables = checkpoint_io.load_trained_model(tmp_path, which="latest")
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(variables))
