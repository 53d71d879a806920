"""The 'focal' training loss (a worked example of a loss): values by hand, its option as a config
field, and a tiny training run selected by `train.loss`."""

import math

import numpy as np
import pytest

from stm_jax.jobs import train as train_job
from stm_jax.jobs.config_base import train_config
from stm_jax.training.loss import LOSSES
from stm_jax.training.metric_writer import read_jsonl
from tests.train_fixtures import tiny_config


def test_focal_loss_by_hand():
    # One frame of two pixels, two slots: p(label) = 0.5 and 0.9; the third pixel is void.
    logits = np.log(np.array([[[[[0.5, 0.5], [0.1, 0.9], [0.3, 0.7]]]]], np.float32))
    labels = np.array([[[[0, 1, 1]]]])
    valid = np.array([[[[True, True, False]]]])
    options = train_config().train
    assert options.focal_gamma == 2.0
    got = np.asarray(LOSSES.get("focal")(logits, labels, valid, 0, options))
    expected = (0.5**2 * -math.log(0.5) + 0.1**2 * -math.log(0.9)) / 2
    np.testing.assert_allclose(got, [[expected]], rtol=1e-5)
    options.focal_gamma = 0.0  # gamma 0 is the plain cross-entropy
    np.testing.assert_allclose(
        LOSSES.get("focal")(logits, labels, valid, 0, options),
        LOSSES.get("ce")(logits, labels, valid, 0, options),
        rtol=1e-6,
    )


@pytest.mark.slow
def test_training_with_the_focal_loss(tmp_path):
    config = tiny_config(num_steps=2)
    config.train.loss = "focal"
    config.train.focal_gamma = 1.0
    train_job.run(config, str(tmp_path / "run"))
    losses = [
        r["train/loss"] for r in read_jsonl(tmp_path / "run/metrics.jsonl") if "train/loss" in r
    ]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)
