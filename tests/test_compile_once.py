"""The per-frame step compiles once per (resolution, objects, capacity) and never again."""

import jax.numpy as jnp
import numpy as np

from stm_jax.inference import step as step_module
from stm_jax.inference.step import FrameStepper
from stm_jax.inference.whole_video import segment_video
from stm_jax.memory.config import MemoryConfig
from tests.model_fixtures import TINY, tiny_variables
from tests.parity_utils import random_video


def test_forty_frames_capacity_four_traces_the_step_once():
    variables = tiny_variables()
    stepper = FrameStepper(TINY, MemoryConfig(capacity=4, chunk_frames=2))
    before = dict(step_module.TRACE_COUNTS)
    frames, labels = random_video(40, 36, 52, 2, seed=0)
    outputs = list(segment_video(stepper, variables, list(frames), labels, 2))
    assert len(outputs) == 40 and outputs[5].shape == (36, 52) and outputs[5].dtype == np.uint8
    assert step_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert step_module.TRACE_COUNTS["init"] - before["init"] == 1

    # A second video of the same size and object count: no new trace at all.
    frames2, labels2 = random_video(40, 36, 52, 2, seed=1)
    list(segment_video(stepper, variables, list(frames2), labels2, 2))
    assert step_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert step_module.TRACE_COUNTS["init"] - before["init"] == 1


def test_memory_stays_bounded_and_first_frame_kept():
    variables = tiny_variables()
    stepper = FrameStepper(TINY, MemoryConfig(capacity=4, chunk_frames=2))
    frames, labels = random_video(23, 32, 32, 1, seed=2)
    state = stepper.init(
        variables, frames[0], np.eye(5, dtype=np.float32)[labels], jnp.ones(1, bool)
    )
    for t in range(1, 23):
        _, state = stepper.step(variables, frames[t], state)
    held = [int(i) for i in np.asarray(state.bank.frame_index) if i >= 0]
    assert held == [0, 15, 20, 22]
