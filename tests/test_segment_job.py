"""The segment CLI end to end on a generated DAVIS tree, rerun skipping, and bad-input errors."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from configs import davis2016_val, davis2017_val, segment
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.inference.preflight import name_problems
from stm_jax.inference.sequence_output import StaleOutputError
from stm_jax.io.images import DAVIS_PALETTE, write_palette_png, write_rgb
from stm_jax.io.videos import Video
from stm_jax.jobs.segment import run
from tests.model_fixtures import TINY_OVERRIDES, tiny_run_config, write_tiny_pth

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory):
    return write_tiny_pth(tmp_path_factory.mktemp("weights") / "tiny_stm.pth")


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    return write_synthetic_davis(
        tmp_path_factory.mktemp("davis"), num_train=1, num_val=2, num_frames=6, height=40, width=60
    )


make_config = tiny_run_config


@pytest.mark.slow
def test_cli_end_to_end_writes_palette_pngs_and_rerun_skips(tmp_path, tiny_pth, davis_root):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "main.py",
        "--config",
        "configs/davis2017_val.py",
        "--workdir",
        str(out),
        f"--config.data.root={davis_root}",
        f"--config.checkpoint={tiny_pth}",
        "--config.memory.capacity=4",
    ] + [f"--config.model.{k}={v}" for k, v in TINY_OVERRIDES.items()]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    sequences = (davis_root / "ImageSets/2017/val.txt").read_text().split()
    for sequence in sequences:
        frames = sorted((davis_root / "JPEGImages/480p" / sequence).glob("*.jpg"))
        written = sorted((out / "predictions" / sequence).glob("*.png"))
        assert [p.stem for p in written] == [p.stem for p in frames]
        first_gt = np.asarray(Image.open(davis_root / "Annotations/480p" / sequence / "00000.png"))
        for path in written:
            image = Image.open(path)
            assert image.mode == "P" and image.size == (60, 40)
            palette = image.getpalette()  # the DAVIS colours of ids 0..max(labels)
            assert palette == DAVIS_PALETTE[: len(palette)]
            assert len(palette) == 3 * (int(np.asarray(image).max()) + 1)
            assert np.asarray(image).max() <= first_gt.max()
        np.testing.assert_array_equal(np.asarray(Image.open(written[0])), first_gt)
        assert not list((out / "predictions" / sequence).glob(".*tmp"))
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "predictions").rglob("*.png")}
    rerun = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert "Skipping 2 video(s) already segmented by this job" in rerun.stdout
    assert mtimes == {p: p.stat().st_mtime_ns for p in (out / "predictions").rglob("*.png")}


def test_unrecorded_partial_sequence_is_refused_then_redone_and_davis2016_merges_objects(
    tmp_path, tiny_pth, davis_root
):
    config = make_config(davis2016_val, tiny_pth, root=str(davis_root), year="2016")
    sets = davis_root / "ImageSets/2016"
    sets.mkdir(exist_ok=True)
    shutil.copy(davis_root / "ImageSets/2017/val.txt", sets / "val.txt")
    sequence = (sets / "val.txt").read_text().split()[0]
    stale = tmp_path / "predictions" / sequence / "00003.png"
    write_palette_png(stale, np.full((40, 60), 7, np.uint8))
    with pytest.raises(StaleOutputError, match="no fingerprint recorded.*overwrite=True"):
        run(config, str(tmp_path))  # a PNG nobody recorded making is not trusted
    assert not (tmp_path / "predictions" / sequence / "00000.png").exists()
    config.overwrite = True
    run(config, str(tmp_path))
    labels = [
        np.asarray(Image.open(p))
        for p in sorted((tmp_path / "predictions" / sequence).glob("*.png"))
    ]
    assert len(labels) == 6 and all(label.max() <= 1 for label in labels)
    assert labels[0].max() == 1


def write_video(folder, sizes, mask_size=None, mask_labels=None):
    for index, (h, w) in enumerate(sizes):
        write_rgb(folder / "frames" / f"{index:05d}.jpg", np.full((h, w, 3), 100 + index, np.uint8))
    h, w = mask_size or sizes[0]
    labels = np.zeros((h, w), np.uint8) if mask_labels is None else mask_labels
    if mask_labels is None:
        labels[5:15, 5:15] = 1
    write_palette_png(folder / "00000.png", labels)
    return folder


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing_mask", "first-frame mask missing"),
        ("mask_size", "resize the mask"),
        ("frame_sizes", "all frames of a video must have one size"),
        ("too_many", "11 objects.*max_objects=10"),
        ("empty", "has no object"),
        ("unreadable", "cannot be read as an image"),
    ],
)
def test_bad_user_video_fails_clearly_and_writes_nothing(tmp_path, tiny_pth, case, message):
    folder = tmp_path / "video"
    sizes = [(32, 48)] * 3
    if case == "frame_sizes":
        sizes[2] = (32, 40)
    labels = None
    if case == "too_many":
        labels = (np.arange(32 * 48).reshape(32, 48) % 12).astype(np.uint8)
    if case == "empty":
        labels = np.zeros((32, 48), np.uint8)
    write_video(folder, sizes, (30, 48) if case == "mask_size" else None, labels)
    if case == "missing_mask":
        (folder / "00000.png").unlink()
    if case == "unreadable":
        (folder / "frames" / "00001.jpg").write_bytes(b"\xff\xd8 truncated")
    config = make_config(
        segment, tiny_pth, frames=str(folder / "frames"), first_mask=str(folder / "00000.png")
    )
    with pytest.raises(ValueError, match=message) as error:
        run(config, str(tmp_path / "out"))
    assert str(folder) in str(error.value)
    assert not list((tmp_path / "out").rglob("*.png"))


def test_missing_listed_sequence_and_missing_checkpoint(tmp_path, tiny_pth, davis_root):
    root = tmp_path / "davis"
    shutil.copytree(davis_root, root)
    with open(root / "ImageSets/2017/val.txt", "a") as split:
        split.write("ghost\n")
    config = make_config(davis2017_val, tiny_pth, root=str(root))
    with pytest.raises(ValueError, match="ghost.*listed"):
        run(config, str(tmp_path / "out"))
    config = make_config(davis2017_val, "", root=str(davis_root))
    with pytest.raises(ValueError, match="config.checkpoint"):
        run(config, str(tmp_path / "out"))


def test_user_folder_with_grayscale_and_rgba_frames(tmp_path, tiny_pth):
    folder = write_video(tmp_path / "video", [(32, 48)] * 3)
    for path in (folder / "frames").glob("*.jpg"):  # one image type per folder: all PNG
        Image.open(path).save(path.with_suffix(".png"))
        path.unlink()
    Image.fromarray(np.full((32, 48), 90, np.uint8), "L").save(folder / "frames" / "00001.png")
    Image.fromarray(np.full((32, 48, 4), 90, np.uint8), "RGBA").save(
        folder / "frames" / "00002.png"
    )
    config = make_config(
        segment, tiny_pth, frames=str(folder / "frames"), first_mask=str(folder / "00000.png")
    )
    config.overlays = True
    run(config, str(tmp_path / "out"))
    written = sorted((tmp_path / "out/predictions/frames").glob("*.png"))
    assert [p.name for p in written] == ["00000.png", "00001.png", "00002.png"]
    assert (tmp_path / "out/overlays/frames.gif").is_file()


def test_frames_dot_names_the_video_after_its_folder_and_overwrite_keeps_other_videos(
    tmp_path, tiny_pth, monkeypatch, capsys
):
    folder = write_video(tmp_path / "video", [(32, 48)] * 3)
    predictions = tmp_path / "out/predictions"
    other = predictions / "other_video" / "00000.png"
    write_palette_png(other, np.ones((32, 48), np.uint8))
    (folder / "frames" / "inside").mkdir()
    config = make_config(segment, tiny_pth, frames=".", first_mask=str(folder / "00000.png"))
    config.overwrite = True
    monkeypatch.chdir(folder / "frames")
    run(config, str(tmp_path / "out"))
    written = sorted(p.name for p in (predictions / "frames").glob("*.png"))
    assert written == ["00000.png", "00001.png", "00002.png"]
    assert not list(predictions.glob("*.png"))  # nothing written flat into predictions/
    assert other.is_file()  # overwrite redoes this video's folder only
    stamps = {p: p.stat().st_mtime_ns for p in predictions.rglob("*.png")}
    monkeypatch.chdir(folder / "frames" / "inside")
    config.data.frames = ".."  # the same folder: the same video, already segmented
    run(config, str(tmp_path / "out"))
    assert "Skipping 1 video(s) already segmented by this job" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in predictions.rglob("*.png")}


def test_video_names_that_cannot_name_an_output_folder_are_refused(tmp_path, tiny_pth):
    config = make_config(segment, tiny_pth, frames="/", first_mask=str(tmp_path / "00000.png"))
    with pytest.raises(ValueError, match="data.frames='/' is the file system root"):
        run(config, str(tmp_path / "out"))
    mask = tmp_path / "00000.png"
    videos = [Video(name, (), mask) for name in ("", "..", "a/b", "ok", "ok")]
    problems = name_problems(videos)
    assert [p.split("'")[1] for p in problems] == ["", "..", "a/b", "ok"]
    assert problems[0] == (
        f"{mask}: video name '' cannot name an output folder; give its frames folder a name of "
        "its own."
    )
    assert "another video is also named 'ok'" in problems[3]
