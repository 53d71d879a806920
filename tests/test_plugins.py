"""Plugins from the user's own code: a module outside the package registers a similarity and a
memory policy; `main.py` trains a tiny model with them and segments with them; the checkpoint
records them, and segmenting it without the plugin is a one-line error naming the missing entries.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from stm_jax import Segmenter
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.io.images import read_label_mask, read_rgb, write_palette_png, write_rgb
from stm_jax.memory.policy import POLICIES
from stm_jax.memory.similarity import SIMILARITIES
from stm_jax.plugins import load_plugins
from tests.test_cli_errors import assert_user_error, main_py

PLUGIN = Path(__file__).resolve().parents[1] / "docs/examples/plugins/my_plugin.py"


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory):
    """The documented plugin example, copied to a folder outside the repository."""
    path = tmp_path_factory.mktemp("user_code") / "my_plugin.py"
    shutil.copy(PLUGIN, path)
    return path


def write_video(folder):
    video = make_synthetic_video(4, num_frames=12, height=32, width=48, num_objects=2)
    for t, frame in enumerate(video.frames):
        write_rgb(folder / "frames" / f"{t:05d}.jpg", frame)
    write_palette_png(folder / "mask.png", video.labels[0])
    return folder / "frames", folder / "mask.png", video


TRAIN = [
    "--config",
    "configs/synthetic_cpu.py:tiny",
    "--config.memory.similarity=sharp_dot",
    "--config.memory.eviction=second_oldest",
]


def segment_args(workdir, frames, mask, checkpoint):
    return [
        "--config",
        "configs/segment.py",
        "--workdir",
        workdir,
        f"--config.data.frames={frames}",
        f"--config.data.first_mask={mask}",
        f"--config.checkpoint={checkpoint}",
        "--config.memory.capacity=3",
    ]


@pytest.mark.slow
def test_a_plugin_trains_segments_and_is_required_by_its_checkpoint(tmp_path, plugin_file):
    trained = tmp_path / "trained"
    result = main_py(*TRAIN, "--workdir", trained, f"--config.plugins={plugin_file}")
    assert result.returncode == 0, result.stderr[-3000:]
    metas = sorted(trained.glob("checkpoints/*/meta/metadata"))
    assert metas and json.loads(metas[-1].read_text())["plugins"] == str(plugin_file)

    frames, mask, video = write_video(tmp_path / "video")
    with_plugin = [*segment_args(tmp_path / "seg", frames, mask, trained), "--config.plugins"]
    with_plugin.append(str(plugin_file))
    extra = ["--config.memory.similarity=sharp_dot", "--config.memory.eviction=second_oldest"]
    result = main_py(*with_plugin, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    job = [read_label_mask(p) for p in sorted((tmp_path / "seg/predictions/frames").glob("*.png"))]
    assert len(job) == 12

    # The same checkpoint and plugin through the Python API: identical masks.
    seg = Segmenter.from_checkpoint(
        trained,
        plugins=[str(plugin_file)],
        capacity=3,
        similarity="sharp_dot",
        eviction="second_oldest",
    )
    decoded = [read_rgb(p) for p in sorted(frames.glob("*.jpg"))]  # as the job reads them
    ours = [seg.start(decoded[0], video.labels[0])]
    ours += [seg.step(frame) for frame in decoded[1:]]
    for t, (a, b) in enumerate(zip(job, ours)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {t}")

    # Without the plugin: one line naming the missing entries and the plugin to pass.
    result = main_py(*segment_args(tmp_path / "seg2", frames, mask, trained))
    assert_user_error(
        result, "memory.similarity='sharp_dot'", "second_oldest", f"--config.plugins={plugin_file}"
    )


def test_plugins_register_entries_and_bad_plugins_are_one_line_errors(tmp_path, plugin_file):
    load_plugins(str(plugin_file))
    load_plugins([str(plugin_file)])  # importing twice is a no-op
    assert "sharp_dot" in SIMILARITIES and "second_oldest" in POLICIES
    assert SIMILARITIES.origin("sharp_dot").startswith("stm_jax_plugin_my_plugin")
    result = main_py("--config", "configs/segment.py", "--config.plugins=no_such_module_xyz")
    assert_user_error(result, "plugin 'no_such_module_xyz' could not be imported")
    result = main_py("--config", "configs/segment.py", f"--config.plugins={tmp_path}/missing.py")
    assert_user_error(result, "no such file")
    result = main_py("--config", "configs/segment.py", "--config.memory.eviction=long_trm")
    assert_user_error(result, "memory.eviction='long_trm'", "did you mean 'long_term'")
    result = main_py(
        "--config", "configs/segment.py", "--config.model.backbone=resnet5", "--workdir", tmp_path
    )
    assert_user_error(result, "model.backbone='resnet5'", "did you mean 'resnet50'")
