"""YouTube-VOS layout on a generated tree with an object that appears late."""

import json
import zipfile

import numpy as np
import pytest

from stm_jax.evaluation.youtubevos import (
    check_first_annotations,
    load_meta,
    write_video_predictions,
    zip_submission,
)
from stm_jax.io.images import read_label_mask, write_palette_png

META = {
    "videos": {
        "vid_a": {
            "objects": {
                "1": {"category": "cat", "frames": ["00000", "00005", "00010", "00015"]},
                "2": {"category": "dog", "frames": ["00010", "00015", "00020"]},  # appears late
            }
        },
        "vid_b": {"objects": {"1": {"frames": ["00003", "00008"]}}},
    }
}


@pytest.fixture
def tree(tmp_path):
    valid = tmp_path / "valid"
    valid.mkdir()
    (valid / "meta.json").write_text(json.dumps(META))
    first = np.zeros((12, 16), np.uint8)
    first[2:6, 2:6] = 1
    write_palette_png(valid / "Annotations/vid_a/00000.png", first)
    late = np.zeros((12, 16), np.uint8)
    late[6:10, 8:14] = 2
    write_palette_png(valid / "Annotations/vid_a/00010.png", late)
    return valid


def test_plan_frames_and_injection(tree):
    plans = load_meta(tree / "meta.json")
    a = plans["vid_a"]
    assert a.output_frames == ("00000", "00005", "00010", "00015", "00020")
    assert a.first_frame == {1: "00000", 2: "00010"}
    assert a.objects_starting_at("00010") == [2]
    assert a.active_objects("00005") == [1] and a.active_objects("00012") == [1, 2]
    assert plans["vid_b"].output_frames == ("00003", "00008")
    check_first_annotations(a, tree / "Annotations/vid_a")
    write_palette_png(tree / "Annotations/vid_a/00010.png", np.zeros((12, 16), np.uint8))
    with pytest.raises(ValueError, match=r"00010\.png: objects \[2\]"):
        check_first_annotations(a, tree / "Annotations/vid_a")


def test_writer_and_zip(tree, tmp_path):
    plan = load_meta(tree / "meta.json")["vid_a"]
    predictions = {f"{t:05d}": np.full((12, 16), t % 3, np.uint8) for t in range(0, 25)}
    out = tmp_path / "submission"
    written = write_video_predictions(out, plan, predictions)
    assert [p.stem for p in written] == list(plan.output_frames)  # only the required frames
    assert sorted(p.name for p in (out / "Annotations/vid_a").iterdir()) == [
        f"{f}.png" for f in plan.output_frames
    ]
    np.testing.assert_array_equal(read_label_mask(written[2]), predictions["00010"])

    archive = zip_submission(out, tmp_path / "submission.zip")
    with zipfile.ZipFile(archive) as z:
        names = sorted(z.namelist())
    assert names == [f"Annotations/vid_a/{f}.png" for f in plan.output_frames]

    del predictions["00020"]
    with pytest.raises(ValueError, match="00020"):
        write_video_predictions(out, plan, predictions)
