"""Datasets and splits that would give a wrong result are refused before any work, naming the file:
a sequence listed twice or no sequence (score / evaluate jobs), and a YouTube-VOS meta.json that does
not match its tree (an object missing from its first annotation, a listed frame missing on disk, no
meta.json at all)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from configs import davis2017_val, score, youtubevos2019_valid
from stm_jax.cli_errors import MissingFileError
from stm_jax.data.errors import DataError
from stm_jax.data.registry import DATASETS
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.evaluation.davis import ScoringError
from stm_jax.io.images import write_palette_png
from stm_jax.io.split_files import SplitFileError
from stm_jax.io.videos import VideoInputError
from stm_jax.jobs.evaluate import run as run_evaluate
from stm_jax.jobs.score import run as run_score
from stm_jax.jobs.youtubevos import run as run_youtubevos
from tests.data_fixtures import youtube_valid_tree
from tests.model_fixtures import tiny_run_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    """A DAVIS tree with 3 val sequences and their ground truth copied as predictions."""
    base = tmp_path_factory.mktemp("davis")
    root = write_synthetic_davis(
        base / "davis", num_train=0, num_val=3, num_frames=4, height=24, width=32, num_objects=2
    )
    shutil.copytree(root / "Annotations/480p", base / "pred")
    return root, base / "pred"


def score_config(gt, pred):
    config = score.get_config()
    config.gt, config.pred = str(gt), str(pred)
    return config


def with_split(root, tmp_path, text):
    """A copy of the DAVIS tree whose val split file reads `text`; returns (root, split file)."""
    copy = tmp_path / "davis"
    shutil.copytree(root, copy)
    split = copy / "ImageSets/2017/val.txt"
    split.write_text(text)
    return copy, split


def test_score_counts_each_sequence_once_or_refuses(davis, tmp_path):
    root, pred = davis
    names = (root / "ImageSets/2017/val.txt").read_text().split()
    run_score(score_config(root, pred), str(tmp_path / "ok"))  # GT as predictions: J&F 1
    rows = (tmp_path / "ok/per-sequence_results-val.csv").read_text().splitlines()
    assert len(rows) - 1 == len(names) * 2  # 2 objects per sequence, each once

    twice, split = with_split(root, tmp_path, "\n".join([*names, names[1], ""]))
    with pytest.raises(SplitFileError, match=rf"^{re.escape(str(split))}: {names[1]} listed more"):
        run_score(score_config(twice, pred), str(tmp_path / "twice"))
    assert not (tmp_path / "twice").exists()

    config = score_config(root, pred)
    config.sequences = f"{names[0]},{names[2]},{names[0]}"
    with pytest.raises(ScoringError, match=f"config.sequences: {names[0]} listed more than once"):
        run_score(config, str(tmp_path / "listed"))


def test_score_refuses_an_empty_split_with_exit_code_2(davis, tmp_path):
    root, pred = davis
    empty, split = with_split(root, tmp_path, "\n\n")
    command = [
        sys.executable,
        "main.py",
        "--config=configs/score.py",
        f"--workdir={tmp_path / 'out'}",
        f"--config.gt={empty}",
        f"--config.pred={pred}",
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert f"error: {split}: no sequences listed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out/*.csv"))


@pytest.mark.parametrize("text,message", [("twice", "listed more than once"), ("", "no sequ")])
def test_evaluate_refuses_duplicated_or_empty_split_before_segmenting(
    davis, tmp_path, text, message
):
    root, _ = davis
    names = (root / "ImageSets/2017/val.txt").read_text().split()
    lines = [*names, names[0]] if text else []
    copy, split = with_split(root, tmp_path, "\n".join(lines))
    config = tiny_run_config(davis2017_val, tmp_path / "never_read.pth", root=str(copy))
    with pytest.raises(SplitFileError, match=rf"^{re.escape(str(split))}: .*{message}"):
        run_evaluate(config, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def youtube_config(root, tmp_path):
    # The checkpoint is never read: the tree is refused first.
    return tiny_run_config(youtubevos2019_valid, tmp_path / "never_read.pth", root=str(root))


def test_object_missing_from_its_first_annotation_is_refused(tmp_path):
    valid = youtube_valid_tree(tmp_path / "ytvos")
    late = valid / "Annotations/vid01/00003.png"
    write_palette_png(late, np.zeros((40, 56), np.uint8))  # object 2 should enter here
    with pytest.raises(VideoInputError) as error:
        run_youtubevos(youtube_config(tmp_path / "ytvos", tmp_path), str(tmp_path / "out"))
    message = str(error.value)
    assert message.startswith(f"{late}: objects [2] should start here but are absent (video vid01")
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


def test_listed_frames_missing_on_disk_are_refused_for_every_video(tmp_path):
    valid = youtube_valid_tree(tmp_path / "ytvos")
    (valid / "JPEGImages/vid00/00003.jpg").unlink()
    (valid / "JPEGImages/vid02/00003.jpg").unlink()
    (valid / "JPEGImages/vid02/00004.jpg").unlink()  # not listed in meta.json: not a problem
    with pytest.raises(VideoInputError) as error:
        run_youtubevos(youtube_config(tmp_path / "ytvos", tmp_path), str(tmp_path / "out"))
    lines = str(error.value).splitlines()
    assert lines[0] == "2 input problems; nothing was segmented:"
    for video in ("vid00", "vid02"):
        assert any(
            line.startswith(f"  - {valid / 'JPEGImages' / video}: frames 00003 of video {video} ")
            and "listed in meta.json but missing on disk" in line
            for line in lines[1:]
        ), lines
    assert not (tmp_path / "out").exists()


def test_missing_or_broken_meta_json_is_a_one_line_user_error(tmp_path):
    valid = youtube_valid_tree(tmp_path / "ytvos")
    (valid / "meta.json").unlink()
    with pytest.raises(MissingFileError, match=rf"^{re.escape(str(valid / 'meta.json'))}: meta"):
        run_youtubevos(youtube_config(tmp_path / "ytvos", tmp_path), str(tmp_path / "out"))
    (valid / "meta.json").write_text('{"videos": {"vid00": {"objects": {"1": {}}}}}')
    with pytest.raises(ValueError, match=r"meta.json: object 1 of video vid00 lists no frames"):
        run_youtubevos(youtube_config(tmp_path / "ytvos", tmp_path), str(tmp_path / "out"))
    (valid / "meta.json").write_text('{"videos": {"vid00": {"objects": {}}}}')
    with pytest.raises(VideoInputError, match=r"meta.json: video vid00 lists no objects"):
        run_youtubevos(youtube_config(tmp_path / "ytvos", tmp_path), str(tmp_path / "out"))
    (valid / "meta.json").write_text("[]")
    with pytest.raises(ValueError, match=r"meta.json: not a YouTube-VOS meta.json"):
        run_youtubevos(youtube_config(tmp_path / "ytvos", tmp_path), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_youtubevos_cli_without_meta_json_exits_2_with_one_line(tmp_path):
    valid = youtube_valid_tree(tmp_path / "ytvos", num_videos=1)
    (valid / "meta.json").unlink()
    command = [
        sys.executable,
        "main.py",
        "--config=configs/youtubevos2019_valid.py",
        f"--workdir={tmp_path / 'out'}",
        f"--config.data.root={tmp_path / 'ytvos'}",
        f"--config.checkpoint={tmp_path / 'never_read.pth'}",
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error_lines == [
        f"error: {valid / 'meta.json'}: meta.json not found; point "
        "--config.data.root at the YouTube-VOS folder holding "
        "<split>/meta.json, or check --config.data.split."
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out/submission").exists()


def test_a_sequence_subset_naming_a_video_twice_is_refused(davis, tmp_path):
    root, _ = davis
    name = (root / "ImageSets/2017/val.txt").read_text().split()[0]
    config = tiny_run_config(davis2017_val, tmp_path / "never_read.pth", root=str(root))
    config.data.sequences = f"{name}, {name}"
    with pytest.raises(VideoInputError, match=f"^data.sequences: {name} listed more than once"):
        run_evaluate(config, str(tmp_path / "out"))
    (tmp_path / "folders/JPEGImages/clip1").mkdir(parents=True)
    with pytest.raises(DataError, match="^sequences: clip1 listed more than once"):
        DATASETS.get("video_folders")(tmp_path / "folders", sequences="clip1,clip1")
    assert not (tmp_path / "out").exists()
