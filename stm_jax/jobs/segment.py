"""The 'segment' job: STM over DAVIS-layout videos or a user's folder, DAVIS palette PNGs out.

Run (see configs/davis2017_val.py, davis2016_val.py, segment.py):
  python main.py --config configs/davis2017_val.py --workdir OUT \
      --config.data.root=DAVIS_ROOT --config.checkpoint=STM_weights.pth
Writes OUT/predictions/<video>/<frame>.png at the input size with the frames' names. Each PNG is
written atomically; a rerun skips videos whose predictions are complete. Videos are split over
processes (multi-host) and, within a process, run concurrently on the local devices, grouped by
frame size with `inference.videos_per_step` videos per compiled step (stm_jax.inference.scheduler);
PNGs are written by a background thread while the device runs the next step.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
from tqdm import tqdm

from stm_jax.inference.devices import local_devices
from stm_jax.inference.host_pipeline import BackgroundWriter
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.scheduler import VideoTask, segment_on_devices
from stm_jax.inference.settings import make_stepper, videos_per_step
from stm_jax.inference.videos import Video, davis_videos, folder_video, load_first_labels
from stm_jax.io.images import read_label_mask, read_rgb, write_palette_png


def predictions_complete(video: Video, out_dir: Path) -> bool:
    return all((out_dir / f"{name}.png").is_file() for name in video.frame_names)


def list_videos(config) -> list[Video]:
    if config.data.layout == "davis":
        return davis_videos(config.data)
    if config.data.layout == "folder":
        return [folder_video(config.data)]
    raise ValueError(f"data.layout={config.data.layout!r}; use 'davis' or 'folder'.")


def video_task(video: Video, max_objects: int, merge_objects: bool) -> VideoTask:
    """Validates one video (nothing is written before every video passed) and describes it."""
    labels, num_objects = load_first_labels(video, max_objects, merge_objects)
    loaders = [lambda p=path: read_rgb(p) for path in video.frame_paths]
    return VideoTask(video, loaders, labels, num_objects)


def segment_videos(config, workdir, videos: list[Video] | None = None) -> Path:
    """Segments this process's share of the videos; returns the predictions folder."""
    model_config, variables = load_model(config)
    stepper = make_stepper(config, model_config)
    videos = list_videos(config) if videos is None else videos
    out_root = Path(workdir) / "predictions"
    mine = videos[jax.process_index() :: jax.process_count()]
    todo = [v for v in mine if not predictions_complete(v, out_root / v.name)]
    skipped = len(mine) - len(todo)
    if skipped:
        print(f"Skipping {skipped} video(s) whose predictions are complete in {out_root}.")
    merge_objects = config.data.layout == "davis" and str(config.data.year) == "2016"
    tasks = [video_task(v, model_config.max_objects, merge_objects) for v in todo]
    total = sum(len(v.frame_paths) for v in todo)
    inference = config.get("inference") or {}
    with (
        tqdm(total=total, unit="frame", desc="segment", dynamic_ncols=True) as progress,
        BackgroundWriter() as writer,
    ):

        def emit(task, index, labels):
            video = task.key
            writer.submit(
                write_palette_png, out_root / video.name / f"{video.frame_names[index]}.png", labels
            )
            writer.submit(progress.update, 1)

        segment_on_devices(
            stepper,
            local_devices(config),
            variables,
            tasks,
            videos_per_step(config),
            emit,
            prefetch=inference.get("prefetch", 4),
            decode_threads=inference.get("decode_threads", 4),
        )
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("segment_videos done")
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
