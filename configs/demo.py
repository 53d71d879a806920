"""Demo: segment a generated video with the small checkpoint shipped in the repo; no downloads.

Run:
  stm-jax --config demo [--workdir demo_out]        (in a checkout: python main.py --config configs/demo.py)
  stm-jax --config demo --config.data.frames=MY_FRAMES --config.data.first_mask=MY_MASK.png
Expected time: about a minute on 2 CPU cores (mostly compilation). Expected score on the generated
video: J&F >= 0.85, printed beside the copy-the-first-frame baseline. The checkpoint is
stm_jax/assets/synthetic_cpu (trained by configs/synthetic_cpu.py; see the README). It knows synthetic
shapes only: on real videos use the official weights (configs/convert.py, then configs/segment.py).
"""

from stm_jax.jobs.config_base import demo_config


def get_config():
    return demo_config()
