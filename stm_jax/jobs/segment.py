"""The 'segment' job: STM over DAVIS-layout videos or a user's folder, DAVIS palette PNGs out.

Run (see configs/davis2017_val.py, davis2016_val.py, segment.py):
  python main.py --config configs/davis2017_val.py --workdir OUT \
      --config.data.root=DAVIS_ROOT --config.checkpoint=STM_weights.pth
Writes OUT/predictions/<video>/<frame>.png at the input size with the frames' names, and the job's
fingerprint beside them (OUT/predictions/<video>/fingerprint.json, OUT/predictions/job.json). Every
input is checked before the first frame; a video's folder appears only when all its frames are
written. A rerun skips videos whose predictions were made by the same job and refuses outputs of
another job (unless --config.overwrite=True). Videos are split over processes (multi-host) and,
within a process, run concurrently on the local devices.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from stm_jax.config_checks import check_config
from stm_jax.inference import fingerprint as fp
from stm_jax.inference.devices import local_devices, map_over_devices
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.preflight import check_videos
from stm_jax.inference.sequence_output import plan_outputs, staged_folder
from stm_jax.inference.step import FrameStepper
from stm_jax.inference.video import segment_video
from stm_jax.inference.videos import Video, davis_videos, folder_video, load_first_labels
from stm_jax.io.atomic import write_text_atomic
from stm_jax.io.images import read_label_mask, read_rgb, write_palette_png
from stm_jax.memory.config import MemoryConfig


def list_videos(config) -> list[Video]:
    if config.data.layout == "davis":
        return davis_videos(config.data)
    if config.data.layout == "folder":
        return [folder_video(config.data)]
    raise ValueError(f"data.layout={config.data.layout!r}; use 'davis' or 'folder'.")


def segment_one(
    stepper, variables, video: Video, out_dir: Path, merge_objects: bool, progress, fingerprint=None
):
    """Validates, segments and writes one video; its folder appears only when every frame is done."""
    labels, num_objects = load_first_labels(video, stepper.model_config.max_objects, merge_objects)
    loaders = [lambda p=path: read_rgb(p) for path in video.frame_paths]
    outputs = segment_video(stepper, variables, loaders, labels, num_objects)
    with staged_folder(out_dir, fingerprint or {}) as staging:
        for name, prediction in zip(video.frame_names, outputs):
            write_palette_png(staging / f"{name}.png", prediction)
            progress.update(1)


def segment_videos(config, workdir, videos: list[Video] | None = None) -> Path:
    """Checks every input, segments this process's share of the videos; returns the predictions
    folder. Raises VideoInputError (all input problems at once) or StaleOutputError before any work."""
    check_config(config)  # also for library callers that bypass main.py
    videos = list_videos(config) if videos is None else videos
    merge_objects = config.data.layout == "davis" and str(config.data.year) == "2016"
    check_videos(videos, int(config.model.max_objects), merge_objects)
    model_config, variables = load_model(config)
    memory_config = MemoryConfig.from_config(config.memory)
    stepper = FrameStepper(model_config, memory_config)
    out_root = Path(workdir) / "predictions"
    job = fp.job_fingerprint(config.checkpoint, model_config, memory_config, merge_objects)
    fingerprints = {v.name: fp.video_fingerprint(job, v) for v in videos}
    mine = videos[jax.process_index() :: jax.process_count()]
    todo, skipped = plan_outputs(out_root, mine, fingerprints, bool(config.get("overwrite")))
    if skipped:
        print(f"Skipping {len(skipped)} video(s) already segmented by this job in {out_root}.")
    total = sum(len(v.frame_paths) for v in todo)
    lock = threading.Lock()
    with tqdm(total=total, unit="frame", desc="segment", dynamic_ncols=True) as progress:

        class LockedProgress:
            def update(self, n):
                with lock:
                    progress.update(n)

        def work(video, replica):
            segment_one(
                stepper,
                replica,
                video,
                out_root / video.name,
                merge_objects,
                LockedProgress(),
                fingerprints[video.name],
            )

        map_over_devices(local_devices(config), variables, todo, work)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("segment_videos done")
    if jax.process_index() == 0:
        write_text_atomic(out_root / fp.JOB_FILE, json.dumps(job, indent=1) + "\n")
    return out_root


def write_overlays(videos: list[Video], pred_root: Path, out_dir: Path) -> None:
    """An overlay animation and a contact sheet per video, from the written predictions."""
    from stm_jax.evaluation.overlay import write_sequence_overlay

    for video in tqdm(videos, desc="overlays", unit="video"):
        frames = np.stack([read_rgb(p) for p in video.frame_paths])
        labels = np.stack(
            [read_label_mask(pred_root / video.name / f"{n}.png") for n in video.frame_names]
        )
        write_sequence_overlay(out_dir, video.name, frames, labels)


def run(config, workdir: str) -> None:
    videos = list_videos(config)
    out_root = segment_videos(config, workdir, videos)
    if config.get("overlays") and jax.process_index() == 0:
        write_overlays(videos, out_root, Path(workdir) / "overlays")
    print(f"Predictions written to {out_root}")
