"""YouTube-VOS job on a generated tree with an object that appears mid-video."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from configs import youtubevos2019_valid
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.inference.sequence_output import StaleOutputError
from stm_jax.io.images import write_palette_png, write_rgb
from stm_jax.jobs.youtubevos import run
from tests.model_fixtures import tiny_run_config, write_tiny_pth


def write_tree(root):
    video = make_synthetic_video(3, num_frames=10, height=40, width=56, num_objects=2)
    name = "late_obj"
    for t in range(10):
        write_rgb(root / "valid_all_frames/JPEGImages" / name / f"{t:05d}.jpg", video.frames[t])
        if t % 5 == 0:
            write_rgb(root / "valid/JPEGImages" / name / f"{t:05d}.jpg", video.frames[t])
    first = np.where(video.labels[0] == 1, 1, 0).astype(np.uint8)  # object 2 is not given at 0
    late = np.where(video.labels[5] == 2, 2, 0).astype(np.uint8)  # object 2 enters at frame 5
    write_palette_png(root / "valid/Annotations" / name / "00000.png", first)
    write_palette_png(root / "valid/Annotations" / name / "00005.png", late)
    meta = {
        "videos": {
            name: {"objects": {"1": {"frames": ["00000", "00005"]}, "2": {"frames": ["00005"]}}}
        }
    }
    (root / "valid/meta.json").write_text(json.dumps(meta))
    return name, first, late


@pytest.mark.slow
def test_submission_layout_with_late_object(tmp_path):
    root = tmp_path / "ytvos"
    name, first, late = write_tree(root)
    config = tiny_run_config(
        youtubevos2019_valid,
        write_tiny_pth(tmp_path / "tiny.pth"),
        root=str(root),
        frames_split="valid_all_frames",
    )
    run(config, str(tmp_path / "out"))
    written = sorted((tmp_path / "out/submission/Annotations" / name).glob("*.png"))
    assert [p.name for p in written] == ["00000.png", "00005.png"]
    frame0 = np.asarray(Image.open(written[0]))
    frame5 = np.asarray(Image.open(written[1]))
    np.testing.assert_array_equal(frame0, first)  # the given first frame; object 2 absent
    assert Image.open(written[1]).mode == "P" and frame5.shape == (40, 56)
    np.testing.assert_array_equal(frame5[late == 2], 2)  # injected where it appears
    assert set(np.unique(frame5)) <= {0, 1, 2}
    with zipfile.ZipFile(tmp_path / "out/submission.zip") as archive:
        assert sorted(archive.namelist()) == [
            f"Annotations/{name}/00000.png",
            f"Annotations/{name}/00005.png",
        ]


def test_rerun_with_another_checkpoint_is_refused_or_redone(tmp_path):
    root = tmp_path / "ytvos"
    name, _, _ = write_tree(root)
    first = write_tiny_pth(tmp_path / "a.pth", seed=0)
    other = write_tiny_pth(tmp_path / "b.pth", seed=1)
    configs = [
        tiny_run_config(youtubevos2019_valid, pth, root=str(root), frames_split="valid_all_frames")
        for pth in (first, other)
    ]
    run(configs[0], str(tmp_path / "out"))
    png = tmp_path / "out/submission/Annotations" / name / "00005.png"
    stamp = png.stat().st_mtime_ns
    run(configs[0], str(tmp_path / "out"))  # same job: skipped
    assert png.stat().st_mtime_ns == stamp
    with pytest.raises(
        StaleOutputError, match=r"checkpoint \(\S*a\.pth -> \S*b\.pth\).*overwrite=True"
    ):
        run(configs[1], str(tmp_path / "out"))
    assert png.stat().st_mtime_ns == stamp
    configs[1].overwrite = True
    run(configs[1], str(tmp_path / "out"))
    assert png.stat().st_mtime_ns != stamp
    job = json.loads((tmp_path / "out/submission/job.json").read_text())
    assert job["checkpoint"]["path"] == str(other.resolve())
