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

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.job = "score"
    # DAVIS root holding Annotations/<resolution>/<seq>/*.png and ImageSets/<year>/<split>.txt.
    config.gt = ""
    config.pred = ""  # predictions: <pred>/<seq>/<frame>.png (palette or grayscale ids)
    config.year = 2017  # 2016: all labels > 0 merged into one object
    config.split = "val"
    config.resolution = "480p"
    config.sequences = ""  # comma-separated subset; empty = the whole ImageSets list
    config.set_name = ""  # name in the CSV file names; empty = split
    config.num_threads = 0  # 0 = min(4, cpu count)
    config.overlays = False  # also write overlay GIFs + contact sheets (needs JPEGImages/)
    return config
