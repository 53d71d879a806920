"""The 'evaluate' job for DAVIS: segment the split (all devices and hosts), then score on process 0.

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

from stm_jax.evaluation.davis import score_davis
from stm_jax.evaluation.results import format_results, save_results, write_results_csv
from stm_jax.inference.fingerprint import csv_source
from stm_jax.jobs.segment import list_videos, segment_videos, write_overlays


def has_full_annotations(config, videos) -> bool:
    annotations = Path(config.data.root) / "Annotations" / config.data.resolution
    return all(
        all((annotations / video.name / f"{name}.png").is_file() for name in video.frame_names)
        for video in videos
    )


def evaluate_davis(config, workdir: str):
    """Segments and scores; returns the Results on process 0 (None elsewhere or without GT)."""
    videos = list_videos(config)
    pred_root = segment_videos(config, workdir, videos)
    if jax.process_index() != 0:
        return None
    if config.get("overlays"):
        write_overlays(videos, pred_root, Path(workdir) / "overlays")
    if not has_full_annotations(config, videos):
        print("No full annotations for this split: predictions written, scoring skipped.")
        return None
    year = int(config.data.year)
    results = score_davis(
        config.data.root,
        pred_root,
        [video.name for video in videos],
        year=year,
        resolution=config.data.resolution,
    )
    set_name = f"{config.data.split}{'' if year == 2017 else '-' + str(year)}"
    global_csv, sequence_csv = write_results_csv(results, workdir, set_name, csv_source(pred_root))
    save_results(results, Path(workdir) / f"results-{set_name}.json")
    print(format_results(results, set_name))
    print(f"\nGlobal results saved in {global_csv}\nPer-sequence results saved in {sequence_csv}")
    return results


def run(config, workdir: str) -> None:
    evaluate_davis(config, workdir)
