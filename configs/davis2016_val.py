"""Segment DAVIS-2016 val (single object): the 2017 root, ImageSets/2016/val.txt, labels merged.

Run:
  python main.py --config configs/davis2016_val.py --workdir OUT \
      --config.data.root=/data/DAVIS --config.checkpoint=/weights/STM_weights.pth
As the official eval_DAVIS.py -y 16: every label > 0 (and != 255) of the first frame is one object.
Expected score with the official weights: J&F 89.3 (J 88.7 / F 89.9). Expected time: ~1 GPU-minute.
"""

from stm_jax.jobs.config_base import segment_config


def get_config():
    config = segment_config()
    config.data.year = "2016"
    config.data.split = "val"
    return config
