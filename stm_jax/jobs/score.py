"""The 'score' job: DAVIS J&F of a folder of predicted PNGs, written as the official CSVs.

Run (options in configs/score.py):
  python main.py --config configs/score.py --workdir OUT --config.gt=DAVIS_ROOT \
      --config.pred=PRED_DIR
"""

from __future__ import annotations

from pathlib import Path

from stm_jax.evaluation.davis import ScoringError, score_davis
from stm_jax.evaluation.results import format_results, write_results_csv
from stm_jax.inference.fingerprint import csv_source
from stm_jax.io.split_files import duplicated, shown


def run(config, workdir: str) -> None:
    """Scores `config.pred` against `config.gt`, writes the two CSVs into `workdir`, prints a table.

    Args:
      config: ConfigDict with gt, pred, year, split, resolution, set_name, num_threads, sequences,
        overlays (see configs/score.py).
      workdir: output folder for the CSVs (and overlays).
    """
    if not config.gt or not config.pred:
        raise ScoringError("set --config.gt=DAVIS_ROOT and --config.pred=PREDICTION_DIR")
    sequences = [s.strip() for s in config.get("sequences", "").split(",") if s.strip()] or None
    twice = duplicated(sequences or [])
    if twice:  # each would be scored, and weigh in the mean, twice
        raise ScoringError(
            f"config.sequences: {shown(twice)} listed more than once; list each once."
        )
    results = score_davis(
        config.gt,
        config.pred,
        sequences,
        year=config.year,
        resolution=config.resolution,
        split=config.split,
        num_threads=config.get("num_threads") or None,
    )
    set_name = config.get("set_name") or config.split
    # Predictions made by stm_jax carry predictions/job.json: name their checkpoint in the CSV.
    global_csv, sequence_csv = write_results_csv(
        results, workdir, set_name, csv_source(config.pred)
    )
    print(format_results(results, set_name))
    print(f"\nGlobal results saved in {global_csv}\nPer-sequence results saved in {sequence_csv}")
    if config.get("overlays"):
        from stm_jax.evaluation.overlay import write_davis_overlays

        out = Path(workdir) / "overlays"
        merge = str(config.year) == "2016"
        write_davis_overlays(
            config.gt, config.pred, results.sequences, out, config.resolution, merge_objects=merge
        )
        print(f"Overlays saved in {out}")
