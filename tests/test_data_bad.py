"""Bad data: a clear error naming the file, or (on_bad_sample='skip') a counted skip; never a wrong sample."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from stm_jax.data.davis import DavisSource
from stm_jax.data.errors import DataError
from stm_jax.data.pipeline import make_train_iterator
from stm_jax.data.video import ArrayVideo
from stm_jax.io.images import read_label_mask, write_palette_png
from tests import data_fixtures as fx
from tests.test_data_pipeline import tiny_config

SEQ = "synth001"


def davis(tmp_path):
    return fx.davis_tree(tmp_path / "davis", num_train=3, num_val=0, num_frames=4)


def ann(root, t, seq=SEQ):
    return root / "Annotations" / "480p" / seq / f"{t:05d}.png"


def test_listed_but_missing_or_empty_sequences(tmp_path):
    root = davis(tmp_path)
    shutil.rmtree(root / "JPEGImages" / "480p" / SEQ)
    with pytest.raises(DataError, match=f"{SEQ}.*absent on disk"):
        DavisSource(root, split="train")
    source = DavisSource(root, split="train", on_bad_sample="skip")
    assert len(source) == 2 and source.skips.total() == 1
    (root / "JPEGImages" / "480p" / SEQ).mkdir()
    with pytest.raises(DataError, match="empty video"):
        DavisSource(root, split="train")
    with pytest.raises(DataError, match="empty video"):
        ArrayVideo("x", np.zeros((0, 4, 4, 3), np.uint8), np.zeros((0, 4, 4), np.uint8))


def test_missing_first_frame_annotation(tmp_path):
    root = davis(tmp_path)
    ann(root, 0).unlink()
    with pytest.raises(DataError, match=f"{SEQ}/00000.png: first-frame annotation missing"):
        DavisSource(root, split="train")


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate_jpeg", "cannot be read"),
        ("size_mismatch", "differs from frame"),
        ("non_contiguous", "not contiguous"),
        ("unknown_id", r"ids \[9\] are not among"),
    ],
)
def test_sample_time_errors_name_the_file(tmp_path, damage, message):
    root = davis(tmp_path)
    jpeg = root / "JPEGImages" / "480p" / SEQ / "00001.jpg"
    if damage == "truncate_jpeg":
        jpeg.write_bytes(jpeg.read_bytes()[:300])
        where = jpeg
    elif damage == "size_mismatch":
        write_palette_png(ann(root, 1), np.zeros((fx.H + 2, fx.W), np.uint8))
        where = ann(root, 1)
    elif damage == "non_contiguous":
        label = np.zeros((fx.H, fx.W), np.uint8)
        label[:5, :5], label[10:15, 10:15] = 1, 3
        write_palette_png(ann(root, 0), label)
        where = ann(root, 0)
    else:
        label = np.zeros((fx.H, fx.W), np.uint8)
        label[:5, :5] = 9
        write_palette_png(ann(root, 1), label)
        where = ann(root, 1)
    video = DavisSource(root, split="train")[1]
    with pytest.raises(DataError, match=message) as info:
        video.read([0, 1, 2])
    assert str(where) in str(info.value)


def davis_config(root, **overrides):
    config = tiny_config(**overrides)
    config.sources = {
        "davis": {
            "kind": "davis",
            "root": str(root),
            "ratio": 1.0,
            "year": "2017",
            "split": "train",
            "resolution": "480p",
        }
    }
    return config


def test_pipeline_errors_or_skips_and_counts(tmp_path):
    root = davis(tmp_path)
    for t in range(4):  # every frame of one sequence is unreadable
        path = root / "JPEGImages" / "480p" / SEQ / f"{t:05d}.jpg"
        path.write_bytes(b"not a jpeg")
    iterator = make_train_iterator(davis_config(root, on_bad_sample="error"), 0, 1)
    with pytest.raises(DataError, match=SEQ):
        for _ in range(4):  # 16 draws from 3 sequences: the broken one comes up
            next(iterator)
    iterator = make_train_iterator(davis_config(root), 0, 1)  # default: 'skip'

    batches = [next(iterator) for _ in range(3)]
    assert iterator.skipped > 0
    assert f"Bad samples replaced during training: {iterator.skipped}" in iterator.summary()
    for batch in batches:  # replacements are real samples
        assert (batch["num_objects"] > 0).all()


def test_void_label_is_reported_not_learned(tmp_path):
    root = davis(tmp_path)
    for seq in ("synth000", SEQ, "synth002"):
        for t in range(4):
            label = read_label_mask(ann(root, t, seq)).copy()
            label[:, :4] = 255
            write_palette_png(ann(root, t, seq), label)
    config = davis_config(root, crop_size=48, resize_shorter=48)
    config.max_skip = {"kind": "constant", "value": 1}
    batch = next(make_train_iterator(config, 0, 1))
    assert batch["void"].any()
    assert (batch["labels"][batch["void"]] == 0).all()
    assert (batch["masks"][batch["void"]][:, 0] == 1).all()
