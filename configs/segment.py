"""Segment your own video: a folder of frames plus a palette PNG with the first frame's objects.

Run:
  python main.py --config configs/segment.py --workdir OUT \
      --config.data.frames=/videos/dog/frames --config.data.first_mask=/videos/dog/00000.png \
      --config.checkpoint=weights/stm   (converted once by configs/convert.py; or STM_weights.pth)
Frames are read in natural name order (2.jpg before 10.jpg), one image type per folder (.jpg/.jpeg or
.png), and the mask must lie outside the frames folder; the mask's palette indices are object ids
(0 = background, 1..N, 255 = void). Writes OUT/predictions/<video>/<frame>.png with the frames' names, and, with
--config.overlays=True, an overlay animation and a contact sheet.
"""

from stm_jax.jobs.config_base import segment_config


def get_config():
    config = segment_config()
    config.job = "segment"
    config.data.layout = "folder"
    return config
