"""Every output file is readable by others under the usual umask, and still written atomically."""

import os
import stat

import numpy as np
import pytest

from stm_jax.evaluation.overlay import write_sequence_overlay
from stm_jax.evaluation.results import ObjectScores, Results, read_results_csv, write_results_csv
from stm_jax.io.atomic import atomic_path, write_text_atomic
from stm_jax.io.images import write_palette_png, write_rgb


@pytest.fixture
def umask():
    def set_umask(value):
        os.umask(value)

    old = os.umask(0o022)
    yield set_umask
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def _results():
    scores = np.array([0.5, 0.75, 1.0])
    return Results([ObjectScores("seq", 1, scores, scores)])


def test_every_writer_gives_0644_under_umask_022(tmp_path, umask):
    umask(0o022)
    labels = np.zeros((16, 16), np.uint8)
    labels[4:8, 4:8] = 1
    write_palette_png(tmp_path / "pred.png", labels)
    write_rgb(tmp_path / "demo.jpg", np.zeros((16, 16, 3), np.uint8))
    gif, sheet = write_sequence_overlay(
        tmp_path / "overlays", "seq", np.zeros((2, 16, 16, 3), np.uint8), np.stack([labels] * 2)
    )
    global_csv, sequence_csv = write_results_csv(_results(), tmp_path, "val", {"Checkpoint": "w"})
    json_file = write_text_atomic(tmp_path / "job.json", "{}")
    for path in [
        tmp_path / "pred.png",
        tmp_path / "demo.jpg",
        gif,
        sheet,
        global_csv,
        sequence_csv,
    ]:
        assert _mode(path) == 0o644, path
    assert _mode(json_file) == 0o644
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temp files left
    scores, per_object = read_results_csv(tmp_path, "val")  # extra columns keep the CSV readable
    assert scores["J-Mean"] == pytest.approx(0.75) and "seq_1" in per_object
    assert "Checkpoint" in global_csv.read_text().splitlines()[0]


def test_a_stricter_umask_is_honoured(tmp_path, umask):
    umask(0o077)
    write_palette_png(tmp_path / "pred.png", np.zeros((4, 4), np.uint8))
    assert _mode(tmp_path / "pred.png") == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, umask):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
