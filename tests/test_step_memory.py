"""`inference.videos_per_step` from a memory budget: XLA's analysis of the 1- and 2-video steps
predicts the B-video step within 20 %, and the chosen B is the most that fits."""

import dataclasses

import jax
import pytest

from stm_jax.inference import settings
from stm_jax.inference.settings import MAX_VIDEOS_PER_STEP, VideosPerStep
from stm_jax.inference.step_memory import StepMemory, step_bytes, step_memory
from stm_jax.inference.stepper import Stepper
from stm_jax.jobs.config_base import segment_config
from stm_jax.memory.config import MemoryConfig
from tests.model_fixtures import TINY, tiny_variables
from tests.test_inference_settings import FakeDevice

HEIGHT, WIDTH, OBJECTS = 64, 96, 2


@pytest.fixture(scope="module")
def variables():
    return tiny_variables()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_videos_per_step_from_a_budget_matches_xla_within_20_percent(variables, dtype):
    stepper = Stepper(dataclasses.replace(TINY, dtype=dtype), MemoryConfig(capacity=6))
    memory = step_memory(stepper, variables, HEIGHT, WIDTH, OBJECTS)
    weights = sum(x.nbytes for x in jax.tree.leaves(variables))
    assert memory.shared >= weights and memory.per_video > weights  # a tiny model, a big bank
    budget = memory.total(5) + memory.per_video // 2  # room for 5.5 videos
    videos = memory.videos_within(budget)
    assert videos == 5
    actual = step_bytes(stepper, variables, videos, HEIGHT, WIDTH, OBJECTS)
    assert abs(memory.total(videos) - actual) <= 0.2 * actual, (memory, actual)
    assert actual <= budget  # the chosen batch's step, by XLA's own count, fits the budget
    if dtype != "float32":
        return
    # The job's sizer picks the same from a device whose memory makes that budget.
    said = []
    config = segment_config()
    config.inference.memory_fraction = 0.5
    device = FakeDevice("gpu", int(budget / 0.5) + 1)
    sizer = VideosPerStep(config, stepper, device=device, say=said.append)
    assert sizer(variables, HEIGHT, WIDTH, OBJECTS) == 5
    assert sizer(variables, HEIGHT, WIDTH, OBJECTS) == 5 and len(said) == 1  # once per bucket
    assert "5 video(s) per step on Fake accelerator" in said[0] and "XLA's analysis" in said[0]


@pytest.mark.parametrize(
    ("device_bytes", "videos", "note"),
    [(1000, 1, "not even one video fits"), (2**40, MAX_VIDEOS_PER_STEP, "64 is the most")],
)
def test_outside_the_range_one_video_or_the_cap(monkeypatch, device_bytes, videos, note):
    memory = StepMemory(shared=10_000, per_video=1_000_000)
    monkeypatch.setattr(settings, "step_memory", lambda *args: memory)
    said = []
    device = FakeDevice("gpu", device_bytes)
    sizer = VideosPerStep(segment_config(), None, device=device, say=said.append)
    assert sizer(None, HEIGHT, WIDTH, OBJECTS) == videos
    assert note in said[0]
