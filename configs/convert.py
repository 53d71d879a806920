"""Convert the official STM_weights.pth once into a stm_jax checkpoint (later runs need no PyTorch).

Run:
  python main.py --config configs/convert.py --config.checkpoint=STM_weights.pth --workdir weights/stm
then segment with --config.checkpoint=weights/stm. Every key and shape is checked while converting,
and the saved checkpoint is read back and compared array by array. Needs PyTorch (CPU) for this one
run. Expected time: well under a minute.
"""

from stm_jax.jobs.config_base import convert_config


def get_config():
    return convert_config()  # config.model must match the .pth (the official weights: defaults)
