"""The default data policy never stops a run on a clip; structural faults stop it at start-up.

A YouTube-VOS tree where two of eight videos hold only tiny objects (plus late objects, ids that
meta.json does not list, frames without a PNG) trains 50 steps with the defaults; the counters reach
metrics.jsonl; a run stopped at step 25 and resumed sees exactly the straight run's batches.
"""

from __future__ import annotations

import json
import shutil

import ml_collections
import pytest

from stm_jax.data.awkward_trees import write_youtube_vos_train
from stm_jax.data.config import default_data_config
from stm_jax.data.errors import DataError
from stm_jax.data.pipeline import make_train_iterator
from stm_jax.jobs import train as train_job
from tests.train_fixtures import tiny_config

KINDS = ("normal", "tiny", "late", "unlisted", "holes", "normal", "tiny", "late")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ytvos")
    write_youtube_vos_train(root, num_videos=8, num_frames=8, height=48, width=64, kinds=KINDS)
    return root


def config_for(root, num_steps):
    config = tiny_config(num_steps=num_steps)
    defaults = default_data_config()
    assert defaults.on_bad_sample == "skip" and defaults.on_bad_video == "error"
    config.data.sources = ml_collections.ConfigDict(
        {"youtube_vos": {"kind": "youtube_vos", "root": str(root), "ratio": 1.0, "split": "train"}}
    )
    config.data.max_skip = ml_collections.ConfigDict({"kind": "constant", "value": 10})
    config.train.update(checkpoint_every=25, log_every=10, log_batches=True)
    return config


def rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def batches(workdir):
    return [json.loads(line) for line in (workdir / "batches.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tiny_object_videos_train_50_steps_and_resume_exactly(tree, tmp_path):
    straight = train_job.run(config_for(tree, 50), str(tmp_path / "straight"))
    assert straight["step"] == 50
    train_rows = [r for r in rows(tmp_path / "straight") if "train/loss" in r]
    last = train_rows[-1]
    assert last["step"] == 50
    assert last["train/data/resampled_youtube_vos"] > 0  # the tiny videos came up, were redrawn
    assert last["train/data/unlisted_ids_youtube_vos"] > 0
    assert last["train/data/missing_png_youtube_vos"] == 2  # 2 frames of the "holes" video
    assert last["train/data/empty_youtube_vos"] == 0
    assert "train/max_skip" in last and "train/saturated_fraction" in last
    counts = [r["train/data/resampled_youtube_vos"] for r in train_rows]
    assert counts == sorted(counts)  # cumulative

    assert train_job.run(config_for(tree, 25), str(tmp_path / "resumed"))["step"] == 25
    train_job.run(config_for(tree, 50), str(tmp_path / "resumed"))
    assert batches(tmp_path / "resumed") == batches(tmp_path / "straight")
    resumed_last = [r for r in rows(tmp_path / "resumed") if "train/loss" in r][-1]
    assert (
        resumed_last["train/data/resampled_youtube_vos"] == last["train/data/resampled_youtube_vos"]
    )


def test_structural_faults_stop_at_start_up_naming_the_file(tree, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    data = config_for(root, 1).data
    assert next(make_train_iterator(data, 0, 1))["frames"].shape[0] == 2
    shutil.rmtree(root / "train" / "JPEGImages" / "tiny001")
    with pytest.raises(DataError, match="tiny001.*absent on disk"):
        make_train_iterator(data, 0, 1)
    (root / "train" / "meta.json").unlink()
    with pytest.raises(DataError, match="meta.json not found"):
        make_train_iterator(data, 0, 1)
    data.sources.youtube_vos.root = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="nowhere: no such folder"):
        make_train_iterator(data, 0, 1)
