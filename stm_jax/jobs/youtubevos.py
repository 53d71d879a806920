"""The 'youtubevos' job: STM over YouTube-VOS valid/test, written in the submission layout + zip.

Run (configs/youtubevos2018_valid.py, configs/youtubevos2019_valid.py):
  python main.py --config configs/youtubevos2018_valid.py --workdir OUT \
      --config.data.root=YTVOS_ROOT --config.checkpoint=STM_weights.pth
Reads <root>/<split>/meta.json, first-appearance masks from <root>/<split>/Annotations/<video>/ and
frames from <root>/<frames_split or split>/JPEGImages/<video>/ (use frames_split='valid_all_frames'
for the 30 fps release, as STM did). Objects that first appear mid-video are injected at their
first annotated frame (their mask overwrites the estimate there). Writes
OUT/submission/Annotations/<video>/<frame>.png for the frames listed in meta.json and
OUT/submission.zip. Videos are split over processes and local devices like the DAVIS job, with
`inference.videos_per_step` videos of one frame size per compiled step; a video's PNGs are written
by a background thread once its last frame is segmented. The job's
fingerprint is kept in OUT/submission/job.json; a rerun by another job (checkpoint, config, code)
is refused unless --config.overwrite=True.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from stm_jax.evaluation.youtubevos import (
    VideoPlan,
    load_meta,
    write_video_predictions,
    zip_submission,
)
from stm_jax.inference import fingerprint as fp
from stm_jax.inference.devices import local_devices
from stm_jax.inference.host_pipeline import BackgroundWriter
from stm_jax.inference.input_videos import VideoInputError, list_frames
from stm_jax.inference.memory_fit import fit_tasks, with_downscale
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.scheduler import VideoTask, segment_on_devices
from stm_jax.inference.sequence_output import check_job_folder
from stm_jax.inference.settings import VideosPerStep, make_stepper
from stm_jax.io.atomic import write_text_atomic
from stm_jax.io.images import read_label_mask, read_rgb


def youtube_task(
    max_objects: int, video: str, plan: VideoPlan, frames_dir: Path, annotations: Path
):
    """Checks one video; returns (its scheduler task from the first object's appearance on, the
    names of the frames before it, which are background)."""
    frame_paths = list_frames(frames_dir)
    names = [p.stem for p in frame_paths]
    starts = sorted(set(plan.first_frame.values()))
    missing = [s for s in starts if s not in names]
    if missing:
        raise VideoInputError(f"{frames_dir}: frames {missing} named in meta.json are missing.")
    first = names.index(starts[0])
    num_objects = max(plan.first_frame)
    if num_objects > max_objects:
        raise VideoInputError(
            f"{annotations}: {num_objects} objects but model.max_objects="
            f"{max_objects}; pass --config.model.max_objects={num_objects}."
        )

    def given(frame_name):
        labels = read_label_mask(annotations / f"{frame_name}.png")
        ids = plan.objects_starting_at(frame_name)
        return np.where(np.isin(labels, ids), labels, 0).astype(np.uint8), ids

    first_labels, _ = given(starts[0])
    later = {names.index(s) - first: given(s) for s in starts[1:]}
    loaders = [lambda p=path: read_rgb(p) for path in frame_paths[first:]]
    task = VideoTask((video, tuple(names[first:])), loaders, first_labels, num_objects, later)
    return task, names[:first]


def write_submission(stepper, config, variables, tasks, submission, plans, progress) -> None:
    """Runs the tasks; each video's predictions are written on the writer thread after its last
    frame (frames before the first object's appearance are background). Each frame size is
    checked against the memory first (`stm_jax.inference.memory_fit`: refused, or downscaled with
    inference.downscale and written at the input size)."""
    devices = local_devices(config)
    plan = fit_tasks(config, stepper, variables, [task for task, _ in tasks], devices[0])
    collected = {task.key[0]: {} for task, _ in tasks}
    before = {task.key[0]: names for task, names in tasks}

    def finish(video, predictions):
        write_video_predictions(submission, plans[video], predictions)
        progress.update(1)

    inference = config.get("inference") or {}
    with BackgroundWriter() as writer:

        def emit(task, index, output):
            video, names = task.key
            labels = plan.labels(task, index, output)
            predictions = collected[video]
            predictions[names[index]] = labels
            if len(predictions) == len(names):
                for name in before[video]:
                    predictions[name] = np.zeros_like(labels)
                writer.submit(finish, video, collected.pop(video))

        segment_on_devices(
            stepper,
            devices,
            variables,
            plan.tasks,
            VideosPerStep(config, stepper),
            emit,
            prefetch=inference.get("prefetch", 4),
            decode_threads=inference.get("decode_threads", 4),
            return_probs=plan.downscaled,
        )


def run(config, workdir: str) -> None:
    root = Path(config.data.root)
    split_dir = root / config.data.split
    plans = load_meta(split_dir / "meta.json")
    frames_root = root / (config.data.get("frames_split") or config.data.split) / "JPEGImages"
    model_config, variables = load_model(config)
    stepper = make_stepper(config, model_config)
    model_config = stepper.model_config
    submission = Path(workdir) / "submission"
    job = fp.job_fingerprint(
        config.checkpoint, model_config, stepper.memory_config, merge_objects=False
    )
    job = with_downscale(job, config)
    job["inputs"] = {"root": str(root.resolve()), "frames": str(frames_root.resolve())}
    redo = check_job_folder(submission, job, bool(config.get("overwrite")), fp.JOB_FILE)
    videos = list(plans)[jax.process_index() :: jax.process_count()]
    todo = [
        v
        for v in videos
        if redo
        or not all(
            (submission / "Annotations" / v / f"{f}.png").is_file() for f in plans[v].output_frames
        )
    ]
    tasks = [
        youtube_task(
            model_config.max_objects,
            v,
            plans[v],
            frames_root / v,
            split_dir / "Annotations" / v,
        )
        for v in todo
    ]
    with tqdm(total=len(todo), unit="video", desc="youtube-vos", dynamic_ncols=True) as progress:
        write_submission(stepper, config, variables, tasks, submission, plans, progress)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("youtubevos done")
    if jax.process_index() == 0:
        write_text_atomic(submission / fp.JOB_FILE, json.dumps(job, indent=1) + "\n")
        archive = zip_submission(submission, Path(workdir) / "submission.zip")
        print(f"Submission written to {submission} and {archive}")
