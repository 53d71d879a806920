"""STCN's protocol never reads nor keeps a non-memory frame, so `Core.memorize` skips its value
encoding (one `lax.cond` for the batch). These tests run the same videos with the skip on and off
(`Core.skips_unused_encoding`): the probabilities are bit-identical for every policy, with commits,
evictions, corrections, late objects and batched slots; the encoder really runs only on the frames
that need it (a runtime counter inside the encoding); and the step still compiles once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.core import Core
from stm_jax.inference import stepper as step_module
from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables
from tests.model_fixtures import TINY, tiny_variables
from tests.parity_utils import random_video

TINY_STCN = ModelConfig(
    family="stcn",
    backbone="tiny",
    value_backbone="tiny",
    key_dim=16,
    value_dim=32,
    decoder_dim=16,
    max_objects=3,
)
FRAMES, HEIGHT, WIDTH = 24, 40, 56
# capacity 4 fills at frame 10 and evicts from frame 15 on; corrections at a non-memory frame
# (7) and a memory frame (15) pin into the second permanent slot, then replace it.
POLICY_MEMORY = {
    "oldest": {},
    "none": {},
    "least_used": {},
    "long_term": {"long_term_prototypes": 4, "long_term_size": 8},
}


@pytest.fixture(scope="module")
def stcn_variables():
    return init_variables(jax.random.key(3), TINY_STCN)


def counting(stepper: Stepper, skip: bool) -> list:
    """Sets the stepper's skip (before its first trace) and counts every encoding run: a debug
    callback inside `encode_memory` fires only where the compiled program executes it."""
    core, runs = stepper.core, []
    core.skips_unused_encoding = skip
    encode = core.encode_memory

    def counted(*args, **kwargs):
        jax.debug.callback(lambda: runs.append(1))
        return encode(*args, **kwargs)

    core.encode_memory = counted
    return runs


_STREAMED = {}


def streamed(variables, memory: dict, skip: bool) -> tuple:
    """`stream_video` run once per (memory, skip) in this module: the unskipped-rule tests share
    the default policy's skipped run (each run traces and compiles its own steps)."""
    key = (tuple(sorted(memory.items())), skip)
    if key not in _STREAMED:
        _STREAMED[key] = stream_video(variables, memory, skip)
    return _STREAMED[key]


def stream_video(variables, memory: dict, skip: bool, skip_all: bool = False):
    """One video with a late object, a correction at a non-memory frame and one at a memory frame;
    returns (probabilities per frame, encodings per frame, the final bank's frame indices).
    `skip_all`: a wrong rule that skips memory frames too."""
    stepper = Stepper(TINY_STCN, {"capacity": 4, "chunk_frames": 2, "permanent_slots": 2, **memory})
    runs = counting(stepper, skip)
    if skip_all:
        stepper.core._temporary_is_used = lambda bank, index: jnp.bool_(False)
    frames, labels = random_video(FRAMES, HEIGHT, WIDTH, 3, seed=5)
    first = np.where(labels == 3, 0, labels).astype(np.uint8)  # object 3 appears at frame 3
    stream = VideoStream(stepper, variables)
    stream.start(frames[0], first, 3)
    outputs, encodings = [], []
    for t in range(1, FRAMES):
        before = len(runs)
        if t == 3:
            late = np.where(labels == 3, 3, 0).astype(np.uint8)
            probs = stream.step(frames[t], given=(late, [3]))
        else:
            probs = stream.step(frames[t])
        if t in (7, 15):
            predicted = np.asarray(stream.last_labels)
            probs = stream.correct(np.where(predicted == 1, 2, predicted).astype(np.uint8))
        outputs.append(np.asarray(probs))
        jax.effects_barrier()
        encodings.append(len(runs) - before)
    bank = np.asarray(stream.state.video.bank.frame_index[0])
    return outputs, encodings, bank


# 'oldest' (the default) in the quick tier; the other policies compile their own steps (slow tier).
@pytest.mark.parametrize(
    "policy",
    ["oldest"]
    + [pytest.param(p, marks=pytest.mark.slow) for p in ("least_used", "long_term", "none")],
)
def test_stcn_outputs_are_bit_identical_with_the_skip(stcn_variables, policy):
    memory = {"eviction": policy, **POLICY_MEMORY[policy]}
    skipped, skipped_runs, skipped_bank = streamed(stcn_variables, memory, skip=True)
    full, full_runs, full_bank = streamed(stcn_variables, memory, skip=False)
    for t, (a, b) in enumerate(zip(skipped, full), start=1):
        np.testing.assert_array_equal(a, b, f"frame {t}")
    np.testing.assert_array_equal(skipped_bank, full_bank)
    # Without the skip every step and correction encodes; with it, only memory frames
    # (t % 5 == 0) encode in the step, and the corrections (7, 15) re-encode their frame.
    assert full_runs == [1 + (t in (7, 15)) for t in range(1, FRAMES)]
    assert skipped_runs == [(t % 5 == 0) + (t in (7, 15)) for t in range(1, FRAMES)]
    # The video committed and evicted: frame 0 and the pinned correction (15 replaced 7) stay.
    held = [int(i) for i in skipped_bank if i >= 0]
    assert held[:2] == [0, 15] and len(held) == 4 and held[-1] == FRAMES - 1
    if policy != "none":
        assert 20 in held  # the last memory frame went in, evicting an older one


@pytest.mark.slow
def test_a_rule_that_skips_memory_frames_changes_the_outputs(stcn_variables):
    """The comparison above can fail: skipping memory frame 5's encoding too changes frame 6, the
    first frame that reads it, and not the frames before."""
    default = {"eviction": "oldest"}  # the default policy: the skipped run of the test above
    right, _, _ = streamed(stcn_variables, default, skip=True)
    wrong, wrong_runs, _ = stream_video(stcn_variables, default, skip=True, skip_all=True)
    for t in range(1, 6):
        np.testing.assert_array_equal(wrong[t - 1], right[t - 1], f"frame {t}")
    assert np.abs(wrong[5] - right[5]).max() > 1e-3  # frame 6
    assert wrong_runs == [int(t in (7, 15)) for t in range(1, FRAMES)]  # corrections only


@pytest.mark.slow
def test_batched_slots_encode_when_any_active_slot_needs_it(stcn_variables):
    """Two slots whose memory frames differ (the second video starts 2 frames later, then idles):
    each step encodes when an active slot is at a memory frame, and both videos' outputs are
    those of the unskipped step."""
    frames, labels = random_video(14, HEIGHT, WIDTH, 2, seed=6)
    results = {}
    for skip in (True, False):
        stepper = Stepper(TINY_STCN, {"capacity": 3, "chunk_frames": 2})
        runs = counting(stepper, skip)
        state = stepper.empty(stcn_variables, 2, HEIGHT, WIDTH, 2)
        valid = np.ones((2,), bool)
        state = stepper.reset_slot(stcn_variables, state, np.int32(0), frames[0], labels, valid)
        outputs, encodings = [], []
        for t in range(1, 14):
            if t == 2:
                state = stepper.reset_slot(
                    stcn_variables, state, np.int32(1), frames[0], labels, valid
                )
            active = np.array([True, 2 <= t < 10])
            batch = np.stack([frames[t], frames[t - 1]])
            before = len(runs)
            _, probs, state = stepper.step(stcn_variables, batch, state, active)
            jax.effects_barrier()
            encodings.append(len(runs) - before)
            outputs.append(np.asarray(probs)[active])
        results[skip] = outputs, encodings
    for t, (a, b) in enumerate(zip(results[True][0], results[False][0]), start=1):
        np.testing.assert_array_equal(a, b, f"frame {t}")
    # Slot 0 is at frame t, slot 1 (active for t in 2..9) at frame t - 1 of its video.
    expected = [(t % 5 == 0) or (2 <= t < 10 and (t - 1) % 5 == 0) for t in range(1, 14)]
    assert results[True][1] == [int(e) for e in expected]
    assert results[False][1] == [1] * 13


def test_stm_reads_the_previous_frame_so_every_frame_is_encoded():
    """STM's protocol reads the previous frame: no cond, an encoding at every step."""
    stepper = Stepper(TINY, MemoryConfig(capacity=4, chunk_frames=2))
    assert not stepper.core._may_skip_encoding()
    runs = counting(stepper, skip=True)
    frames, labels = random_video(5, 32, 32, 2, seed=7)
    stream = VideoStream(stepper, tiny_variables())
    stream.start(frames[0], labels, 2)
    for frame in frames[1:]:
        stream.step(frame)
    jax.effects_barrier()
    assert len(runs) == 5  # frame 0 and every later frame


def test_training_never_skips():
    """The training forward's Core is differentiable and reads every clip frame: no skip, so its
    values and gradients are those of the unconditional encoding."""
    memory = MemoryConfig(similarity="l2", mem_every=5, read_previous=False)
    assert Core(TINY_STCN, memory)._may_skip_encoding()
    assert not Core(TINY_STCN, memory, differentiable=True)._may_skip_encoding()
    assert not Core(TINY_STCN, memory.for_training_clip(3))._may_skip_encoding()


def test_the_skipping_step_compiles_once(stcn_variables):
    stepper = Stepper(TINY_STCN, {"capacity": 4, "chunk_frames": 2})
    before = dict(step_module.TRACE_COUNTS)
    for seed in (8, 9):
        frames, labels = random_video(12, HEIGHT, WIDTH, 2, seed=seed)
        stream = VideoStream(stepper, stcn_variables)
        stream.start(frames[0], labels, 2)
        for frame in frames[1:]:
            stream.step(frame)
    assert step_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert step_module.TRACE_COUNTS["reset_slot"] - before["reset_slot"] == 1
    assert stepper.core._may_skip_encoding()
