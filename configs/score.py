"""Score predicted DAVIS masks (J&F, official DAVIS 2017 definitions) and write the official CSVs.

Run:
  python main.py --config configs/score.py --workdir OUT \
      --config.gt=/data/DAVIS --config.pred=/runs/stm/davis17_val \
      [--config.year=2016] [--config.split=val] [--config.resolution=480p]
Writes OUT/global_results-<set>.csv and OUT/per-sequence_results-<set>.csv and prints the table.
Expected time: well under a minute for DAVIS-2017 val (30 sequences, 480p) on 2 CPU cores, mostly
PNG decoding. Expected score: whatever the predictions earn (the official STM weights are reported
at J&F 81.8 on DAVIS-2017 val).
"""

from stm_jax.jobs.config_base import score_config


def get_config():
    return score_config()
