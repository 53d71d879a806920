"""The jobs and the Python API run one step: for every memory policy, on a video long enough to fill,
evict from and consolidate the memory, the segment job's PNGs equal `Segmenter`'s labels exactly;
and the YouTube-VOS job's output for an object given mid-video equals `Segmenter.add_objects`.

(Before the step existed once, the jobs' copy dropped the read's usage counters, so 'long_term'
consolidated the first grid rows of each frame instead of the most-used positions.)
"""

import json
from pathlib import Path

import numpy as np
import pytest

from configs import davis2017_val, youtubevos2019_valid
from stm_jax import Segmenter
from stm_jax.data.synthetic import make_synthetic_video, write_synthetic_davis
from stm_jax.io.images import read_label_mask, read_rgb, write_palette_png, write_rgb
from stm_jax.jobs import segment, youtubevos

SHIPPED = Path(__file__).resolve().parents[1] / "stm_jax" / "assets" / "synthetic_cpu"
# A small bank on a 36-frame video: full after 8 frames, then every kept frame evicts one.
BASE = dict(capacity=4, mem_every=2, chunk_frames=2, long_term_size=16, long_term_prototypes=4)
POLICIES = {
    "oldest": dict(eviction="oldest"),
    "none": dict(eviction="none"),
    "long_term": dict(eviction="long_term"),
    "least_used": dict(eviction="least_used"),
    "permanent_slots": dict(eviction="long_term", permanent_slots=3, capacity=6),
}


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    return write_synthetic_davis(
        tmp_path_factory.mktemp("davis"),
        num_train=0,
        num_val=1,
        num_frames=36,
        height=64,
        width=96,
        seed=11,
    )


# One policy in the quick tier, every policy in the full suite.
@pytest.mark.parametrize(
    "policy",
    [pytest.param(p, marks=() if p == "oldest" else pytest.mark.slow) for p in sorted(POLICIES)],
)
def test_segment_job_equals_the_segmenter(tmp_path, davis_root, policy):
    memory = {**BASE, **POLICIES[policy]}
    config = davis2017_val.get_config()
    config.checkpoint = str(SHIPPED)
    config.memory.update(memory)
    config.data.root = str(davis_root)
    segment.run(config, str(tmp_path / "out"))
    (name,) = (davis_root / "ImageSets/2017/val.txt").read_text().split()
    frames = sorted((davis_root / "JPEGImages/480p" / name).glob("*.jpg"))
    job = [read_label_mask(tmp_path / "out/predictions" / name / f"{p.stem}.png") for p in frames]

    api = Segmenter.from_checkpoint(SHIPPED, **memory)
    first = read_label_mask(davis_root / "Annotations/480p" / name / "00000.png")
    ours = [api.start(read_rgb(frames[0]), first)] + [api.step(read_rgb(p)) for p in frames[1:]]
    assert len(ours) == 36 and len(np.unique(ours[-1])) > 1
    for t, (a, b) in enumerate(zip(job, ours)):
        np.testing.assert_array_equal(a, b, err_msg=f"{policy}: frame {t}")
    bank = api.state.video.bank
    assert int(np.sum(np.asarray(bank.frame_index) >= 0)) == memory["capacity"]  # it was full
    if memory["eviction"] == "long_term":
        assert (
            np.asarray(bank.policy_state.valid).sum() == 16
        )  # consolidated until the store filled


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["oldest", "permanent_slots"])
def test_segment_job_with_corrections_equals_segmenter_correct(tmp_path, davis_root, policy):
    """data.correct_frames: the job pins the annotation of those frames as `Segmenter.correct`
    does after `step`, and writes it as their result."""
    memory = {**BASE, **POLICIES[policy]}
    fixed = (7, 20, 21)  # a memory frame (mem_every=2), then two in a row
    config = davis2017_val.get_config()
    config.checkpoint = str(SHIPPED)
    config.memory.update(memory)
    config.data.root = str(davis_root)
    config.data.correct_frames = ",".join(map(str, fixed))
    segment.run(config, str(tmp_path / "out"))
    (name,) = (davis_root / "ImageSets/2017/val.txt").read_text().split()
    frames = sorted((davis_root / "JPEGImages/480p" / name).glob("*.jpg"))
    annotations = davis_root / "Annotations/480p" / name
    job = [read_label_mask(tmp_path / "out/predictions" / name / f"{p.stem}.png") for p in frames]

    api = Segmenter.from_checkpoint(SHIPPED, **memory)
    ours = [api.start(read_rgb(frames[0]), read_label_mask(annotations / "00000.png"))]
    plain = Segmenter.from_checkpoint(SHIPPED, **memory)
    plain.start(read_rgb(frames[0]), read_label_mask(annotations / "00000.png"))
    uncorrected = []
    for t, path in enumerate(frames[1:], start=1):
        labels = api.step(read_rgb(path))
        uncorrected.append(plain.step(read_rgb(path)))
        if t in fixed:
            labels = api.correct(read_label_mask(annotations / f"{path.stem}.png"))
        ours.append(labels)
    for t, (a, b) in enumerate(zip(job, ours)):
        np.testing.assert_array_equal(a, b, err_msg=f"{policy}: frame {t}")
    for t in fixed:
        np.testing.assert_array_equal(
            job[t], read_label_mask(annotations / f"{frames[t].stem}.png")
        )
    # the corrections changed later frames, so the check above is not that of an uncorrected run
    assert any((a != b).any() for a, b in zip(job[22:], uncorrected[21:]))


def test_correct_frames_errors_name_the_problem(tmp_path, davis_root):
    config = davis2017_val.get_config()
    config.checkpoint = str(SHIPPED)
    config.data.root = str(davis_root)
    for value, expected in [("0", "frame 0 is the first mask"), ("99", "beyond video")]:
        config.data.correct_frames = value
        with pytest.raises(ValueError, match=expected):
            segment.run(config, str(tmp_path / value))


def write_youtube_tree(root: Path, video):
    """A YouTube-VOS valid tree: all 30 frames in valid_all_frames, every 5th in valid, object 3
    first annotated at frame 10."""
    name = "late"
    for t in range(len(video.frames)):
        write_rgb(root / "valid_all_frames/JPEGImages" / name / f"{t:05d}.jpg", video.frames[t])
        if t % 5 == 0:
            write_rgb(root / "valid/JPEGImages" / name / f"{t:05d}.jpg", video.frames[t])
    first = np.where(video.labels[0] == 3, 0, video.labels[0]).astype(np.uint8)
    late = np.where(video.labels[10] == 3, 3, 0).astype(np.uint8)
    write_palette_png(root / "valid/Annotations" / name / "00000.png", first)
    write_palette_png(root / "valid/Annotations" / name / "00010.png", late)
    sampled = [f"{t:05d}" for t in range(0, len(video.frames), 5)]
    objects = {"1": sampled, "2": sampled, "3": sampled[2:]}
    meta = {"videos": {name: {"objects": {k: {"frames": v} for k, v in objects.items()}}}}
    (root / "valid/meta.json").write_text(json.dumps(meta))
    return name, first, late


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["oldest", "long_term"])
def test_youtubevos_job_with_a_late_object_equals_segmenter_add_objects(tmp_path, policy):
    memory = {**BASE, **POLICIES[policy]}
    video = make_synthetic_video(22, num_frames=30, height=64, width=96, num_objects=3)
    name, first, late = write_youtube_tree(tmp_path / "ytvos", video)
    config = youtubevos2019_valid.get_config()
    config.checkpoint = str(SHIPPED)
    config.memory.update(memory)
    config.data.update(root=str(tmp_path / "ytvos"), frames_split="valid_all_frames")
    youtubevos.run(config, str(tmp_path / "out"))

    api = Segmenter.from_checkpoint(SHIPPED, **memory)
    jpegs = sorted((tmp_path / "ytvos/valid_all_frames/JPEGImages" / name).glob("*.jpg"))
    frames = [read_rgb(p) for p in jpegs]  # as the job reads them
    labels = {0: api.start(frames[0], first, num_objects=3)}
    for t in range(1, 30):
        labels[t] = api.step(frames[t])
        if t == 10:
            labels[t] = api.add_objects(late)
    written = sorted((tmp_path / "out/submission/Annotations" / name).glob("*.png"))
    assert [int(p.stem) for p in written] == list(range(0, 30, 5))
    for path in written:
        np.testing.assert_array_equal(read_label_mask(path), labels[int(path.stem)], path.name)
    assert np.any(labels[25] == 3)  # the late object is tracked after it was given
