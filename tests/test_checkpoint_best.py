"""One checkpoint manager keeps the latest N steps plus the best in-training J&F step.

The train job's evaluation is replaced by decreasing scores, so the best step is older than the
latest steps kept: W/checkpoints must hold exactly the latest `keep_checkpoints` steps plus the best
one, W/best must not be written, and the default ('best') loaders must pick the best step. A workdir
of an older run, with its best step in W/best, is still read.
"""

import shutil

import numpy as np
import pytest

from stm_jax import checkpoint_io
from stm_jax.jobs import train as train_job
from stm_jax.training.metric_writer import read_jsonl
from tests.test_train_e2e import load_config

pytestmark = pytest.mark.slow  # a 6-step training run

SCORES = [0.9, 0.5, 0.1]  # evaluations at steps 2, 4, 6: the first is the best


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("best") / "run"
    config = load_config("synthetic_cpu")
    t = config.train
    t.num_steps, t.checkpoint_every, t.eval_every, t.keep_checkpoints = 6, 1, 2, 2
    scores = iter(SCORES)

    def fake_evaluate(*args, return_predictions=False, **kwargs):
        jf = next(scores)
        scores_now = {"J&F": jf, "J": jf, "F": jf}
        return (scores_now, {}) if return_predictions else scores_now

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_job, "evaluate", fake_evaluate)
        result = train_job.run(config, str(workdir))
    return workdir, result


def test_one_manager_keeps_latest_and_best(run):
    workdir, result = run
    assert result["step"] == 6
    assert sorted(p.name for p in workdir.iterdir() if p.is_dir()) == ["checkpoints", "tensorboard"]
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir())
    assert steps == [2, 5, 6]  # best (2) + latest 2; 4 was evaluated (0.5) but neither
    assert checkpoint_io.step_score(workdir / "checkpoints", 2) == pytest.approx(0.9)
    assert checkpoint_io.step_score(workdir / "checkpoints", 6) == pytest.approx(0.1)
    assert checkpoint_io.step_score(workdir / "checkpoints", 5) is None  # not evaluated


def test_loaders_pick_the_best_step(run):
    workdir, result = run
    evals = [r["eval/J&F"] for r in read_jsonl(workdir / "metrics.jsonl") if "eval/J&F" in r]
    assert evals == pytest.approx(SCORES)
    assert checkpoint_io.find_checkpoint(workdir) == (workdir / "checkpoints", 2)
    assert checkpoint_io.find_checkpoint(workdir, "latest") == (workdir / "checkpoints", 6)
    meta = checkpoint_io.read_meta(workdir)
    assert meta["step"] == 2 and meta["score"] == pytest.approx(max(evals))
    assert checkpoint_io.read_meta(workdir, "latest")["step"] == 6
    _, best = checkpoint_io.load_trained_model(workdir)
    _, latest = checkpoint_io.load_trained_model(workdir, "latest")
    kernel = lambda v: v["params"]["Decoder"]["pred2"]["kernel"]  # noqa: E731
    np.testing.assert_array_equal(kernel(latest), kernel(result["variables"]))
    assert not np.array_equal(kernel(best), kernel(latest))  # step 2's weights, not step 6's


def test_older_workdir_with_best_folder_is_still_read(run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run[0], old)
    # An older run's layout: its best step in W/best (score in meta only), latest in checkpoints/.
    (old / "best").mkdir()
    shutil.move(old / "checkpoints" / "2", old / "best" / "2")
    shutil.rmtree(old / "best" / "2" / "metrics")
    assert checkpoint_io.find_checkpoint(old) == (old / "best", 2)
    assert checkpoint_io.read_meta(old)["score"] == pytest.approx(0.9)
    assert checkpoint_io.best_score(old) == pytest.approx(0.9)
    assert checkpoint_io.find_checkpoint(old, "latest") == (old / "checkpoints", 6)
