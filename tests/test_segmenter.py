"""`stm_jax.Segmenter`: equal to the segment job, corrections pinned and read, late objects,
save/restore of the state mid-video."""

from pathlib import Path

import jax
import numpy as np
import pytest

from configs import davis2017_val
from stm_jax import Segmenter
from stm_jax.data.synthetic import make_synthetic_video, write_synthetic_davis
from stm_jax.inference import stepper as step_module
from stm_jax.inference.stream import labels_to_probs
from stm_jax.io.images import read_label_mask, read_rgb
from stm_jax.jobs.segment import run
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.padding import Padding
from tests.model_fixtures import TINY, tiny_variables
from tests.parity_utils import random_video

SHIPPED = Path(__file__).resolve().parents[1] / "stm_jax" / "assets" / "synthetic_cpu"


@pytest.fixture(scope="module")
def shipped():
    return Segmenter.from_checkpoint(SHIPPED, capacity=4)


def test_segmenter_equals_the_segment_job(tmp_path, shipped):
    """Same checkpoint, same memory settings (capacity 4: evictions happen): identical masks."""
    root = write_synthetic_davis(
        tmp_path / "davis", num_train=0, num_val=1, num_frames=24, height=64, width=96
    )
    config = davis2017_val.get_config()
    config.checkpoint = str(SHIPPED)
    config.memory.capacity = 4
    config.data.root = str(root)
    run(config, str(tmp_path / "out"))
    (name,) = (root / "ImageSets/2017/val.txt").read_text().split()
    frames = sorted((root / "JPEGImages/480p" / name).glob("*.jpg"))
    job = [read_label_mask(tmp_path / "out/predictions" / name / f"{p.stem}.png") for p in frames]
    ours = [
        shipped.start(
            read_rgb(frames[0]), read_label_mask(root / "Annotations/480p" / name / "00000.png")
        )
    ]
    ours += [shipped.step(read_rgb(p)) for p in frames[1:]]
    assert len(ours) == 24
    for t, (a, b) in enumerate(zip(job, ours)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {t}")


def tiny_segmenter(**memory):
    config = MemoryConfig(**{"capacity": 4, "chunk_frames": 2, "mem_every": 1, **memory})
    return Segmenter(TINY, tiny_variables(), config)


@pytest.mark.slow
def test_a_correction_stays_in_memory_and_is_read():
    seg = tiny_segmenter(permanent_slots=3)
    frames, labels = random_video(30, 32, 48, 2, seed=3)
    seg.start(frames[0], labels)
    for t in range(1, 6):
        seg.step(frames[t])
    correction = np.zeros_like(labels)
    correction[4:20, 10:30] = 2
    correction[22:30, 30:44] = 1
    assert np.array_equal(seg.correct(correction), correction)

    # The keys the corrected frame must have: frame 5 encoded with the user's mask.
    core = seg.stepper.core
    keys, values = core.encode_memory(
        seg.stream.variables,
        frames[5][None],
        labels_to_probs(correction, TINY.num_slots)[None],
        np.ones((1, 2), bool),
        Padding.for_size(32, 48),
    )
    traces = step_module.TRACE_COUNTS["step"]
    uncorrected = tiny_segmenter(permanent_slots=3)
    uncorrected.start(frames[0], labels)
    for t in range(1, 6):
        uncorrected.step(frames[t])
    for t in range(6, 30):
        bank = jax.tree.map(lambda x: x[0], seg.state.video.bank)  # the stream's one video
        valid = np.asarray(bank.frame_index) >= 0
        held = list(np.asarray(bank.frame_index)[valid])
        # Read by frame t: frame 5 is a valid slot, with the corrected keys.
        assert 5 in held, (t, held)
        slot = held.index(5)
        np.testing.assert_allclose(
            np.asarray(bank.keys)[:, slot], np.asarray(keys)[0], rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(
            np.asarray(bank.values)[:, slot], np.asarray(values)[0], rtol=1e-5, atol=1e-5
        )
        if t >= 8:  # mem_every 1, capacity 4: every frame evicts one; frame 5 is pinned
            assert held[:2] == [0, 5] and held[-1] == t - 1 and len(held) == 4
        probs = seg.step(frames[t], return_probs=True)
        if t == 6:  # the next frame's prediction is computed with the correction
            assert not np.allclose(probs, uncorrected.step(frames[6], return_probs=True))
    assert step_module.TRACE_COUNTS["step"] - traces <= 1  # compiled once (or already)


def object_iou(labels, truth, k):
    return np.sum((labels == k) & (truth == k)) / max(np.sum((labels == k) | (truth == k)), 1)


def test_an_object_added_at_frame_t_is_segmented_from_t_on(shipped):
    """Object 3 absent from the first mask, added at frame 8: no pixel of it before, and from 8
    on it is tracked about as well as when it is given at frame 0 (shipped checkpoint)."""
    video = make_synthetic_video(5, num_frames=20, height=64, width=96, num_objects=3)
    added_at, late, given_at_start = 8, [], []
    shipped.start(video.frames[0], np.where(video.labels[0] == 3, 0, video.labels[0]), 3)
    for t in range(1, 20):
        labels = shipped.step(video.frames[t])
        if t < added_at:
            assert not np.any(labels == 3)
        if t == added_at:
            labels = shipped.add_objects(np.where(video.labels[t] == 3, 3, 0))
        late.append(object_iou(labels, video.labels[t], 3))
    shipped.start(video.frames[0], video.labels[0], 3)
    for t in range(1, 20):
        given_at_start.append(object_iou(shipped.step(video.frames[t]), video.labels[t], 3))
    late, given_at_start = np.array(late[added_at - 1 :]), np.array(given_at_start[added_at - 1 :])
    assert late[0] == 1.0 and late.min() > 0.6 and late.mean() > 0.8, late
    assert late.mean() > given_at_start.mean() - 0.05, (late, given_at_start)


@pytest.mark.slow
@pytest.mark.parametrize("eviction", ["oldest", "long_term"])
def test_save_and_restore_mid_video_gives_identical_outputs(tmp_path, eviction):
    frames, labels = random_video(24, 32, 48, 2, seed=4)
    seg = tiny_segmenter(
        eviction=eviction, permanent_slots=2, long_term_size=8, long_term_prototypes=2
    )
    seg.start(frames[0], labels)
    for t in range(1, 10):
        seg.step(frames[t])
    seg.correct(np.where(labels == 1, 2, labels))
    path = seg.save_state(tmp_path / "state.npz")
    continued = [seg.step(frames[t], return_probs=True) for t in range(10, 24)]

    restored = tiny_segmenter(
        eviction=eviction, permanent_slots=2, long_term_size=8, long_term_prototypes=2
    )
    restored.load_state(path)
    again = [restored.step(frames[t], return_probs=True) for t in range(10, 24)]
    for a, b in zip(continued, again):
        np.testing.assert_array_equal(a, b)
