"""STCN's YouTube-VOS protocol against the PyTorch reference of its loop
(tests/torch_stcn_reference.py `run_video_youtube`, written from STCN's eval_youtube.py /
inference_core_yv.py): a generated YouTube-VOS tree, objects given at frames 0, 3 and 7, mem_every 3
(so the count restarting at 3 and 7 changes the memory frames: 0, 3, 6, 7, 10 instead of 0, 3, 6,
9), random weights in an STCN-layout `.pth`. The YouTube-VOS job's stepper gives the reference's
probabilities within 1e-4 at every frame, and the job writes its labels and names the protocol."""

import json

import numpy as np
import pytest
import torch

from configs import youtubevos2019_valid
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.scheduler import VideoTask, segment_tasks
from stm_jax.inference.settings import make_stepper
from stm_jax.io.images import read_label_mask, read_rgb, write_palette_png, write_rgb
from stm_jax.jobs import youtubevos
from tests.torch_stcn_reference import run_video_youtube, write_stcn_pth

torch.set_grad_enabled(False)
# 50 x 70 pads to 64 x 80: 20 positions per memory frame, so top-20 chooses once an object has two.
FRAMES, HEIGHT, WIDTH, MEM_EVERY = 12, 50, 70, 3
STARTS = {1: 0, 2: 3, 3: 7}  # object -> the frame it is given at
TINY_STCN = dict(backbone="tiny", value_backbone="tiny", key_dim=16, value_dim=32, decoder_dim=16)
NAME = "late_objects"


def write_youtube_tree(root):
    """A valid split of one video; returns the frames as decoded from its JPEGs and the given
    masks {frame: ids of the objects given there}."""
    video = make_synthetic_video(11, num_frames=FRAMES, height=HEIGHT, width=WIDTH, num_objects=3)
    names = [f"{t:05d}" for t in range(FRAMES)]
    given = {}
    for obj, start in STARTS.items():
        labels = np.where(video.labels[start] == obj, obj, 0).astype(np.uint8)
        assert (labels == obj).sum() > 20, "the object must be visible where it is given"
        given[start] = labels
        write_palette_png(root / "valid/Annotations" / NAME / f"{names[start]}.png", labels)
    for t in range(FRAMES):
        write_rgb(root / "valid/JPEGImages" / NAME / f"{names[t]}.jpg", video.frames[t])
    objects = {str(o): {"frames": names[s:]} for o, s in STARTS.items()}
    (root / "valid/meta.json").write_text(json.dumps({"videos": {NAME: {"objects": objects}}}))
    paths = sorted((root / "valid/JPEGImages" / NAME).glob("*.jpg"))
    return np.stack([read_rgb(p) for p in paths]), given


@pytest.fixture(scope="module")
def youtube_video(tmp_path_factory):
    """(tree root, frames, given masks, .pth, reference probabilities [T, 4, H, W], the reference's
    memory frames per object)."""
    root = tmp_path_factory.mktemp("ytvos")
    frames, given = write_youtube_tree(root)
    checkpoint = tmp_path_factory.mktemp("weights") / "STCN.pth"
    model = write_stcn_pth(checkpoint, seed=4, **TINY_STCN)
    parts = {}
    reference = run_video_youtube(model, frames, given, 3, mem_every=MEM_EVERY, parts=parts)
    return root, frames, given, checkpoint, reference, parts["memory_frames"]


def job_config(checkpoint, root=""):
    config = youtubevos2019_valid.get_config()
    config.checkpoint = str(checkpoint)
    config.data.root = str(root)
    config.memory.mem_every = MEM_EVERY
    return config


def segment(config, frames, given):
    """The video through the stepper the YouTube-VOS job makes and the scheduler it runs; returns
    the stepper and the probabilities [T, H, W, K]."""
    model_config, variables = load_model(config)
    stepper = make_stepper(config, model_config, dataset=youtubevos.DATASET)
    later = {t: (given[t], [int(o) for o in np.unique(given[t]) if o]) for t in (3, 7)}
    task = VideoTask(NAME, list(frames), given[0], 3, later)
    outputs = segment_tasks(stepper, variables, [task], 1, return_probs=True)
    probs = np.stack([p for _, _, p in sorted(outputs, key=lambda item: item[1])])
    return stepper, probs


def test_youtubevos_stepper_matches_the_reference_loop(youtube_video):
    _, frames, given, checkpoint, reference, memory_frames = youtube_video
    # The reference's rule, by hand: every object's bank from its given frame on.
    assert memory_frames == {1: [0, 3, 6, 7, 10], 2: [3, 6, 7, 10], 3: [7, 10]}
    stepper, probs = segment(job_config(checkpoint), frames, given)
    memory = stepper.memory_config
    assert (memory.mem_every_counts, memory.per_object_memory, memory.given_merge) == (
        "since_last",
        True,
        "reaggregate",
    )
    assert (memory.similarity, memory.top_k, memory.read_previous) == ("l2", 20, False)
    for t in range(FRAMES):
        ours = np.moveaxis(probs[t, ..., :4], -1, 0)
        np.testing.assert_allclose(ours, reference[t], atol=1e-4, err_msg=f"frame {t}")
        np.testing.assert_array_equal(ours.argmax(0), reference[t].argmax(0), f"frame {t}")
    # Not flat: every object and the background win somewhere late in the video.
    assert set(np.unique(reference[-1].argmax(0))) == {0, 1, 2, 3}


# Each field of the protocol set back to the DAVIS protocol's value, and the first frame it changes:
# the merge at frame 3 itself, the per-object read from frame 4 (object 2 would read frame 0), the
# memory frames from frame 8 (7 is kept only because object 3 is given there).
DAVIS_FIELDS = [("given_merge", "replace", 3), ("per_object_memory", False, 4)]
DAVIS_FIELDS += [("mem_every_counts", "frame_index", 8)]


@pytest.mark.slow
@pytest.mark.parametrize("field, value, first_changed", DAVIS_FIELDS)
def test_each_protocol_field_changes_the_result(youtube_video, field, value, first_changed):
    """The parity above is not automatic: each field, set to the DAVIS protocol's value alone,
    moves the probabilities from the first frame it concerns on (and not before)."""
    _, frames, given, checkpoint, reference, _ = youtube_video
    config = job_config(checkpoint)
    config.memory[field] = value
    _, probs = segment(config, frames, given)
    ours = np.moveaxis(probs[..., :4], -1, 1)
    np.testing.assert_allclose(ours[:first_changed], reference[:first_changed], atol=1e-4)
    assert np.abs(ours[first_changed] - reference[first_changed]).max() > 1e-2


@pytest.mark.slow
def test_youtubevos_job_writes_the_reference_labels(tmp_path, youtube_video):
    root, _, _, checkpoint, reference, _ = youtube_video
    youtubevos.run(job_config(checkpoint, root), str(tmp_path / "out"))
    for t in range(FRAMES):
        written = read_label_mask(tmp_path / "out/submission/Annotations" / NAME / f"{t:05d}.png")
        np.testing.assert_array_equal(written, reference[t].argmax(0), f"frame {t}")
    job = json.loads((tmp_path / "out/submission/job.json").read_text())
    assert job["protocol"] == "stcn youtubevos, changed: mem_every=3"
    assert job["memory"]["per_object_memory"] is True
    assert job["memory"]["mem_every_counts"] == "since_last"
    assert job["memory"]["given_merge"] == "reaggregate"
