"""Segment YouTube-VOS 2018 valid with STM and write the submission layout (+ zip).

Run:
  python main.py --config configs/youtubevos2018_valid.py --workdir OUT \
      --config.data.root=/data/YouTubeVOS2018 --config.checkpoint=/weights/STM_weights.pth \
      [--config.data.frames_split=valid_all_frames]
Objects appearing mid-video are injected at their first annotated frame (spec B). Upload
OUT/submission.zip to the evaluation server (scores are computed there; the validation GT is not
public). Published STM (YouTube-VOS 2018 val, its own unreleased checkpoint): G 79.4. Expected time:
~30 GPU-minutes with all frames.
"""

from stm_jax.jobs.config_base import youtubevos_config


def get_config():
    return youtubevos_config("2018")
