"""Convert the official STM_weights.pth once into a stm_jax checkpoint (later runs need no PyTorch).

Run:
  python main.py --config configs/convert.py --config.checkpoint=STM_weights.pth --workdir weights/stm
then segment with --config.checkpoint=weights/stm. Every key and shape is checked while converting,
and the saved checkpoint is read back and compared array by array. Needs PyTorch (CPU) for this one
run. Expected time: well under a minute.
"""

import ml_collections

from configs.common import model_config


def get_config():
    config = ml_collections.ConfigDict()
    config.job = "convert"
    config.workdir = "weights/stm"
    config.checkpoint = ""  # the official STM_weights.pth (or a .pt with the same keys)
    config.model = model_config()  # must match the .pth (the official weights: the defaults)
    config.overwrite = False  # True: replace another converted checkpoint in the workdir
    return config
