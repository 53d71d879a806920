"""The step's memory estimated before compiling: close to XLA's analysis and never below it at the
largest size; a video that does not fit is refused in one line (exit code 2) before anything
compiles, or segmented downscaled with its masks at the input size (segment job and Segmenter)."""

import dataclasses

import jax
import numpy as np
import pytest
from PIL import Image

from configs import segment
from stm_jax import Segmenter
from stm_jax.cli_errors import EXIT_USER_ERROR, exit_on_user_error
from stm_jax.inference import preflight
from stm_jax.inference import stepper as step_module
from stm_jax.inference.memory_estimate import StepMemoryError, step_estimate, tree_bytes
from stm_jax.inference.memory_fit import SizePlan
from stm_jax.inference.rescale import (
    downscale_frame,
    downscale_labels,
    downscaled_task,
    fitting_size,
    upscale_probs,
)
from stm_jax.inference.scheduler import VideoTask
from stm_jax.inference.sequence_output import StaleOutputError
from stm_jax.inference.step_memory import step_bytes
from stm_jax.inference.stepper import Stepper
from stm_jax.io.images import write_palette_png, write_rgb
from stm_jax.jobs.segment import run
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables
from stm_jax.model.layers import resize_bilinear
from tests.model_fixtures import TINY, tiny_run_config, write_tiny_pth

HEIGHT, WIDTH, FRAMES = 64, 96, 3
STM = ModelConfig(max_objects=10)  # ResNet-50 STM as released


@pytest.fixture(scope="module")
def variables():
    """Random tiny weights by shape: no compiled init (it costs more than these tests on 2 cores)."""
    shapes = jax.eval_shape(lambda: init_variables(jax.random.key(0), TINY))
    rng = np.random.default_rng(0)

    def leaf(path, shape):
        name = jax.tree_util.keystr(path)
        if "var" in name:
            return np.ones(shape.shape, np.float32)
        if "mean" in name:
            return np.zeros(shape.shape, np.float32)
        return (0.2 * rng.standard_normal(shape.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(leaf, shapes)


def test_estimate_brackets_xlas_analysis(variables):
    stepper = Stepper(TINY, MemoryConfig())
    weights = tree_bytes(variables)
    ratios = []
    for height, width, objects in ((64, 96, 1), (128, 192, 2), (192, 320, 1)):
        xla = step_bytes(stepper, variables, 1, height, width, objects)
        estimate = step_estimate(TINY, stepper.memory_config, height, width, objects, weights)
        ratios.append(estimate.total / xla)
    assert all(1.0 <= r <= 1.6 for r in ratios), ratios  # conservative, never optimistic


def test_the_affinity_dominates_at_4k_and_grows_with_objects():
    weights = 150 * 2**20
    one, two = (step_estimate(STM, MemoryConfig(), 2160, 3840, n, weights) for n in (1, 2))
    assert 0.6 < one.affinity / one.total < 0.9 and 35 * 2**30 < one.total < 50 * 2**30
    assert two.affinity == pytest.approx(2 * one.affinity, rel=0.01)  # STM: one key set per object
    small = step_estimate(STM, MemoryConfig(), 480, 864, 1, weights)
    assert small.total < 1.2 * 2**30


def test_fitting_size_and_pytorch_bilinear_frames():
    assert fitting_size(2160, 3840, lambda h, w: h * w <= 1080 * 1920) == (1072, 1904)
    assert fitting_size(100, 100, lambda h, w: False) is None
    frame = np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8)
    reference = np.asarray(resize_bilinear(frame.astype(np.float32), (16, 32)))
    small = downscale_frame(frame, (16, 32))
    assert small.dtype == np.uint8 and np.abs(small - reference).max() <= 0.5 + 1e-3
    probs = np.zeros((2, 2, 3), np.float32)
    probs[..., 0], probs[0, 0] = 1.0, (0.0, 0.0, 1.0)
    labels = upscale_probs(probs, (8, 8))
    assert labels.shape == (8, 8) and labels[0, 0] == 2 and labels[7, 7] == 0


def budget_between(variables, full, small, objects, model=TINY):
    """Available bytes (before the 0.8 memory fraction) that the step fits at `small`, not `full`."""
    estimate = [
        step_estimate(model, MemoryConfig(capacity=4), *size, objects, tree_bytes(variables)).total
        for size in (full, small)
    ]
    assert estimate[1] < estimate[0]
    return int((estimate[0] + estimate[1]) / 2 / 0.8)


def write_video(folder):
    rng = np.random.default_rng(1)
    for index in range(FRAMES):
        write_rgb(
            folder / "frames" / f"{index:05d}.png",
            rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8),
        )
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[8:40, 10:50] = 1
    labels[30:60, 60:90] = 2
    write_palette_png(folder / "00000.png", labels)
    return labels


def test_segment_job_refuses_before_compiling_then_downscales(
    tmp_path, variables, monkeypatch, capsys
):
    pth = write_tiny_pth(tmp_path / "tiny.pth")
    labels = write_video(tmp_path / "video")
    config = tiny_run_config(
        segment,
        pth,
        frames=str(tmp_path / "video" / "frames"),
        first_mask=str(tmp_path / "video" / "00000.png"),
    )
    model = dataclasses.replace(TINY, max_objects=int(config.model.max_objects))
    available = budget_between(variables, (HEIGHT, WIDTH), (32, 48), 2, model)
    monkeypatch.setattr(preflight, "available_memory", lambda device: available)
    traces = dict(step_module.TRACE_COUNTS)
    with pytest.raises(SystemExit) as stop:
        exit_on_user_error(run, config, str(tmp_path / "refused"))
    assert stop.value.code == EXIT_USER_ERROR
    message = capsys.readouterr().err.splitlines()[0]
    assert f"{WIDTH}x{HEIGHT} frames with 2 object(s)" in message
    assert "--config.inference.downscale=True" in message and "memory.capacity" in message
    assert step_module.TRACE_COUNTS == traces  # refused before anything was traced or compiled
    assert not list((tmp_path / "refused").rglob("*.png"))

    config.inference.downscale = True
    run(config, str(tmp_path / "out"))
    assert step_module.TRACE_COUNTS["step"] > traces["step"]
    written = sorted((tmp_path / "out" / "predictions").rglob("*.png"))
    assert len(written) == FRAMES
    for path in written:
        assert Image.open(path).size == (WIDTH, HEIGHT)
    first = np.asarray(Image.open(written[0]))
    np.testing.assert_array_equal(first, labels)  # frame 0 is the input mask, at its size
    assert set(np.unique(np.asarray(Image.open(written[-1])))) <= {0, 1, 2}
    # Downscaled masks are another job's outputs: a run without the flag does not take them as its own.
    config.inference.downscale = False
    with pytest.raises(StaleOutputError):
        run(config, str(tmp_path / "out"))


def test_segmenter_refuses_by_default_and_downscales_with_the_flag(variables, monkeypatch):
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, HEIGHT, WIDTH, 3), np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[10:50, 20:70] = 1
    available = budget_between(variables, (HEIGHT, WIDTH), (32, 48), objects=1)
    monkeypatch.setattr(preflight, "available_memory", lambda device: available)
    memory = {"capacity": 4}
    traces = dict(step_module.TRACE_COUNTS)
    refusing = Segmenter(TINY, variables, memory)
    with pytest.raises(StepMemoryError, match="downscale=True") as error:
        refusing.start(frames[0], mask)
    assert "\n" not in str(error.value) and step_module.TRACE_COUNTS == traces

    segmenter = Segmenter(TINY, variables, memory, downscale=True)
    assert segmenter.start(frames[0], mask).shape == (HEIGHT, WIDTH)
    small = segmenter.run_size
    assert small[0] % 16 == 0 and small[1] % 16 == 0 and small[0] < HEIGHT
    # The same as segmenting the downscaled frames and resizing the probabilities back.
    plain = Segmenter(TINY, variables, memory)
    monkeypatch.setattr(preflight, "available_memory", lambda device: None)
    plain.start(downscale_frame(frames[0], small), downscale_labels(mask, small))
    for frame in frames[1:]:
        labels = segmenter.step(frame)
        expected = upscale_probs(
            plain.step(downscale_frame(frame, small), True), (HEIGHT, WIDTH), 1
        )
        assert labels.shape == (HEIGHT, WIDTH) and 0 < np.mean(labels == 1) < 1  # not uniform
        np.testing.assert_array_equal(labels, expected)
    assert segmenter.step(frames[1], return_probs=True).shape == (HEIGHT, WIDTH, TINY.num_slots)
    assert segmenter.correct(mask).shape == (HEIGHT, WIDTH)


def test_a_downscaled_task_and_its_outputs_at_the_input_size():
    frame = np.full((HEIGHT, WIDTH, 3), 50, np.uint8)
    first = np.zeros((HEIGHT, WIDTH), np.uint8)
    first[:32] = 1
    given = np.zeros((HEIGHT, WIDTH), np.uint8)
    given[40:] = 2
    task = VideoTask("v", [frame, lambda: frame], first, 2, {1: (given, [2])})
    small = downscaled_task(task, (32, 48))
    assert small.size == (32, 48) and small.frames[1]().shape == (32, 48, 3)
    assert small.given_labels[1][0].shape == (32, 48) and small.given_labels[1][1] == [2]
    plan = SizePlan([small], {id(small): task})
    probs = np.zeros((32, 48, 3), np.float32)
    probs[..., 0], probs[16:, :, 2] = 0.4, 0.6
    np.testing.assert_array_equal(plan.labels(small, 0, probs), first)  # the input mask itself
    labels = plan.labels(small, 1, probs)
    assert labels.shape == (HEIGHT, WIDTH) and labels[0, 0] == 0 and labels[-1, -1] == 2
    # Videos that were not downscaled share the probabilities' path: their argmax.
    other = VideoTask("w", [frame], first, 1)
    assert plan.labels(other, 1, probs).shape == (32, 48)
