"""User errors through main.py: one short message, exit code 2, no traceback; no library INFO logs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stm_jax.io.images import write_palette_png, write_rgb
from tests.model_fixtures import TINY_OVERRIDES, write_tiny_pth

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_LOG_LINE = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)


def main_py(*args, env=None):
    return subprocess.run(
        [sys.executable, "main.py", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2 and lines[0].startswith("error: "), result.stderr
    assert "--config.debug=True" in lines[-1]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory):
    return write_tiny_pth(tmp_path_factory.mktemp("weights") / "tiny.pth")


def write_video(folder, mask=None):
    for index in range(3):
        write_rgb(
            folder / "frames" / f"{index}.jpg", np.full((32, 48, 3), 90 + 20 * index, np.uint8)
        )
    if mask is None:
        mask = np.zeros((32, 48), np.uint8)
        mask[5:15, 5:20] = 1
    write_palette_png(folder / "mask.png", mask)
    return folder / "frames", folder / "mask.png"


def segment_args(workdir, frames, mask, checkpoint):
    return [
        "--config",
        "configs/segment.py",
        "--workdir",
        workdir,
        f"--config.data.frames={frames}",
        f"--config.data.first_mask={mask}",
        f"--config.checkpoint={checkpoint}",
        "--config.memory.capacity=4",
    ] + [f"--config.model.{k}={v}" for k, v in TINY_OVERRIDES.items()]


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("--config.memory.mem_every=0", "memory.mem_every=0 must be >= 1"),
        ("--config.memory.capacity=1", "memory.capacity=1 must be >= 2"),
        ("--config.memory.chunk_frames=0", "memory.chunk_frames=0 must be >= 1"),
        (
            "--config.memory.similarity=nearest",
            "memory.similarity='nearest' is not a registered memory similarity; choose one of "
            "cosine, dot, l2",
        ),
        ("--config.model.similarity=l2", "unknown config field"),  # the read lives in memory now
        ("--config.memry.capacity=4", "unknown config field memry"),
        (
            "--config.memory.capacty=4",
            'unknown config field --config.memory.capacty (did you mean "capacity"?)',
        ),
        ("--config.memory.capacity=many", "invalid literal for int()"),
    ],
)
def test_bad_config_values_are_one_line_errors(tmp_path, override, fragment):
    assert_user_error(
        main_py("--config", "configs/segment.py", "--workdir", tmp_path, override), fragment
    )
    assert not list(tmp_path.rglob("*.png"))


def test_missing_config_file_is_a_one_line_error(tmp_path):
    result = main_py("--config", tmp_path / "nothere.py", "--workdir", tmp_path)
    assert_user_error(result, "cannot load the config file", "No such file or directory")


@pytest.mark.slow
def test_debug_switch_shows_the_traceback(tmp_path):
    args = ["--config", "configs/demo.py", "--workdir", tmp_path, "--config.memory.mem_every=0"]
    for result in (
        main_py(*args, "--config.debug=True"),
        main_py(*args, env={"STM_JAX_DEBUG": "1"}),
    ):
        assert result.returncode != 0 and "Traceback" in result.stderr
        assert "ConfigError: bad config value" in result.stderr


@pytest.mark.slow
def test_bad_inputs_are_one_line_errors(tmp_path, tiny_pth):
    frames, mask = write_video(tmp_path / "ok")
    void = np.zeros((32, 48), np.uint8)
    void[5:15, 5:20] = 255
    _, void_mask = write_video(tmp_path / "void", void)
    out = tmp_path / "out"
    assert_user_error(
        main_py(*segment_args(out, frames, void_mask, tiny_pth)),
        "one object with id 255, which is void: use ids 1..N",
    )
    assert_user_error(
        main_py(*segment_args(out, frames, mask, tmp_path / "missing.pth")),
        "missing.pth: checkpoint not found",
    )
    write_palette_png(frames / "0.png", np.ones((32, 48), np.uint8))  # a mask among the frames
    assert_user_error(
        main_py(*segment_args(out, frames, mask, tiny_pth)), "look like masks", "0.png"
    )
    assert_user_error(
        main_py("--config", "configs/demo.py", "--workdir", out, f"--config.data.frames={frames}"),
        "--config.data.frames needs --config.data.first_mask=MASK.png",
    )
    assert not list(out.rglob("*.png"))


@pytest.mark.slow
def test_pt_file_runs_quietly_and_another_checkpoint_is_refused(tmp_path, tiny_pth):
    frames, mask = write_video(tmp_path / "video")
    pt = tmp_path / "tiny.pt"
    shutil.copy(tiny_pth, pt)
    out = tmp_path / "out"
    result = main_py(*segment_args(out, frames, mask, pt))
    assert result.returncode == 0, result.stderr
    assert LIBRARY_LOG_LINE.findall(result.stdout + result.stderr) == []
    assert "Unable to initialize backend" not in result.stderr
    written = sorted((out / "predictions/frames").glob("*.png"))
    assert [p.name for p in written] == ["0.png", "1.png", "2.png"]
    other = write_tiny_pth(tmp_path / "other.pth", seed=3)
    assert_user_error(
        main_py(*segment_args(out, frames, mask, other)),
        "were made by another job",
        f"checkpoint ({pt.resolve()} -> {other.resolve()})",
        "--config.overwrite=True",
    )
