"""The 'youtubevos' job: STM or STCN over YouTube-VOS valid/test, in the submission layout + zip.

Run (configs/youtubevos2018_valid.py, configs/youtubevos2019_valid.py):
  python main.py --config configs/youtubevos2018_valid.py --workdir OUT \
      --config.data.root=YTVOS_ROOT --config.checkpoint=STM_weights.pth
Reads <root>/<split>/meta.json, first-appearance masks from <root>/<split>/Annotations/<video>/ and
frames from <root>/<frames_split or split>/JPEGImages/<video>/ (use frames_split='valid_all_frames'
for the 30 fps release, as STM did). Objects that first appear mid-video are injected at their
first annotated frame (their mask overwrites the estimate there). Memory fields left unset follow
the model family's YouTube-VOS protocol (`ModelFamily.memory_protocol('youtubevos')`; STCN's: each
object's memory starts at the frame it is given, the mem_every count restarts at every such frame,
the merged frame is soft-aggregated again), named in the job's fingerprint ("protocol"). Writes
OUT/submission/Annotations/<video>/<frame>.png for the frames listed in meta.json and
OUT/submission.zip. Videos are split over processes and local devices like the DAVIS job, with
`inference.videos_per_step` videos of one frame size per compiled step; a video's PNGs are written
by a background thread into a hidden staging folder, moved into place once its last frame is
segmented (a killed run leaves no half-written video).

Before the first frame, meta.json is cross-checked against the tree: every listed frame must be on
disk and every object in the annotation of the frame it first appears in; all problems are reported
at once. The job's fingerprint is recorded in OUT/submission/job.json at the start (and each
finished video's in its folder, left out of the zip): an identical rerun continues with the videos
not yet finished; a run by another job (checkpoint, config, inputs, code) is refused unless
--config.overwrite=True, which redoes every video.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from stm_jax.evaluation.youtubevos import (
    VideoPlan,
    annotation_problems,
    frame_problems,
    load_meta,
    zip_submission,
)
from stm_jax.inference import fingerprint as fp
from stm_jax.inference.devices import local_devices
from stm_jax.inference.host_pipeline import BackgroundWriter
from stm_jax.inference.input_videos import VideoInputError, list_frames, problems_error
from stm_jax.inference.memory_fit import fit_tasks, run_plan, with_downscale
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.scheduler import VideoTask
from stm_jax.inference.sequence_output import check_job_folder, is_complete
from stm_jax.inference.settings import make_stepper
from stm_jax.inference.staged_writer import StagedVideos
from stm_jax.io.atomic import write_text_atomic
from stm_jax.io.frames_folder import frame_files
from stm_jax.io.images import read_label_mask, read_rgb
from stm_jax.memory.config import PROTOCOL_FIELDS, MemoryConfig
from stm_jax.model.family import get_family

DATASET = "youtubevos"  # the name of this dataset's protocol in `ModelFamily.memory_protocol`


def protocol_name(model_config, memory_config: MemoryConfig) -> str:
    """The memory protocol a run follows: '<family> youtubevos' (the family's own for YouTube-VOS),
    '<family>' (its general one, when it has none for YouTube-VOS), or the fields that differ."""
    family = get_family(model_config)
    published = {**dataclasses.asdict(MemoryConfig()), **family.memory_protocol(DATASET)}
    changed = [
        f"{name}={getattr(memory_config, name)!r}"
        for name in PROTOCOL_FIELDS
        if getattr(memory_config, name) != published[name]
    ]
    name = model_config.family
    if DATASET in family.dataset_memory_defaults:
        name = f"{name} {DATASET}"
    return f"{name}, changed: {', '.join(changed)}" if changed else name


def check_tree(plans: dict[str, VideoPlan], meta: Path, frames_root: Path, max_objects: int):
    """Raises one VideoInputError listing every mismatch between meta.json and the tree (frames
    missing on disk, objects absent from their first annotation, too many objects)."""
    annotations_root = meta.parent / "Annotations"
    problems = []
    for video, plan in plans.items():
        if not plan.first_frame:
            problems.append(f"{meta}: video {video} lists no objects; re-download meta.json.")
            continue
        frames, found = frame_files(frames_root / video)
        problems.extend(found)
        if frames:
            problems.extend(frame_problems(plan, [p.stem for p in frames], frames_root / video))
        problems.extend(annotation_problems(plan, annotations_root / video))
        num_objects = max(plan.first_frame)
        if num_objects > max_objects:
            problems.append(
                f"{annotations_root / video}: {num_objects} objects but model.max_objects="
                f"{max_objects}; pass --config.model.max_objects={num_objects}."
            )
    if problems:
        raise problems_error(problems)


def youtube_task(
    max_objects: int, video: str, plan: VideoPlan, frames_dir: Path, annotations: Path
):
    """One video checked by `check_tree`; returns (its scheduler task from the first object's
    appearance on, the names of the frames before it, which are background)."""
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


def video_fingerprint(job: dict, video: str) -> dict:
    """What a finished video's folder records: the job's fingerprint and the video's name."""
    return {**job, "video": video}


def finished(folder: Path, plan: VideoPlan, job: dict) -> bool:
    """The video's folder was moved into place by this job with every frame to output."""
    recorded = fp.read_fingerprint(folder)
    return recorded == video_fingerprint(job, plan.video) and is_complete(
        folder, plan.output_frames
    )


def write_submission(stepper, config, variables, tasks, submission, plans, job, progress) -> None:
    """Runs the tasks; each video's output frames go to its staging folder on the writer thread,
    which moves it into place after the video's last frame (the frames before the first object's
    appearance are never output frames). A failure leaves no partial folder. Each frame size is
    checked against the memory first (`stm_jax.inference.memory_fit`: refused, or downscaled with
    inference.downscale and written at the input size)."""
    devices = local_devices(config)
    plan = fit_tasks(config, stepper, variables, [task for task, _ in tasks], devices[0])
    staged = StagedVideos()
    outputs = {video: set(plan.output_frames) for video, plan in plans.items()}
    with BackgroundWriter() as writer:

        def emit(task, index, output):
            video, names = task.key
            labels = plan.labels(task, index, output)
            if index == 0:
                folder = submission / "Annotations" / video
                writer.submit(staged.start, video, folder, video_fingerprint(job, video))
            if names[index] in outputs[video]:
                writer.submit(staged.write, video, f"{names[index]}.png", labels)
            if index == len(names) - 1:
                writer.submit(staged.finish, video)
                writer.submit(progress.update, 1)

        run_plan(
            stepper,
            devices,
            variables,
            config,
            plan,
            emit,
            lambda e: writer.submit(staged.abort, e),
        )


def sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def run(config, workdir: str) -> None:
    root = Path(config.data.root)
    split_dir = root / config.data.split
    plans = load_meta(split_dir / "meta.json")
    frames_root = root / (config.data.get("frames_split") or config.data.split) / "JPEGImages"
    check_tree(plans, split_dir / "meta.json", frames_root, int(config.model.max_objects))
    model_config, variables = load_model(config)
    stepper = make_stepper(config, model_config, dataset=DATASET)
    model_config = stepper.model_config
    submission = Path(workdir) / "submission"
    job = fp.job_fingerprint(
        config.checkpoint, model_config, stepper.memory_config, merge_objects=False
    )
    job["protocol"] = protocol_name(model_config, stepper.memory_config)
    print(f"Memory protocol: {job['protocol']}.")
    job = with_downscale(job, config)
    job["inputs"] = {"root": str(root.resolve()), "frames": str(frames_root.resolve())}
    check_job_folder(submission, job, bool(config.get("overwrite")), fp.JOB_FILE)
    sync("youtubevos checked")  # every process has compared with the old record
    if jax.process_index() == 0:
        # Recorded before any video is written, so that a killed run can be resumed.
        write_text_atomic(submission / fp.JOB_FILE, json.dumps(job, indent=1) + "\n")
    videos = list(plans)[jax.process_index() :: jax.process_count()]
    # A video is redone unless this job finished it; overwrite replaces other jobs' folders.
    todo = [v for v in videos if not finished(submission / "Annotations" / v, plans[v], job)]
    if len(todo) < len(videos):
        print(f"Continuing: {len(videos) - len(todo)} of {len(videos)} video(s) already finished.")
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
        write_submission(stepper, config, variables, tasks, submission, plans, job, progress)
    sync("youtubevos done")
    if jax.process_index() == 0:
        archive = zip_submission(submission, Path(workdir) / "submission.zip", list(plans))
        print(f"Submission written to {submission} and {archive}")
