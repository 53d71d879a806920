"""`stm_jax.Segmenter` / `VideoStream` inputs: the accepted frame and mask conventions give exactly
the uint8 / int-id results, and every other input is refused with one line naming the problem."""

import re

import numpy as np
import pytest

from stm_jax import Segmenter, assets
from stm_jax.cli_errors import UserError
from stm_jax.inference.input_checks import InputError
from tests.parity_utils import random_video

FRAMES, LABELS = random_video(2, 32, 48, 2, seed=7)  # uint8 [2, 32, 48, 3], ids 0..2
# The shipped checkpoint loads in a fraction of a second (the tiny model's init compiles for long).
SHIPPED = assets.path("synthetic_cpu")
MEMORY = dict(capacity=4, chunk_frames=2, mem_every=1)


@pytest.fixture(scope="module")
def seg():
    """One Segmenter for the module (its step compiles once); started on FRAMES / LABELS."""
    segmenter = Segmenter.from_checkpoint(SHIPPED, **MEMORY)
    segmenter.start(FRAMES[0], LABELS)
    return segmenter


@pytest.fixture(scope="module")
def reference(seg):
    """The labels of frame 1 for uint8 frames and int ids (not all one label)."""
    seg.start(FRAMES[0], LABELS)
    labels = seg.step(FRAMES[1])
    assert len(np.unique(labels)) > 1
    return labels


def refused(call, *args, match: str) -> str:
    with pytest.raises(InputError, match=match) as error:
        call(*args)
    message = str(error.value)
    assert isinstance(error.value, UserError) and "\n" not in message, message
    return message


# Accepted conventions: the same labels as uint8 frames and int ids.


@pytest.mark.parametrize(
    "convert",
    [
        lambda f: f.astype(np.float32) / 255.0,
        lambda f: f.astype(np.float64) / 255.0,
        lambda f: f.astype(np.int64),
        lambda f: f.astype(np.uint16),
    ],
    ids=["float32_0_1", "float64_0_1", "int64", "uint16"],
)
def test_float_and_int_frames_give_the_uint8_labels(seg, reference, convert):
    assert np.array_equal(seg.start(convert(FRAMES[0]), LABELS), LABELS)
    np.testing.assert_array_equal(seg.step(convert(FRAMES[1])), reference)
    np.testing.assert_array_equal(seg.state.frame, FRAMES[1])  # stored as the uint8 frame


def test_a_bool_mask_is_object_1(seg):
    one = (LABELS == 1).astype(np.int32)
    seg.start(FRAMES[0], one, num_objects=2)
    expected = seg.step(FRAMES[1])
    started = seg.start(FRAMES[0], LABELS == 1, num_objects=2)
    assert started.dtype == np.uint8 and np.array_equal(started, one)
    np.testing.assert_array_equal(seg.step(FRAMES[1]), expected)


def test_int_masks_of_any_int_dtype_give_the_uint8_labels(seg, reference):
    seg.start(FRAMES[0], LABELS.astype(np.int64))
    np.testing.assert_array_equal(seg.step(FRAMES[1]), reference)


# Refused frames.


def test_float_frames_outside_0_1_are_refused(seg):
    message = refused(seg.start, FRAMES[0].astype(np.float32), LABELS, match=r"outside \[0, 1\]")
    assert "astype(np.uint8)" in message
    frame = FRAMES[1] / 255.0
    frame[0, 0, 0] = -0.5
    refused(seg.step, frame, match=r"float64 with values in \[-0.5, [0-9.]+\], outside \[0, 1\]")


def test_int_frames_outside_0_255_are_refused(seg):
    frame = FRAMES[0].astype(np.int16)
    frame[0, 0, 0] = 300
    refused(seg.start, frame, LABELS, match=r"int16 with values in \[\d+, 300\], outside 0\.\.255")
    frame[0, 0, 0] = -1
    refused(seg.step, frame, match=r"\[-1, \d+\], outside 0\.\.255")


@pytest.mark.parametrize("shape", [(32, 48), (32, 48, 1)])
def test_grayscale_frames_are_refused(seg, shape):
    gray = FRAMES[0][..., 0].reshape(shape)
    message = refused(seg.start, gray, LABELS, match="frame is grayscale")
    assert str(shape) in message and "[H, W, 3]" in message


def test_rgba_frames_are_refused(seg):
    rgba = np.concatenate([FRAMES[0], np.full((32, 48, 1), 255, np.uint8)], axis=-1)
    refused(seg.start, rgba, LABELS, match=r"frame is RGBA .*frame\[\.\.\., :3\]")


@pytest.mark.parametrize("frame", [FRAMES[:1], FRAMES[0, 0, 0], np.zeros((32, 48, 5), np.uint8)])
def test_frames_of_the_wrong_shape_are_refused(seg, frame):
    refused(seg.step, frame, match=re.escape(f"frame has shape {frame.shape}; give one RGB image"))


def test_nan_frames_are_refused(seg):
    frame = FRAMES[1] / 255.0
    frame[3, 4, 1] = np.nan
    refused(seg.step, frame, match="frame has NaN values")


def test_a_frame_of_another_size_is_refused_naming_both_sizes(seg):
    seg.start(FRAMES[0], LABELS)
    refused(seg.step, FRAMES[1][:, :40], match=r"frame is 32x40 .*first frame is 32x48")


# Refused masks: the same checks in start, correct and add_objects.


def _bad_masks():
    void = LABELS.copy()
    void[0, :5] = 255
    return {
        "float": (LABELS.astype(np.float32), "mask has dtype float32; give integer object ids"),
        "negative": (LABELS.astype(np.int8) - 1, r"mask has negative ids \(min -1\)"),
        "void": (void, r"mask has id 255 \(DAVIS 'void'\).*np.where\(mask == 255, 0, mask\)"),
        "size": (LABELS[:16], "mask is 16x48 .*the video's frames are 32x48"),
        "shape": (LABELS[..., None], r"mask has shape \(32, 48, 1\); give \[H, W\] object ids"),
    }


@pytest.mark.parametrize("method", ["start", "correct", "add_objects"])
@pytest.mark.parametrize("case", sorted(_bad_masks()))
def test_bad_masks_are_refused(seg, method, case):
    mask, match = _bad_masks()[case]
    seg.start(FRAMES[0], LABELS)
    args = (FRAMES[0], mask) if method == "start" else (mask,)
    refused(getattr(seg, method), *args, match=match)


def test_ids_beyond_max_objects_are_refused_at_start(seg):
    mask = LABELS.copy()
    mask[0, 0] = 11
    refused(seg.start, FRAMES[0], mask, match=r"mask has object id 11 > model\.max_objects=10")


@pytest.mark.parametrize("method", ["correct", "add_objects"])
def test_ids_beyond_the_object_slots_are_refused(seg, method):
    seg.start(FRAMES[0], LABELS)  # 2 object slots
    message = refused(
        getattr(seg, method),
        np.where(LABELS == 2, 3, LABELS),
        match=r"object id 3 > the 2 object slots given to start\(\)",
    )
    assert "num_objects" in message


def test_add_objects_refuses_a_tracked_id_and_points_at_correct(seg):
    seg.start(FRAMES[0], np.where(LABELS == 2, 0, LABELS), num_objects=2)  # object 2 not yet seen
    refused(
        seg.add_objects,
        (LABELS == 1).astype(np.uint8),
        match=r"add_objects: object 1 is already tracked; .*use correct\(mask\)",
    )
    refused(seg.add_objects, LABELS, match=r"object 1 is already tracked")  # 2 is new, 1 is not


# States saved with other settings.


def test_load_state_refuses_other_settings_naming_every_field(tmp_path, seg):
    seg.start(FRAMES[0], LABELS)
    path = seg.save_state(tmp_path / "state.npz")
    other = Segmenter.from_checkpoint(
        SHIPPED, **{**MEMORY, "capacity": 5}, max_objects=3, eviction="none"
    )
    message = refused(other.load_state, path, match="state.npz: the state was saved with other")
    for field in [
        "model.max_objects=10 in the file, 3 here",
        "memory.capacity=4 in the file, 5 here",
        "memory.eviction='oldest' in the file, 'none' here",
    ]:
        assert field in message, message
    assert "mem_every" not in message  # only the fields that differ


def test_load_state_with_the_same_settings_restores_it(tmp_path, seg):
    seg.start(FRAMES[0], LABELS)
    saved = seg.state
    same = Segmenter.from_checkpoint(SHIPPED, **MEMORY)
    same.load_state(seg.save_state(tmp_path / "state.npz"))
    restored = same.state
    np.testing.assert_array_equal(restored.frame, saved.frame)
    np.testing.assert_array_equal(restored.video.bank.keys, saved.video.bank.keys)
    assert same.stream.num_objects == 2


def test_a_state_file_without_settings_still_loads(tmp_path, seg):
    """Files saved before the settings were recorded load as before (unchecked)."""
    seg.start(FRAMES[0], LABELS)
    with np.load(seg.save_state(tmp_path / "state.npz")) as data:
        arrays = {name: data[name] for name in data.files if name != "settings"}
    np.savez(tmp_path / "old.npz", **arrays)
    old = Segmenter.from_checkpoint(SHIPPED, **MEMORY)
    old.load_state(tmp_path / "old.npz")
    np.testing.assert_array_equal(old.state.video.bank.keys, seg.state.video.bank.keys)
