"""The 'video_folders' dataset layout (a worked example of a layout): training records, a tiny
training run and the evaluate job on a generated tree."""

import numpy as np
import pytest

from configs import davis2017_val
from stm_jax.data.registry import DATASETS, build_source
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.io.images import write_palette_png, write_rgb
from stm_jax.jobs import evaluate
from stm_jax.jobs import train as train_job
from stm_jax.training.metric_writer import read_jsonl
from tests.model_fixtures import tiny_run_config, write_tiny_pth
from tests.train_fixtures import tiny_config


def write_tree(root, videos=3, frames=6, sparse=True):
    for v in range(videos):
        video = make_synthetic_video(v, num_frames=frames, height=32, width=48, num_objects=2)
        for t in range(frames):
            write_rgb(root / "JPEGImages" / f"clip{v}" / f"{t:05d}.jpg", video.frames[t])
            if not sparse or v != 1 or t % 2 == 0:  # clip1 is sparsely annotated
                write_palette_png(
                    root / "Annotations" / f"clip{v}" / f"{t:05d}.png", video.labels[t]
                )
    return root


def test_training_records_are_the_annotated_frames(tmp_path):
    root = write_tree(tmp_path / "data")
    source = build_source("mine", {"kind": "video_folders", "root": str(root), "ratio": 1.0})
    assert [v.name for v in source.videos] == ["clip0", "clip1", "clip2"]
    assert [len(v.frame_paths) for v in source.videos] == [6, 3, 6]
    frames, labels = source[1].read([0, 1, 2])
    assert frames.shape == (3, 32, 48, 3) and labels.shape == (3, 32, 48) and labels.max() >= 1
    subset = DATASETS.get("video_folders")(root, sequences="clip2")
    assert [v.name for v in subset.videos] == ["clip2"]
    with pytest.raises(ValueError, match="no folder"):
        DATASETS.get("video_folders")(root, sequences="nope")


@pytest.mark.slow
def test_train_and_evaluate_on_the_layout(tmp_path):
    root = write_tree(tmp_path / "data")
    config = tiny_config(num_steps=2)
    config.data.sources = {"mine": {"kind": "video_folders", "root": str(root), "ratio": 1.0}}
    train_job.run(config, str(tmp_path / "run"))
    assert len([r for r in read_jsonl(tmp_path / "run/metrics.jsonl") if "train/loss" in r]) == 2

    full = write_tree(tmp_path / "full", sparse=False)  # every frame annotated: scored
    run = tiny_run_config(davis2017_val, write_tiny_pth(tmp_path / "tiny.pth"), root=str(full))
    run.data.layout = "video_folders"
    evaluate.run(run, str(tmp_path / "eval"))
    for v in ("clip0", "clip1", "clip2"):
        pngs = sorted((tmp_path / "eval/predictions" / v).glob("*.png"))
        assert len(pngs) == 6
    rows = (tmp_path / "eval").glob("*global*.csv")
    assert list(rows), "the evaluate job scores the layout's annotated frames"
    assert np.isfinite(
        float(
            next((tmp_path / "eval").glob("*global*.csv")).read_text().splitlines()[1].split(",")[0]
        )
    )
