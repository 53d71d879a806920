"""The 'segment' job: STM over DAVIS-layout videos or a user's folder, DAVIS palette PNGs out.

Run (see configs/davis2017_val.py, davis2016_val.py, segment.py):
  python main.py --config configs/davis2017_val.py --workdir OUT \
      --config.data.root=DAVIS_ROOT --config.checkpoint=STM_weights.pth
Writes OUT/predictions/<video>/<frame>.png at the input size with the frames' names, and the job's
fingerprint beside them (OUT/predictions/<video>/fingerprint.json, OUT/predictions/job.json). Every
input is checked before the first frame; a video's folder appears only when all its frames are
written. A rerun skips videos whose predictions were made by the same job and refuses outputs of
another job (unless --config.overwrite=True). Videos are split over processes (multi-host) and,
within a process, run concurrently on the local devices, grouped by frame size with
`inference.videos_per_step` videos per compiled step (stm_jax.inference.scheduler); PNGs are written
by a background thread while the device runs the next step.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from stm_jax.config_checks import check_config
from stm_jax.data.registry import segment_layout
from stm_jax.inference import fingerprint as fp
from stm_jax.inference.corrections import correction_labels, parse_frames
from stm_jax.inference.devices import local_devices
from stm_jax.inference.host_pipeline import BackgroundWriter
from stm_jax.inference.input_videos import Video, load_first_labels
from stm_jax.inference.memory_fit import SizePlan, fit_tasks, run_plan, with_downscale
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.preflight import check_videos
from stm_jax.inference.scheduler import VideoTask
from stm_jax.inference.sequence_output import plan_outputs
from stm_jax.inference.settings import make_stepper
from stm_jax.inference.staged_writer import StagedVideos
from stm_jax.io.atomic import write_text_atomic
from stm_jax.io.images import read_label_mask, read_rgb


def list_videos(config) -> list[Video]:
    """The videos of `config.data`, listed by its layout (`stm_jax.data.registry.DATASETS`)."""
    return segment_layout(config.data.layout).segment_videos(config.data)


def merges_objects(config) -> bool:
    """Whether the layout scores (and segments) every object of a video as one (DAVIS-2016)."""
    layout = segment_layout(config.data.layout)
    return bool(getattr(layout, "single_object", lambda data: False)(config.data))


def video_task(
    video: Video, max_objects: int, merge_objects: bool, correct_frames: tuple[int, ...] = ()
) -> VideoTask:
    """One checked video as a scheduler task (frames decoded when the scheduler asks), with the
    annotations of `correct_frames` as its corrections."""
    labels, num_objects = load_first_labels(video, max_objects, merge_objects)
    loaders = [lambda p=path: read_rgb(p) for path in video.frame_paths]
    fixes = (
        correction_labels(video, correct_frames, labels, merge_objects) if correct_frames else None
    )
    return VideoTask(video, loaders, labels, num_objects, corrections=fixes)


def write_predictions(
    stepper, devices, variables, config, plan: SizePlan, out_root, fingerprints, progress
):
    """Runs the plan's tasks through the scheduler; a video's PNGs go to its staging folder on the
    writer thread, which moves it into place after its last frame. A failure leaves no partial
    folder. Downscaled videos' masks are brought back to the input size there (`SizePlan`)."""
    staged = StagedVideos()
    with BackgroundWriter() as writer:

        def write(task, index, out):
            labels = plan.labels(task, index, out)
            staged.write(task.key.name, f"{task.key.frame_names[index]}.png", labels)

        def emit(task, index, out):
            video = task.key
            if index == 0:
                writer.submit(
                    staged.start, video.name, out_root / video.name, fingerprints[video.name]
                )
            writer.submit(write, task, index, out)
            writer.submit(progress.update, 1)
            if index == len(video.frame_paths) - 1:
                writer.submit(staged.finish, video.name)

        run_plan(
            stepper,
            devices,
            variables,
            config,
            plan,
            emit,
            lambda e: writer.submit(staged.abort, e),
        )


def segment_videos(config, workdir, videos: list[Video] | None = None) -> Path:
    """Checks every input, segments this process's share of the videos; returns the predictions
    folder. Raises VideoInputError (all input problems at once) or StaleOutputError before any work."""
    check_config(config)  # also for library callers that bypass main.py
    videos = list_videos(config) if videos is None else videos
    merge_objects = merges_objects(config)
    check_videos(videos, int(config.model.max_objects), merge_objects)
    model_config, variables = load_model(config)
    stepper = make_stepper(config, model_config)
    model_config, memory_config = stepper.model_config, stepper.memory_config
    out_root = Path(workdir) / "predictions"
    job = fp.job_fingerprint(config.checkpoint, model_config, memory_config, merge_objects)
    correct_frames = parse_frames(config.data.get("correct_frames", ""))
    if correct_frames:  # other results: a run without them must not pass for this one
        job["correct_frames"] = list(correct_frames)
    job = with_downscale(job, config)
    fingerprints = {v.name: fp.video_fingerprint(job, v) for v in videos}
    mine = videos[jax.process_index() :: jax.process_count()]
    todo, skipped = plan_outputs(out_root, mine, fingerprints, bool(config.get("overwrite")))
    if skipped:
        print(f"Skipping {len(skipped)} video(s) already segmented by this job in {out_root}.")
    total = sum(len(v.frame_paths) for v in todo)
    tasks = [video_task(v, model_config.max_objects, merge_objects, correct_frames) for v in todo]
    devices = local_devices(config)
    plan = fit_tasks(config, stepper, variables, tasks, devices[0])
    with tqdm(total=total, unit="frame", desc="segment", dynamic_ncols=True) as progress:
        write_predictions(
            stepper, devices, variables, config, plan, out_root, fingerprints, progress
        )
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("segment_videos done")
    if jax.process_index() == 0:
        write_text_atomic(out_root / fp.JOB_FILE, json.dumps(job, indent=1) + "\n")
    return out_root


def ground_truth(video: Video, merge_objects: bool = False) -> np.ndarray | None:
    """Every frame's annotated ids (DAVIS layout), or None when a frame has no annotation."""
    if video.annotations_dir is None:
        return None
    paths = [video.annotations_dir / f"{name}.png" for name in video.frame_names]
    if not all(p.is_file() for p in paths):
        return None
    labels = np.stack([read_label_mask(p) for p in paths])
    # DAVIS-2016: every id > 0 is the one object, as the scorer reads it.
    return (labels > 0).astype(np.uint8) if merge_objects else labels


def write_overlays(
    videos: list[Video], pred_root: Path, out_dir: Path, merge_objects: bool = False
) -> None:
    """An overlay animation and a side-by-side sheet (frame | prediction | ground truth when the
    layout has it) per video, from the written predictions."""
    from stm_jax.evaluation.overlay import write_sequence_overlay

    for video in tqdm(videos, desc="overlays", unit="video"):
        frames = np.stack([read_rgb(p) for p in video.frame_paths])
        labels = np.stack(
            [read_label_mask(pred_root / video.name / f"{n}.png") for n in video.frame_names]
        )
        truth = ground_truth(video, merge_objects)
        write_sequence_overlay(out_dir, video.name, frames, labels, truth)


def run(config, workdir: str) -> None:
    videos = list_videos(config)
    out_root = segment_videos(config, workdir, videos)
    if config.get("overlays") and jax.process_index() == 0:
        write_overlays(videos, out_root, Path(workdir) / "overlays", merges_objects(config))
    print(f"Predictions written to {out_root}")
