"""The export job: a serialized step for cpu, cuda and tpu whose runner (jax, numpy and pillow only)
gives the segment job's masks on the same video; its contract; bad settings are one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import export as export_config
from configs import segment as segment_config
from stm_jax.cli_errors import ConfigError
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.io.images import read_label_mask, write_palette_png, write_rgb
from stm_jax.jobs import export as export_job
from stm_jax.jobs import segment as segment_job
from stm_jax.jobs.demo import SHIPPED_CHECKPOINT

HEIGHT, WIDTH, FRAMES = 56, 88, 9  # not multiples of 16: the exported padding and crop run too

# The runner in a process where flax and stm_jax cannot be imported at all.
_RUN_WITHOUT_MODEL_CODE = """
import runpy, sys
for name in ("flax", "stm_jax", "optax", "orbax", "ml_collections"):
    sys.modules[name] = None  # `import flax` now raises ImportError
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
assert not [m for m in sys.modules if m.split(".")[0] in ("flax", "stm_jax") and sys.modules[m]]
"""


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    video = make_synthetic_video(3, FRAMES, HEIGHT, WIDTH, 2)
    folder = tmp_path_factory.mktemp("video")
    for index, frame in enumerate(video.frames):
        write_rgb(folder / "frames" / f"{index:05d}.png", frame)  # lossless: both read the same
    write_palette_png(folder / "first_mask.png", video.labels[0])
    return folder


def export(workdir, **overrides):
    config = export_config.get_config()
    config.checkpoint = str(SHIPPED_CHECKPOINT)
    config.memory.update(mem_every=3, capacity=4)  # the video evicts
    config.export.update(height=HEIGHT, width=WIDTH, objects=2, **overrides)
    export_job.run(config, str(workdir))
    return config


@pytest.mark.slow
def test_runner_masks_equal_the_segment_jobs(tmp_path, video_folder, capsys):
    artifact = tmp_path / "exported"
    config = export(artifact)
    printed = capsys.readouterr().out
    assert "Exported the step for cpu, cuda, tpu" in printed
    contract = json.loads((artifact / "contract.json").read_text())
    assert contract["platforms"] == ["cpu", "cuda", "tpu"]
    assert (contract["videos"], contract["height"], contract["width"]) == (1, HEIGHT, WIDTH)
    assert contract["functions"]["step"]["inputs"] == ["weights", "frames", "state", "active"]
    assert contract["arrays"]["probs"]["shape"] == [1, HEIGHT, WIDTH, contract["num_slots"]]
    leaves = contract["state"]["leaves"]
    assert leaves[0]["path"] == ".bank.keys" and leaves[0]["shape"][:2] == [1, 2]
    with np.load(artifact / "weights.npz") as weights:
        assert (
            len(weights.files) == contract["weights"]["count"] == len(contract["weights"]["paths"])
        )
    # The runner, in a process that cannot import stm_jax or flax.
    out = tmp_path / "runner_masks"
    runner = artifact / "run_exported.py"
    command = [sys.executable, "-c", _RUN_WITHOUT_MODEL_CODE, str(runner), str(artifact)]
    command += [str(video_folder / "frames"), str(video_folder / "first_mask.png"), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "frames/s" in result.stdout
    # The segment job on the same video, with the same checkpoint and memory settings.
    segment = segment_config.get_config()
    segment.checkpoint = str(SHIPPED_CHECKPOINT)
    segment.memory.update(config.memory.to_dict())
    segment.data.update(
        frames=str(video_folder / "frames"), first_mask=str(video_folder / "first_mask.png")
    )
    segment.inference.compile_cache = False
    segment_job.run(segment, str(tmp_path / "job"))
    job_masks = sorted((tmp_path / "job/predictions/frames").glob("*.png"))
    runner_masks = sorted(out.glob("*.png"))
    assert [p.name for p in runner_masks] == [p.name for p in job_masks]
    assert len(job_masks) == FRAMES
    moving = 0
    for ours, theirs in zip(runner_masks, job_masks):
        labels = read_label_mask(ours)
        np.testing.assert_array_equal(labels, read_label_mask(theirs), err_msg=ours.name)
        moving += not np.array_equal(labels, read_label_mask(job_masks[0]))
    assert moving >= FRAMES - 2  # the objects move: the masks are not the first one copied


def test_runner_refuses_a_frame_of_another_size(tmp_path, video_folder):
    artifact = tmp_path / "exported"
    export(artifact, platforms="cpu")
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("0.png", "1.png"):
        Image.fromarray(np.zeros((HEIGHT, WIDTH + 16, 3), np.uint8)).save(frames / name)
    command = [sys.executable, str(artifact / "run_exported.py"), str(artifact), str(frames)]
    command += [str(video_folder / "first_mask.png"), str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and f"frames must be {WIDTH}x{HEIGHT}" in result.stderr


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("platforms", "cpu,gpu", "export.platforms='cpu,gpu'"),
        ("platforms", "tpu,tpu", "distinct names"),
        ("objects", 0, "export.objects=0"),
        ("videos", -1, "export.videos=-1"),
        ("objects", 12, "model.max_objects"),
    ],
)
def test_bad_export_settings_are_one_line_errors(tmp_path, field, value, message):
    config = export_config.get_config()
    config.checkpoint = str(SHIPPED_CHECKPOINT)
    config.export[field] = value
    with pytest.raises(ConfigError, match=message) as error:
        export_job.run(config, str(tmp_path))
    assert "\n" not in str(error.value)
