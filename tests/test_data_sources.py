"""Sources read tiny trees written in each dataset's real layout, and TFDS through mock_data."""

from __future__ import annotations

import pickle
import subprocess
import sys

import grain
import numpy as np
import pytest
import scipy.io

from stm_jax.data.davis import DavisSource
from stm_jax.data.errors import DataError
from stm_jax.data.image_sets import CocoSource, FolderImageSource, VocSource
from stm_jax.data.synthetic import SyntheticVideoSource, make_synthetic_video
from stm_jax.data.youtube_vos import YouTubeVOSSource
from stm_jax.io.images import read_label_mask, read_rgb
from tests import data_fixtures as fx


def test_davis_2017_reads_frames_and_ids(tmp_path):
    root = fx.davis_tree(tmp_path)
    source = DavisSource(root, "2017", "train")
    assert len(source) == 3
    video = grain.MapDataset.source(source)[1]
    assert video.name == "synth001" and len(video) == 6
    frames, labels = video.read([0, 2, 5])
    assert frames.shape == (3, fx.H, fx.W, 3) and frames.dtype == np.uint8
    expected = make_synthetic_video(100_003 + 1, num_frames=6, height=fx.H, width=fx.W)
    np.testing.assert_array_equal(labels, expected.labels[[0, 2, 5]])
    assert np.abs(frames.astype(int) - expected.frames[[0, 2, 5]]).mean() < 6  # JPEG loss only
    assert pickle.loads(pickle.dumps(source))[1].frame_paths == video.frame_paths
    assert len(DavisSource(root, "2017", "val")) == 1


def test_davis_2016_merges_objects(tmp_path):
    root = fx.davis_tree(tmp_path)
    labels_2017 = DavisSource(root, "2017", "train")[0].read([0])[1]
    labels_2016 = DavisSource(root, "2016", "train")[0].read([0])[1]
    assert labels_2017.max() == 3
    np.testing.assert_array_equal(labels_2016, (labels_2017 > 0).astype(np.uint8))


def test_youtube_vos_late_objects_and_frame_step(tmp_path):
    root = fx.youtube_tree(tmp_path)
    source = YouTubeVOSSource(root, "train")
    assert len(source) == 2
    video = source[0]
    assert video.frame_step == 5 and video.object_ids == (1, 2)
    pngs = [read_label_mask(p) for p in video.label_paths]
    first_2 = next(t for t, label in enumerate(pngs) if (label == 2).any())
    assert first_2 >= fx.LATE_START
    assert source.first_frames(0) == {1: 0, 2: first_2}
    labels = video.read([0, first_2])[1]
    assert 2 not in labels[0] and 2 in labels[1]
    assert video.frames_with_objects() == [t for t, label in enumerate(pngs) if label.any()]


def test_saliency_voc_sbd_folders(tmp_path):
    source = FolderImageSource(fx.saliency_tree(tmp_path / "msra"))
    record = source[1]
    assert set(np.unique(record.label)) == {0, 1} and record.image.shape == (fx.H, fx.W, 3)
    voc = VocSource(fx.voc_tree(tmp_path / "voc"), "train")
    record = voc[0]
    assert (record.label[0] == 255).all() and record.label[1:].max() == 2
    sbd = tmp_path / "sbd"
    (sbd / "inst").mkdir(parents=True)
    ids = np.zeros((fx.H, fx.W), np.uint8)
    ids[5:9, 5:20] = 1
    scipy.io.savemat(sbd / "inst" / "a.mat", {"GTinst": {"Segmentation": ids}})
    (sbd / "img").mkdir()
    from stm_jax.io.images import write_rgb

    write_rgb(sbd / "img" / "a.jpg", np.zeros((fx.H, fx.W, 3), np.uint8))
    (sbd / "train.txt").write_text("a\n")
    np.testing.assert_array_equal(VocSource(sbd, "train", layout="sbd")[0].label, ids)


def test_coco_polygon_and_rle(tmp_path):
    root, expected = fx.coco_tree(tmp_path)
    label = CocoSource(root, "train2017", min_area=100)[0].label
    # Largest instance first: rle (700 px) = 1, crle (444) = 2, polygon (400) = 3; crowd is void.
    np.testing.assert_array_equal(label == 1, expected["rle"])
    np.testing.assert_array_equal(label == 2, expected["crle"] & ~expected["crowd"])
    poly = label == 3
    iou = (poly & expected["polygon"]).sum() / (poly | expected["polygon"]).sum()
    assert iou > 0.9
    assert (label[expected["crowd"] & ~expected["crle"]] == 255).all()
    with pytest.raises(DataError, match="no image"):
        CocoSource(root, "train2017", min_area=10_000)


def test_synthetic_source_deterministic_and_complete():
    source = SyntheticVideoSource(3, seed=4, num_frames=5, height=32, width=48, num_objects=(2, 3))
    a, b = source[2], pickle.loads(pickle.dumps(source))[2]
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    n = a.labels.max()
    assert 2 <= n <= 3 and set(np.unique(a.labels[0])) == set(range(n + 1))
    assert not np.array_equal(source[0].frames, source[1].frames)


def test_synthetic_video_has_motion_exit_and_reentry():
    video = make_synthetic_video(0, num_frames=12)
    visible = (video.labels[..., None] == np.arange(1, 4)).sum(axis=(1, 2))  # (T, 3)
    assert (visible[0] > 0).all()
    leaving = np.flatnonzero((visible == 0).any(axis=0))
    assert len(leaving) >= 1 and (visible[-1, leaving] > 0).all()  # left and came back
    assert not np.array_equal(video.frames[0], video.frames[1])


def test_write_synthetic_davis_layout(tmp_path):
    from stm_jax.data.synthetic import write_synthetic_davis

    root = write_synthetic_davis(tmp_path, 1, 1, num_frames=3, height=32, width=48)
    assert (root / "ImageSets/2017/val.txt").read_text().split() == ["synth001"]
    assert read_rgb(root / "JPEGImages/480p/synth000/00002.jpg").shape == (32, 48, 3)
    assert read_label_mask(root / "Annotations/480p/synth001/00002.png").shape == (32, 48)


def _davis_examples(n):
    videos = [make_synthetic_video(i, num_frames=4, height=32, width=48) for i in range(n)]
    return [
        {
            "video": {"frames": v.frames, "segmentations": v.labels[..., None]},
            "metadata": {"num_frames": 4, "video_name": f"v{i}"},
        }
        for i, v in enumerate(videos)
    ]


def test_tfds_sources_through_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    from stm_jax.data.tfds_sources import TfdsImageSource, TfdsVideoSource

    examples = _davis_examples(2)
    with tfds.testing.mock_data(as_data_source_fn=lambda *a, **k: examples):
        source = TfdsVideoSource("davis/480p", "train")
        assert len(source) == 2
        video = source[1]
        assert video.name == "tfds:davis/480p/v1"
        np.testing.assert_array_equal(
            video.read([0, 3])[1], examples[1]["video"]["segmentations"][[0, 3], ..., 0]
        )
    # Default random mock data: frames and masks of unrelated sizes must be refused, not used.
    with tfds.testing.mock_data(num_examples=2):
        with pytest.raises(DataError, match="differ"):
            TfdsVideoSource("davis/480p", "train")[0]
        pets = TfdsImageSource("oxford_iiit_pet", "train", binary=True)
        try:
            record = pets[0]
        except DataError as error:
            assert "size" in str(error)
        else:
            assert set(np.unique(record.label)) <= {0, 1}


def test_importing_data_package_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import stm_jax.data, stm_jax.data.pipeline, stm_jax.data.registry, stm_jax.data.tfds_sources\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'tensorflow_datasets' not in sys.modules, 'tfds imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
