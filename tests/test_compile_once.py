"""The per-frame step compiles once per (resolution, objects, capacity) and never again."""

import numpy as np

from stm_jax.inference import stepper as step_module
from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.inference.whole_video import segment_video
from stm_jax.memory.config import MemoryConfig
from tests.model_fixtures import TINY, tiny_variables
from tests.parity_utils import random_video


def test_forty_frames_capacity_four_traces_the_step_once():
    variables = tiny_variables()
    stepper = Stepper(TINY, MemoryConfig(capacity=4, chunk_frames=2))
    before = dict(step_module.TRACE_COUNTS)
    frames, labels = random_video(40, 36, 52, 2, seed=0)
    outputs = list(segment_video(stepper, variables, list(frames), labels, 2))
    assert len(outputs) == 40 and outputs[5].shape == (36, 52) and outputs[5].dtype == np.uint8
    assert step_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert step_module.TRACE_COUNTS["reset_slot"] - before["reset_slot"] == 1

    # A second video of the same size and object count: no new trace at all.
    frames2, labels2 = random_video(40, 36, 52, 2, seed=1)
    list(segment_video(stepper, variables, list(frames2), labels2, 2))
    assert step_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert step_module.TRACE_COUNTS["reset_slot"] - before["reset_slot"] == 1


def test_memory_stays_bounded_and_first_frame_kept():
    variables = tiny_variables()
    stream = VideoStream(Stepper(TINY, MemoryConfig(capacity=4, chunk_frames=2)), variables)
    frames, labels = random_video(23, 32, 32, 1, seed=2)
    stream.start(frames[0], labels, 1)
    for t in range(1, 23):
        stream.step(frames[t])
    held = [int(i) for i in np.asarray(stream.state.video.bank.frame_index[0]) if i >= 0]
    assert held == [0, 15, 20, 22]
