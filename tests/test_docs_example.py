"""The docs example (docs/examples/segment_video_file.py) runs as written on a generated video."""

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.io.images import write_palette_png

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_streaming_example_segments_a_gif_and_writes_an_overlay(tmp_path):
    video = make_synthetic_video(11, num_frames=12, height=64, width=96, num_objects=2)
    iio.imwrite(tmp_path / "video.gif", video.frames, duration=100, loop=0)
    write_palette_png(tmp_path / "first.png", video.labels[0])
    out = tmp_path / "overlay.gif"
    command = [
        sys.executable,
        "-m",
        "docs.examples.segment_video_file",
        str(tmp_path / "video.gif"),
    ]
    command += [str(tmp_path / "first.png"), str(out), "--eviction", "long_term"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "12 frames segmented" in result.stdout
    written = iio.imread(out, index=None)
    assert written.shape[:3] == (12, 64, 96)
    # The overlay differs from the input where objects are (it is drawn, not copied).
    assert np.abs(written[5, ..., :3].astype(int) - video.frames[5]).max() > 30
