"""Segment YouTube-VOS 2019 valid with STM and write the submission layout (+ zip).

Run:
  python main.py --config configs/youtubevos2019_valid.py --workdir OUT \
      --config.data.root=/data/YouTubeVOS2019 --config.checkpoint=/weights/STM_weights.pth \
      [--config.data.frames_split=valid_all_frames]
Objects appearing mid-video are injected at their first annotated frame (spec B). Upload
OUT/submission.zip to the evaluation server (scores are computed there; the validation GT is not
public). Published STM (YouTube-VOS 2018 val, its own unreleased checkpoint): G 79.4. Expected time:
~30 GPU-minutes with all frames.
"""

from configs.common import segment_config


def get_config():
    config = segment_config()
    config.job = "youtubevos"
    config.data.root = ""
    config.data.split = "valid"
    config.data.frames_split = ""  # e.g. 'valid_all_frames' for the 30 fps release
    config.data.year = "2019"
    return config
