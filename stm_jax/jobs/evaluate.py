"""The 'evaluate' job: segment the split (all devices and hosts), then score on process 0 with the
DAVIS protocol (any layout with DAVIS-style annotations: DAVIS, `video_folders`, yours).

Run (configs/davis2017_val.py, configs/davis2016_val.py):
  python main.py --config configs/davis2017_val.py --workdir OUT \
      --config.data.root=DAVIS_ROOT --config.checkpoint=STM_weights.pth
Writes OUT/predictions/<seq>/<frame>.png, then OUT/global_results-<set>.csv and
OUT/per-sequence_results-<set>.csv in the official toolkit's layout, the global CSV with extra columns
naming the checkpoint and job fingerprint that made the predictions (skipped with a message when the
split has no annotations beyond the first frame, e.g. test-dev).
"""

from __future__ import annotations

from pathlib import Path

import jax

from stm_jax.evaluation.davis import score_folders
from stm_jax.evaluation.results import format_results, save_results, write_results_csv
from stm_jax.inference.fingerprint import csv_source
from stm_jax.jobs.segment import list_videos, merges_objects, segment_videos, write_overlays


def has_full_annotations(videos) -> bool:
    """Every frame of every video has its annotation PNG (in the layout's annotation folder)."""
    return all(
        video.annotations_dir is not None
        and all((video.annotations_dir / f"{name}.png").is_file() for name in video.frame_names)
        for video in videos
    )


def evaluate_davis(config, workdir: str):
    """Segments and scores; returns the Results on process 0 (None elsewhere or without GT)."""
    videos = list_videos(config)
    pred_root = segment_videos(config, workdir, videos)
    if jax.process_index() != 0:
        return None
    if config.get("overlays"):
        write_overlays(videos, pred_root, Path(workdir) / "overlays", merges_objects(config))
    if not has_full_annotations(videos):
        print("No full annotations for this split: predictions written, scoring skipped.")
        return None
    year = 2016 if merges_objects(config) else 2017
    folders = [(video.name, video.annotations_dir, pred_root / video.name) for video in videos]
    results = score_folders(folders, year)
    set_name = f"{config.data.split}{'' if year == 2017 else '-' + str(year)}"
    global_csv, sequence_csv = write_results_csv(results, workdir, set_name, csv_source(pred_root))
    save_results(results, Path(workdir) / f"results-{set_name}.json")
    print(format_results(results, set_name))
    print(f"\nGlobal results saved in {global_csv}\nPer-sequence results saved in {sequence_csv}")
    return results


def run(config, workdir: str) -> None:
    evaluate_davis(config, workdir)
