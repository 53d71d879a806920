"""What training shows and logs: the loss and clips/s over the logging window (bar and metrics.jsonl),
and at each evaluation the held-out videos' side-by-side sheets as TensorBoard images, read back
with TensorBoard's own loader and compared pixel for pixel with the sheets of the predictions."""

import contextlib
import io
import re

import numpy as np
import pytest
from PIL import Image

from stm_jax.jobs import train as train_job
from stm_jax.model.config import ModelConfig
from stm_jax.training.eval_images import ROWS, TILE_WIDTH, prediction_sheets
from stm_jax.training.evaluate import evaluate, load_eval_videos
from stm_jax.training.metric_writer import read_jsonl
from stm_jax.training.progress import StepWindow
from tests.test_train_e2e import load_config


def test_step_window_means_over_the_last_steps():
    now = [0.0]
    window = StepWindow(3, clips_per_step=4, clock=lambda: now[0])
    assert np.isnan(window.loss) and window.clips_per_s == 0.0
    now[0] += 50.0  # the first step compiles
    window.add(6.0, compiled=True)
    assert window.loss == 6.0 and window.steps_per_s == pytest.approx(1 / 50.0)
    for loss, seconds in [(4.0, 1.0), (2.0, 0.5), (3.0, 0.5), (1.0, 1.0)]:
        now[0] += seconds
        window.add(loss)
    assert window.loss == pytest.approx((2.0 + 3.0 + 1.0) / 3)  # older steps left the window
    assert window.steps_per_s == pytest.approx(3 / 2.0)  # compilation is not in the speed
    assert window.clips_per_s == pytest.approx(4 * 3 / 2.0)
    now[0] += 100.0  # an evaluation
    window.restart_clock()
    now[0] += 0.5
    window.add(5.0)
    assert window.steps_per_s == pytest.approx(3 / 2.0)  # 0.5 + 0.5 + 1.0 s: not the 100 s
    assert window.postfix() == {"loss": f"{(3.0 + 1.0 + 5.0) / 3:.4f}", "clips_s": "6.0"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run for the tests below: 5 steps, a log every 2 steps, an evaluation every 2 steps (and
    at the last), the progress bar on; returns also what the bar wrote (stderr)."""
    workdir = tmp_path_factory.mktemp("progress") / "run"
    config = load_config("synthetic_cpu")  # the tiny variant
    t = config.train
    t.num_steps, t.log_every, t.eval_every, t.checkpoint_every = 5, 2, 2, 0
    t.progress_bar = True
    config.eval.source.num_videos = 2
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):  # tqdm writes to sys.stderr
        result = train_job.run(config, str(workdir))
    return config, workdir, result, stderr.getvalue()


@pytest.mark.slow
def test_logged_loss_is_the_windows_mean(run):
    _, workdir, _, _ = run
    rows = {r["step"]: r for r in read_jsonl(workdir / "metrics.jsonl") if "train/loss" in r}
    assert sorted(rows) == [1, 2, 4, 5]  # the first step, then every log_every, and the last
    assert rows[1]["train/loss"] == pytest.approx(rows[1]["train/loss_step"])
    mean = (rows[1]["train/loss_step"] + rows[2]["train/loss_step"]) / 2
    assert rows[2]["train/loss"] == pytest.approx(mean)
    assert rows[2]["train/clips_per_s"] > 0


@pytest.mark.slow
def test_progress_bar_shows_the_window_loss_and_clips_per_s(run):
    _, workdir, _, bar = run
    shown = re.findall(r"loss=([0-9.]+).*?clips_s=([0-9.]+)", bar)
    assert shown, bar[-2000:]
    rows = {r["step"]: r for r in read_jsonl(workdir / "metrics.jsonl") if "train/loss" in r}
    # The last display is after step 5, whose window holds steps 4 and 5; step 4's loss was logged
    # (a log step), step 5's too (the last step).
    final = float(shown[-1][0])
    mean = (rows[4]["train/loss_step"] + rows[5]["train/loss_step"]) / 2
    assert final == pytest.approx(mean, abs=1e-4) and float(shown[-1][1]) > 0


@pytest.mark.slow
def test_each_evaluation_logs_prediction_sheets_as_images(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config, workdir, result, _ = run
    accumulator = EventAccumulator(str(workdir / "tensorboard"), size_guidance={"images": 0})
    accumulator.Reload()
    videos = load_eval_videos(config.eval)
    tags = sorted(accumulator.Tags()["images"])
    assert tags == sorted(f"eval/predictions/{name}" for name, _, _ in videos)
    _, predictions = evaluate(
        ModelConfig.from_config(config.model),
        config.memory,
        result["variables"],
        videos,
        return_predictions=True,
    )
    expected = prediction_sheets(videos, predictions, 2)
    for tag in tags:
        events = accumulator.Images(tag)
        assert [e.step for e in events] == [2, 4, 5]  # every evaluation (each 2 steps, the last)
        logged = np.asarray(Image.open(io.BytesIO(events[-1].encoded_image_string)).convert("RGB"))
        # The last evaluation ran on the final weights: the same predictions, the same sheet.
        np.testing.assert_array_equal(logged, expected[tag.removeprefix("eval/")])
    height, width = videos[0][1].shape[1:3]
    factor = -(-TILE_WIDTH // width)
    assert logged.shape[1] == 3 * width * factor + 2 * 4  # frame | prediction | ground truth
    assert logged.shape[0] > ROWS * height * factor
