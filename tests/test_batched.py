"""Many videos per compiled step give each video's one-video result (the same step with one slot,
as `Segmenter` runs it), and compile once per bucket.

Run with the shipped trained checkpoint on generated videos: batching changes XLA's convolution
rounding (~1e-7 for some batch sizes), which a random model, with near-tie pixels everywhere, can
amplify through its memory to ~2e-5 within a few frames; a trained model stays within ~4e-7.
"""

import jax
import numpy as np
import pytest

from stm_jax.checkpoint_io import load_trained_model
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.inference import stepper as batched_module
from stm_jax.inference.scheduler import VideoTask, segment_tasks
from stm_jax.inference.stepper import Stepper
from stm_jax.inference.whole_video import segment_video
from stm_jax.jobs.demo import SHIPPED_CHECKPOINT
from stm_jax.memory.config import MemoryConfig

MEMORY = MemoryConfig(capacity=4, chunk_frames=2, mem_every=2)


def alone(model, task):
    config, variables = model
    stepper = Stepper(config, MEMORY)
    outputs = segment_video(
        stepper,
        variables,
        task.frames,
        task.first_labels,
        task.num_objects,
        task.given_labels,
        return_probs=True,
    )
    return np.stack(list(outputs))


def run_batched(model, tasks, videos_per_step, stepper=None, **kwargs):
    config, variables = model
    stepper = stepper or Stepper(config, MEMORY)
    got = {task.key: {} for task in tasks}
    for task, index, probs in segment_tasks(
        stepper, variables, tasks, videos_per_step, return_probs=True, **kwargs
    ):
        assert index == len(got[task.key]), "a video's frames must arrive in order"
        got[task.key][index] = probs
    return {key: np.stack([frames[i] for i in range(len(frames))]) for key, frames in got.items()}


def make_task(key, length, objects, seed, height=48, width=64, lazy=False):
    video = make_synthetic_video(seed, length, height, width, objects)
    frames = [lambda f=f: f for f in video.frames] if lazy else list(video.frames)
    return VideoTask(key, frames, video.labels[0], objects)


@pytest.fixture(scope="module")
def model():
    """(config, variables) of the shipped checkpoint (tiny backbone, trained, 3 objects)."""
    return load_trained_model(SHIPPED_CHECKPOINT)


def assert_same(batched, single):
    assert batched.shape == single.shape
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(batched.argmax(-1), single.argmax(-1))


def test_batched_videos_equal_each_video_alone_and_trace_once(model):
    # Lengths 6, 3, 8, 5 in 2 slots: video b ends early and c takes its slot, then d takes a's.
    # Object counts 1, 2, 3, 2 are padded into 3 object slots.
    tasks = [
        make_task("a", 6, 1, seed=1),
        make_task("b", 3, 2, seed=2, lazy=True),
        make_task("c", 8, 3, seed=3),
        make_task("d", 5, 2, seed=4, lazy=True),
    ]
    assert [t.num_objects for t in tasks] == [1, 2, 3, 2]
    stepper = Stepper(model[0], MEMORY)
    before = dict(batched_module.TRACE_COUNTS)
    got = run_batched(model, tasks, videos_per_step=2, stepper=stepper)
    assert batched_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert batched_module.TRACE_COUNTS["reset_slot"] - before["reset_slot"] == 1
    for task in tasks:
        assert_same(got[task.key], alone(model, task))

    # A second bucket shape compiles once more; the first shape again compiles nothing. (The
    # one-video runs above traced their own steppers: count from here.)
    before = dict(batched_module.TRACE_COUNTS)
    other = [make_task("e", 4, 3, seed=5, height=32, width=48), make_task("f", 4, 3, seed=6)]
    more = run_batched(model, other + tasks[:2], videos_per_step=2, stepper=stepper)
    assert batched_module.TRACE_COUNTS["step"] - before["step"] == 1
    for task in other + tasks[:2]:
        assert_same(more[task.key], alone(model, task))


@pytest.mark.slow
def test_objects_given_mid_video_equal_the_one_video_step(model):
    """YouTube-VOS: an object given at frame 2 of one slot leaves the other slot untouched."""
    video = make_synthetic_video(7, 6, 48, 64, 2)
    first = np.where(video.labels[0] == 1, 1, 0).astype(np.uint8)
    late = np.where(video.labels[2] == 2, 2, 0).astype(np.uint8)
    given = VideoTask("given", list(video.frames), first, 2, {2: (late, [2])})
    plain = make_task("plain", 5, 2, seed=8)
    before = dict(batched_module.TRACE_COUNTS)
    got = run_batched(model, [given, plain], videos_per_step=2)
    assert batched_module.TRACE_COUNTS["step_given"] - before["step_given"] == 1
    for task in (given, plain):
        assert_same(got[task.key], alone(model, task))


def test_single_frame_video_and_more_slots_than_videos(model):
    tasks = [make_task("one", 1, 1, seed=9), make_task("two", 3, 2, seed=10)]
    got = run_batched(model, tasks, videos_per_step=8)
    assert got["one"].shape == (1, 48, 64, model[0].num_slots)
    for task in tasks:
        assert_same(got[task.key], alone(model, task))


def test_empty_state_traces_the_model_once_per_bucket_shape(model, monkeypatch):
    config, variables = model
    stepper = Stepper(config, MEMORY)
    traces = []
    start = stepper.core.start
    monkeypatch.setattr(stepper.core, "start", lambda *args: traces.append(1) or start(*args))
    first = stepper.empty(variables, 2, 48, 64, 3)
    again = stepper.empty(variables, 2, 48, 64, 3)
    assert len(traces) == 1
    stepper.empty(variables, 3, 48, 64, 3)  # another bucket shape
    assert len(traces) == 2
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
    assert int(first.bank.frame_index.min()) == -1  # an empty bank, not zeros
