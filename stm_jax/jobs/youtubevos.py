"""The 'youtubevos' job: STM over YouTube-VOS valid/test, written in the submission layout + zip.

Run (configs/youtubevos2018_valid.py, configs/youtubevos2019_valid.py):
  python main.py --config configs/youtubevos2018_valid.py --workdir OUT \
      --config.data.root=YTVOS_ROOT --config.checkpoint=STM_weights.pth
Reads <root>/<split>/meta.json, first-appearance masks from <root>/<split>/Annotations/<video>/ and
frames from <root>/<frames_split or split>/JPEGImages/<video>/ (use frames_split='valid_all_frames'
for the 30 fps release, as STM did). Objects that first appear mid-video are injected at their
first annotated frame (their mask overwrites the estimate there). Writes
OUT/submission/Annotations/<video>/<frame>.png for the frames listed in meta.json and
OUT/submission.zip. Videos are split over processes and local devices like the DAVIS job. The job's
fingerprint is kept in OUT/submission/job.json; a rerun by another job (checkpoint, config, code)
is refused unless --config.overwrite=True.
"""

from __future__ import annotations

import json
import threading
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
from stm_jax.inference.devices import local_devices, map_over_devices
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.sequence_output import check_job_folder
from stm_jax.inference.step import FrameStepper
from stm_jax.inference.video import segment_video
from stm_jax.inference.videos import VideoInputError, list_frames
from stm_jax.io.atomic import write_text_atomic
from stm_jax.io.images import read_label_mask, read_rgb
from stm_jax.memory.config import MemoryConfig


def segment_youtube_video(stepper, variables, plan: VideoPlan, frames_dir: Path, annotations: Path):
    """Returns {frame name: labels} for every frame from the first object's appearance on."""
    frame_paths = list_frames(frames_dir)
    names = [p.stem for p in frame_paths]
    starts = sorted(set(plan.first_frame.values()))
    missing = [s for s in starts if s not in names]
    if missing:
        raise VideoInputError(f"{frames_dir}: frames {missing} named in meta.json are missing.")
    first = names.index(starts[0])
    num_objects = max(plan.first_frame)
    if num_objects > stepper.model_config.max_objects:
        raise VideoInputError(
            f"{annotations}: {num_objects} objects but model.max_objects="
            f"{stepper.model_config.max_objects}; pass --config.model.max_objects={num_objects}."
        )

    def given(frame_name):
        labels = read_label_mask(annotations / f"{frame_name}.png")
        ids = plan.objects_starting_at(frame_name)
        return np.where(np.isin(labels, ids), labels, 0).astype(np.uint8), ids

    first_labels, _ = given(starts[0])
    later = {names.index(s) - first: given(s) for s in starts[1:]}
    loaders = [lambda p=path: read_rgb(p) for path in frame_paths[first:]]
    outputs = segment_video(stepper, variables, loaders, first_labels, num_objects, later)
    predictions = dict(zip(names[first:], outputs))
    height, width = first_labels.shape
    for name in names[:first]:  # before any object appears: background
        predictions[name] = np.zeros((height, width), np.uint8)
    return predictions


def run(config, workdir: str) -> None:
    root = Path(config.data.root)
    split_dir = root / config.data.split
    plans = load_meta(split_dir / "meta.json")
    frames_root = root / (config.data.get("frames_split") or config.data.split) / "JPEGImages"
    model_config, variables = load_model(config)
    stepper = FrameStepper(model_config, MemoryConfig.from_config(config.memory))
    submission = Path(workdir) / "submission"
    job = fp.job_fingerprint(
        config.checkpoint, model_config, stepper.memory_config, merge_objects=False
    )
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
    lock = threading.Lock()
    with tqdm(total=len(todo), unit="video", desc="youtube-vos", dynamic_ncols=True) as progress:

        def work(video, replica):
            predictions = segment_youtube_video(
                stepper,
                replica,
                plans[video],
                frames_root / video,
                split_dir / "Annotations" / video,
            )
            write_video_predictions(submission, plans[video], predictions)
            with lock:
                progress.update(1)

        map_over_devices(local_devices(config), variables, todo, work)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("youtubevos done")
    if jax.process_index() == 0:
        write_text_atomic(submission / fp.JOB_FILE, json.dumps(job, indent=1) + "\n")
        archive = zip_submission(submission, Path(workdir) / "submission.zip")
        print(f"Submission written to {submission} and {archive}")
