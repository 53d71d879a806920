"""Curriculum, frame sampling, object packing, augmentation and static-image clips."""

from __future__ import annotations

import numpy as np
import pytest

from stm_jax.data.augment import AugmentParams, augment_clip
from stm_jax.data.sampling import (
    max_skip,
    max_skip_at_step,
    pack_clip,
    pick_objects,
    sample_frame_indices,
)
from stm_jax.data.static_clips import image_to_clip, paste_objects, static_params
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.data.video import ImageRecord


def test_max_skip_schedules_count_clips_at_batch_1_and_4():
    """Training-Code-of-STM: +1 every 3000 clips up to 25 -- every 3000 updates at batch 1, every
    750 at batch 4; STCN's switches at fractions of train.num_steps whatever the batch."""
    stm = {"kind": "stm", "start": 0, "end": 25, "every_clips": 3000}
    steps_b1 = (0, 2999, 3000, 5999, 6000, 74_999, 75_000, 10**6)
    assert [max_skip_at_step(s, 1, stm) for s in steps_b1] == [0, 0, 1, 1, 2, 24, 25, 25]
    steps_b4 = (0, 749, 750, 1499, 1500, 18_749, 18_750, 10**6)
    assert [max_skip_at_step(s, 4, stm) for s in steps_b4] == [0, 0, 1, 1, 2, 24, 25, 25]
    values, fractions = (5, 10, 15, 20, 25, 5), (0.1, 0.2, 0.3, 0.4, 0.9)
    checkpoints = {
        1: (0, 99, 100, 250, 399, 400, 899, 900, 999),
        4: (0, 24, 25, 62, 99, 100, 224, 225, 249),
    }
    for batch, num_steps in ((1, 1000), (4, 250)):
        stcn = {
            "kind": "stcn",
            "total_clips": num_steps * batch,
            "values": values,
            "fractions": fractions,
        }
        steps = checkpoints[batch]  # the same fractions of the run: 0, <0.1, 0.1, 0.25, ...
        expected = [5, 5, 10, 15, 20, 25, 25, 5, 5]
        assert [max_skip_at_step(s, batch, stcn) for s in steps] == expected, batch
    assert max_skip(123, {"kind": "constant", "value": 7}) == 7
    with pytest.raises(ValueError, match="unknown"):
        max_skip(0, {"kind": "cosine"})
    with pytest.raises(ValueError, match="every_clips"):
        max_skip(0, {"kind": "stm", "start": 0, "end": 25, "every": 3000})
    with pytest.raises(ValueError, match="total_clips"):
        max_skip(0, {"kind": "stcn", "total_clips": 0, "values": values, "fractions": fractions})


def test_shipped_stage2_config_is_training_code_of_stm_curriculum():
    from configs.main_davis_ytvos import get_config

    config = get_config()
    schedule = dict(config.data.max_skip)
    batch = config.data.batch_size
    assert max_skip_at_step(3000 // batch - 1, batch, schedule) == 0
    assert max_skip_at_step(3000 // batch, batch, schedule) == 1
    assert max_skip_at_step(75_000 // batch, batch, schedule) == 25


def test_sample_frame_indices_ordered_and_bounded():
    rng = np.random.default_rng(0)
    for skip in (0, 1, 5, 25):
        for length in (3, 4, 10, 60):
            idx = sample_frame_indices(rng, length, 3, skip)
            gaps = np.diff(idx)
            assert 0 <= idx[0] and idx[-1] < length
            assert (gaps >= 1).all() and (gaps <= skip + 1).all()
            if skip == 0:
                assert (gaps == 1).all()
    assert sample_frame_indices(rng, 2, 3, 5) in ([0, 0, 1], [0, 1, 1], [0, 0, 0], [1, 1, 1])
    for _ in range(20):  # objects only from frame 7 on: the clip starts there
        idx = sample_frame_indices(rng, 10, 3, 25, first_candidates=[7, 8, 9])
        assert idx[0] >= 7 and idx == sorted(idx)


def test_pick_and_pack_objects():
    labels = np.zeros((2, 4, 5), np.uint8)
    labels[:, 0, :] = 4  # object 4: 5 px per frame
    labels[0, 1, 0] = 2  # object 2: 1 px in frame 0 (too small)
    labels[1, 2, :3] = 7  # object 7 absent from frame 0: never kept
    labels[:, 3, 4] = 255
    ids = pick_objects(labels[0], np.random.default_rng(0), 3, min_pixels=2)
    assert ids == [4]
    sample = pack_clip(np.zeros((2, 4, 5, 3), np.uint8), labels, ids, max_objects=3)
    assert sample["labels"].dtype == np.int32 and set(np.unique(sample["labels"])) == {0, 1}
    assert (sample["labels"][:, 0, :] == 1).all() and sample["labels"][1, 2, 0] == 0
    assert (
        sample["void"][:, 3, 4].all()
        and sample["void"].sum() == 2
        and sample["labels"][0, 3, 4] == 0
    )
    assert sample["masks"].shape == (2, 4, 5, 4)
    np.testing.assert_array_equal(sample["masks"].argmax(-1), sample["labels"])
    np.testing.assert_array_equal(sample["masks"].sum(-1), 1.0)
    np.testing.assert_array_equal(sample["object_valid"], [True, False, False])
    assert sample["num_objects"] == 1


def test_augment_clip_deterministic_cropped_and_covering():
    video = make_synthetic_video(3, num_frames=3, height=48, width=64, num_objects=2)
    params = AugmentParams(crop_size=32, resize_shorter=40)
    a = augment_clip(video.frames, video.labels, np.random.default_rng(1), params)
    b = augment_clip(video.frames, video.labels, np.random.default_rng(1), params)
    c = augment_clip(video.frames, video.labels, np.random.default_rng(2), params)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (3, 32, 32, 3) and a[1].shape == (3, 32, 32)
    assert set(np.unique(a[1])) <= {0, 1, 2}
    for seed in range(10):  # the crop covers frame 0's objects
        _, labels = augment_clip(video.frames, video.labels, np.random.default_rng(seed), params)
        assert {1, 2} <= set(np.unique(labels[0]))


def test_image_to_clip_moves_frames_and_paste_adds_objects():
    video = make_synthetic_video(5, num_frames=1, height=48, width=64, num_objects=2)
    record = ImageRecord("img", video.frames[0], video.labels[0])
    rng = np.random.default_rng(0)
    frames, labels = image_to_clip(record, rng, 3, static_params(32, 40))
    assert frames.shape == (3, 32, 32, 3)
    assert not np.array_equal(labels[0], labels[1]) and not np.array_equal(labels[1], labels[2])
    donor = ImageRecord("donor", np.full((20, 20, 3), 200, np.uint8), np.ones((20, 20), np.uint8))
    pasted_frames, pasted = paste_objects(frames, labels, [donor], rng, min_pixels=10)
    new_id = labels.max() + 1
    assert (pasted == new_id).any(axis=(1, 2)).all()
    assert (pasted_frames[pasted == new_id] == 200).all()
