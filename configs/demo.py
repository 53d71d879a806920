"""Demo: segment a generated video with the small checkpoint shipped in the repo; no downloads.

Run:
  python main.py --config configs/demo.py [--workdir demo_out]
  python main.py --config configs/demo.py --config.input=MY_FRAMES --config.first_mask=MY_MASK.png
Expected time: under 2 minutes on 2 CPU cores (mostly compilation). Expected score on the generated
video: J&F >= 0.85, printed beside the copy-the-first-frame baseline. The checkpoint is
stm_jax/assets/synthetic_cpu (trained by configs/synthetic_cpu.py; see the README). It knows synthetic
shapes only: on real videos use the official weights (configs/convert.py, then configs/segment.py).
"""

import ml_collections

from configs.common import memory_config


def get_config():
    config = ml_collections.ConfigDict()
    config.job = "demo"
    config.workdir = "demo_out"
    config.checkpoint = ""  # empty: the shipped synthetic_cpu checkpoint
    config.input = ""  # a folder of your frames (then first_mask is required)
    config.first_mask = ""  # palette PNG of the first frame's objects
    # The held-out synthetic videos: a seed the training never used, the training videos' format.
    config.seed = 7
    config.num_videos = 2
    config.video = ml_collections.ConfigDict(
        dict(num_frames=24, height=64, width=96, num_objects=(1, 3))
    )
    config.memory = memory_config(mem_every=3, capacity=12)
    config.overwrite = False  # True: redo outputs of another job in the workdir
    return config
