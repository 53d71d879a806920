"""Evaluation: DAVIS J/F metrics (host-side numpy), scorer and CSVs, overlays, YouTube-VOS layout.

Modules: `boundary` (seg2bmap, disk), `metrics` (J, F, Mean/Recall/Decay), `results` (Results,
merge_results, CSV I/O), `davis` (score_davis), `overlay`,
`youtubevos`, `synthetic` (generated masks for tests and benchmarks).
"""

from stm_jax.evaluation.davis import ScoringError, score_davis, score_sequence_arrays
from stm_jax.evaluation.results import (
    Results,
    load_results,
    merge_results,
    save_results,
    write_results_csv,
)

__all__ = [
    "Results",
    "ScoringError",
    "load_results",
    "merge_results",
    "save_results",
    "score_davis",
    "score_sequence_arrays",
    "write_results_csv",
]
