"""The demo's code path as the README runs it: shipped checkpoint, generated video, J&F, overlays."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.evaluation.side_by_side import GAP
from stm_jax.io.images import read_rgb, write_palette_png, write_rgb
from stm_jax.jobs.config_base import demo_config
from stm_jax.jobs.demo import user_video

ROOT = Path(__file__).resolve().parents[1]


LIBRARY_LOG_LINE = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)


def run_demo(*args, logs_allowed=False):
    command = [sys.executable, "main.py", "--config", "configs/demo.py", *args]
    result = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    if not logs_allowed:  # orbax / absl / jax INFO lines are hidden unless asked for
        assert LIBRARY_LOG_LINE.findall(result.stdout + result.stderr) == []
    return result.stdout


@pytest.mark.slow
def test_demo_on_generated_video_reaches_the_promised_score(tmp_path):
    out = run_demo("--workdir", str(tmp_path))
    line = next(line for line in out.splitlines() if line.startswith("J&F "))
    ours = float(line.split()[1])
    baseline = float(line.rsplit(" ", 1)[1])
    assert ours >= 0.85 and baseline < 0.5
    assert (tmp_path / "global_results-val.csv").is_file()
    gifs = sorted((tmp_path / "overlays").glob("*.gif"))
    assert len(gifs) == 2 and all(Image.open(g).n_frames == 24 for g in gifs)
    assert all(Image.open(g).size == (384, 256) for g in gifs)  # 96x64 shown 4x
    sheets = sorted((tmp_path / "overlays").glob("*_sheet.png"))
    # frame | prediction | ground truth (the generated video is annotated), tiles 96 px x 4
    assert len(sheets) == 2 and all(read_rgb(p).shape[1] == 3 * 384 + 2 * GAP for p in sheets)
    assert len(list((tmp_path / "predictions").rglob("*.png"))) == 48
    command = [sys.executable, "main.py", "--config", "configs/demo.py", "--workdir", str(tmp_path)]
    verbose = subprocess.run(
        [*command, "--verbosity=0"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert "Skipping 2 video(s)" in verbose.stdout
    assert len(LIBRARY_LOG_LINE.findall(verbose.stderr)) > 5  # the flag brings them back


@pytest.mark.slow
def test_demo_on_user_frames(tmp_path):
    video = make_synthetic_video(11, num_frames=5, height=64, width=96, num_objects=2)
    for t in range(5):
        write_rgb(tmp_path / "mine" / f"f{t}.jpg", video.frames[t])
    write_palette_png(tmp_path / "mask.png", video.labels[0])
    out = run_demo(
        "--workdir",
        str(tmp_path / "out"),
        f"--config.data.frames={tmp_path / 'mine'}",
        f"--config.data.first_mask={tmp_path / 'mask.png'}",
    )
    assert "Masks:" in out
    assert "trained on synthetic shapes only" in out and "stm-jax --config convert" in out
    written = sorted((tmp_path / "out/predictions/mine").glob("*.png"))
    assert [p.stem for p in written] == [f"f{t}" for t in range(5)]
    np.testing.assert_array_equal(np.asarray(Image.open(written[0])), video.labels[0])
    assert (tmp_path / "out/overlays/mine.gif").is_file()
    # No ground truth for a user's video: frame | prediction.
    assert read_rgb(tmp_path / "out/overlays/mine_sheet.png").shape[1] == 2 * 384 + GAP


def test_demo_reads_the_segment_jobs_spelling_and_the_deprecated_one(capsys):
    config = demo_config()
    assert user_video(config) == ("", "")
    config.data.update(frames="f", first_mask="m.png")
    assert user_video(config) == ("f", "m.png")
    assert capsys.readouterr().err == ""
    old = demo_config()
    old.input, old.first_mask = "f", "m.png"
    assert user_video(old) == ("f", "m.png")
    err = capsys.readouterr().err
    assert "--config.input is deprecated; use --config.data.frames" in err
    assert "--config.first_mask is deprecated; use --config.data.first_mask" in err
