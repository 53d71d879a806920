"""The demo's code path as the README runs it: shipped checkpoint, generated video, J&F, overlays."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.io.images import write_palette_png, write_rgb

ROOT = Path(__file__).resolve().parents[1]


LIBRARY_LOG_LINE = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)


def run_demo(*args, logs_allowed=False):
    command = [sys.executable, "main.py", "--config", "configs/demo.py", *args]
    result = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    if not logs_allowed:  # orbax / absl / jax INFO lines are hidden unless asked for
        assert LIBRARY_LOG_LINE.findall(result.stdout + result.stderr) == []
    return result.stdout


def test_demo_on_generated_video_reaches_the_promised_score(tmp_path):
    out = run_demo("--workdir", str(tmp_path))
    line = next(line for line in out.splitlines() if line.startswith("J&F "))
    ours = float(line.split()[1])
    baseline = float(line.rsplit(" ", 1)[1])
    assert ours >= 0.85 and baseline < 0.5
    assert (tmp_path / "global_results-val.csv").is_file()
    gifs = sorted((tmp_path / "overlays").glob("*.gif"))
    assert len(gifs) == 2 and all(Image.open(g).n_frames == 24 for g in gifs)
    assert len(list((tmp_path / "predictions").rglob("*.png"))) == 48
    command = [sys.executable, "main.py", "--config", "configs/demo.py", "--workdir", str(tmp_path)]
    verbose = subprocess.run(
        [*command, "--verbosity=0"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert "Skipping 2 video(s)" in verbose.stdout
    assert len(LIBRARY_LOG_LINE.findall(verbose.stderr)) > 5  # the flag brings them back


def test_demo_on_user_frames(tmp_path):
    video = make_synthetic_video(11, num_frames=5, height=64, width=96, num_objects=2)
    for t in range(5):
        write_rgb(tmp_path / "mine" / f"f{t}.jpg", video.frames[t])
    write_palette_png(tmp_path / "mask.png", video.labels[0])
    out = run_demo(
        "--workdir",
        str(tmp_path / "out"),
        f"--config.input={tmp_path / 'mine'}",
        f"--config.first_mask={tmp_path / 'mask.png'}",
    )
    assert "Masks:" in out
    assert "trained on synthetic shapes only" in out and "configs/convert.py" in out
    written = sorted((tmp_path / "out/predictions/mine").glob("*.png"))
    assert [p.stem for p in written] == [f"f{t}" for t in range(5)]
    np.testing.assert_array_equal(np.asarray(Image.open(written[0])), video.labels[0])
    assert (tmp_path / "out/overlays/mine.gif").is_file()
