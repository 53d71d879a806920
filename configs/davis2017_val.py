"""Segment and evaluate DAVIS-2017 val with STM (official protocol) and write DAVIS palette PNGs.

Run:
  python main.py --config configs/davis2017_val.py --workdir OUT \
      --config.data.root=/data/DAVIS --config.checkpoint=/weights/STM_weights.pth
Writes OUT/predictions/<seq>/<frame>.png (480p, DAVIS palette), then scores them with the official
DAVIS 2017 definitions into OUT/global_results-val.csv and OUT/per-sequence_results-val.csv. Expected time: ~2 GPU-minutes for 30 sequences
(2,000 frames); on CPU about 1-2 s per frame per object at 480p. Expected score with the official
weights: J&F 81.8 (J 79.2 / F 84.3), as published.
"""

from stm_jax.jobs.config_base import segment_config


def get_config():
    config = segment_config()
    config.data.year = "2017"
    config.data.split = "val"
    return config
