"""STM stage 1: pre-training on static images turned into 3-frame clips (spec C.1 / C.2).

Run (COCO only, as Training-Code-of-STM; enable more sources by giving them a root and a ratio > 0):
  python main.py --config configs/pretrain_static.py --workdir runs/stage1 \
      --config.init_from=/weights/resnet50-0676ba61.pth \
      --config.data.sources.coco.root=/data/coco \
      [--config.data.sources.msra10k.root=/data/MSRA10K --config.data.sources.msra10k.ratio=1]
Expected time: ~200k updates of batch 4 at 384x384 (spec C.2: about 4 days on 4 GPUs in the paper); on
one modern GPU roughly 1.5-2 days. On CPU it is not practical (use configs/synthetic_cpu.py).
Expected score: stage-1 weights reach J&F ~69.5 on DAVIS-2017 val (Training-Code-of-STM README).
Memory: frame 2's soft output is written into memory *with* its gradient (no detach) in this stage.
Variant for CI: `get_config("tiny")` (2 steps, tiny backbone, 32 px; set the image_folder root).
"""

import ml_collections

from stm_jax.jobs.config_base import config_variant, train_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    arg = config_variant(arg, ("tiny",), __file__)
    c = train_config()
    d = c.data
    d.sources = ml_collections.ConfigDict(
        {
            "coco": {"kind": "coco", "root": "", "ratio": 1.0, "split": "train2017"},
            "voc": {"kind": "voc", "root": "", "ratio": 0.0, "split": "train"},
            "msra10k": {"kind": "image_folder", "root": "", "ratio": 0.0},
            "ecssd": {"kind": "image_folder", "root": "", "ratio": 0.0},
        }
    )
    d.batch_size = 4
    d.crop_size = 384
    d.max_train_objects = 3
    t = c.train
    t.num_steps = 200_000  # 800k iterations of batch 1 x accumulation 4 (spec C.2)
    t.lr = 1e-5
    t.lr_schedule = "constant"
    t.detach_memory = False
    t.checkpoint_every = 5000
    t.log_every = 50
    if arg == "tiny":
        c.model.update(
            {"backbone": "tiny", "key_dim": 8, "value_dim": 16, "decoder_dim": 16, "max_objects": 3}
        )
        d.sources = ml_collections.ConfigDict(
            {"images": {"kind": "image_folder", "root": "", "ratio": 1.0, "binary": False}}
        )
        d.batch_size, d.crop_size, d.resize_shorter, d.min_object_pixels = 2, 32, 32, 4
        d.num_workers = 0
        t.num_steps, t.log_every, t.checkpoint_every, t.lr = 2, 1, 2, 1e-3
        t.progress_bar = False
    return c
