"""Export a checkpoint's per-frame step as a serialized `jax.export` artifact for serving.

Run:
  python main.py --config configs/export.py --workdir exported/stm --config.checkpoint=weights/stm \
      --config.export.height=480 --config.export.width=854 --config.export.objects=2
then, on any machine with jax, numpy and pillow (no stm_jax, no flax):
  python exported/stm/run_exported.py exported/stm FRAMES_DIR FIRST_MASK.png OUT_DIR
The artifact holds one frame size, object-slot count and number of video slots
(export.videos); export.platforms (default cpu,cuda,tpu) are lowered into one artifact;
--config.inference.preset=accelerator exports the bfloat16 step. contract.json in the artifact
describes every input and output.
"""

from stm_jax.jobs.config_base import export_config


def get_config():
    return export_config()
