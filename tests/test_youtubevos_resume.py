"""A YouTube-VOS run stopped midway leaves only whole videos; the identical rerun segments just the
videos not yet finished and ends with the submission of an uninterrupted run; other settings are
refused."""

import json
import zipfile

import pytest

from configs import youtubevos2019_valid
from stm_jax.inference import memory_fit
from stm_jax.inference.sequence_output import StaleOutputError
from stm_jax.jobs import youtubevos
from tests.data_fixtures import youtube_valid_tree
from tests.model_fixtures import tiny_run_config, write_tiny_pth

REAL_SEGMENT = memory_fit.segment_on_devices


class Killed(Exception):
    pass


def make_config(root, pth):
    config = tiny_run_config(youtubevos2019_valid, pth, root=str(root))
    config.inference.videos_per_step = 1  # the same compiled step whichever videos are left
    return config


def pngs(submission):
    return {
        p.relative_to(submission).as_posix(): p.read_bytes()
        for p in sorted((submission / "Annotations").rglob("*.png"))
    }


def zipped(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in sorted(archive.namelist())}


def stop_in_video(monkeypatch, video, frame_index):
    """Makes the per-video loop raise when `video` emits its frame `frame_index`; records which
    videos were segmented."""
    segmented = []

    def segment(stepper, devices, variables, tasks, per_step, emit, **kwargs):
        def stopping_emit(task, index, labels):
            if index == 0:
                segmented.append(task.key[0])
            if (task.key[0], index) == (video, frame_index):
                raise Killed("stopped")
            emit(task, index, labels)

        return REAL_SEGMENT(stepper, devices, variables, tasks, per_step, stopping_emit, **kwargs)

    monkeypatch.setattr(memory_fit, "segment_on_devices", segment)  # the jobs' scheduler call
    return segmented


def test_interrupted_run_resumes_with_unfinished_videos_only(tmp_path, monkeypatch):
    valid = youtube_valid_tree(tmp_path / "ytvos")
    videos = sorted(json.loads((valid / "meta.json").read_text())["videos"])
    config = make_config(tmp_path / "ytvos", write_tiny_pth(tmp_path / "tiny.pth"))
    youtubevos.run(config, str(tmp_path / "full"))
    expected = pngs(tmp_path / "full/submission")
    assert len(expected) == 3 * 2  # frames 00000 and 00003 of every video

    segmented = stop_in_video(monkeypatch, videos[1], 2)
    out = tmp_path / "out"
    with pytest.raises(Killed):
        youtubevos.run(config, str(out))
    annotations = out / "submission/Annotations"
    assert segmented == videos[:2]
    assert sorted(p.name for p in annotations.iterdir()) == [videos[0]]  # no half-written video
    assert (out / "submission/job.json").is_file()  # recorded at the start
    assert not (out / "submission.zip").exists()
    # A kill -9 while the last video's PNGs were being written leaves its staging folder.
    leftover = annotations / f".{videos[2]}.partial-killed"
    leftover.mkdir()
    (leftover / "00000.png").write_bytes(b"half")

    other = make_config(tmp_path / "ytvos", config.checkpoint)
    other.memory.mem_every = 2
    with pytest.raises(StaleOutputError, match=r"another job \(differs: memory.mem_every\b"):
        youtubevos.run(other, str(out))

    done = {p: p.stat().st_mtime_ns for p in (annotations / videos[0]).iterdir()}
    segmented = stop_in_video(monkeypatch, "none", 0)
    youtubevos.run(config, str(out))
    assert segmented == videos[1:]  # the finished video is not segmented again
    assert done == {p: p.stat().st_mtime_ns for p in (annotations / videos[0]).iterdir()}
    assert pngs(out / "submission") == expected
    assert sorted(p.name for p in annotations.iterdir()) == videos  # staging leftover removed
    full_zip = zipped(tmp_path / "full/submission.zip")
    assert zipped(out / "submission.zip") == full_zip
    assert sorted(full_zip) == sorted(expected)  # PNGs only: no fingerprint records

    segmented = stop_in_video(monkeypatch, "none", 0)
    youtubevos.run(config, str(out))  # everything finished: nothing to segment
    assert segmented == []


def test_overwrite_redoes_every_video_of_another_job_even_after_a_stop(tmp_path, monkeypatch):
    youtube_valid_tree(tmp_path / "ytvos", num_videos=2)
    first = make_config(tmp_path / "ytvos", write_tiny_pth(tmp_path / "a.pth", seed=0))
    second = make_config(tmp_path / "ytvos", write_tiny_pth(tmp_path / "b.pth", seed=1))
    youtubevos.run(second, str(tmp_path / "full"))
    youtubevos.run(first, str(tmp_path / "out"))
    second.overwrite = True
    segmented = stop_in_video(monkeypatch, "vid01", 1)
    with pytest.raises(Killed):
        youtubevos.run(second, str(tmp_path / "out"))  # vid00 redone, vid01 still the first job's
    assert segmented == ["vid00", "vid01"]
    second.overwrite = False
    segmented = stop_in_video(monkeypatch, "none", 0)
    youtubevos.run(second, str(tmp_path / "out"))
    assert segmented == ["vid01"]  # the first job's folder is not taken as finished
    assert pngs(tmp_path / "out/submission") == pngs(tmp_path / "full/submission")
