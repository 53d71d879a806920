"""STM stage 2: main training on DAVIS-2017 train + YouTube-VOS train (spec C.2), from stage 1.

Run:
  python main.py --config configs/main_davis_ytvos.py --workdir runs/stage2 \
      --config.init_from=runs/stage1 \
      --config.data.sources.davis.root=/data/DAVIS --config.data.sources.youtube_vos.root=/data/YTVOS \
      --config.eval.source.root=/data/DAVIS
  (`init_from` may also be the official STM_weights.pth, to fine-tune it.)
Expected time: ~200k updates of batch 4 at 384x384 (paper: ~3 days on 4 GPUs; Training-Code-of-STM:
~3 days on one RTX 2080 Ti with accumulation); not practical on CPU.
Expected score: DAVIS-2017 val J&F ~82.0 (J 79.7 / F 84.4) for ResNet-50 (Training-Code-of-STM), the
paper reports 81.8. In-training evaluation on DAVIS-2017 val every 10k steps keeps the best step.
Variant for CI: `get_config("tiny")` (2 steps, tiny backbone, 32 px; set the davis roots).
"""

import ml_collections

from stm_jax.jobs.config_base import config_variant, train_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    arg = config_variant(arg, ("tiny",), __file__)
    c = train_config()  # data: DAVIS 0.08 / YouTube-VOS 0.92, 3 frames, 384 crops, skip 0 -> 25
    t = c.train
    t.num_steps = 200_000  # 800k iterations of batch 1 x accumulation 4 (spec C.2)
    t.lr = 1e-5
    t.lr_schedule = "poly"
    t.lr_power = 0.9
    t.detach_memory = True
    t.checkpoint_every = 5000
    t.eval_every = 10_000
    t.log_every = 50
    c.eval.source = ml_collections.ConfigDict(
        {"kind": "davis", "root": "", "year": "2017", "split": "val", "resolution": "480p"}
    )
    # Training-Code-of-STM: +1 every 3000 clips (750 updates of batch 4) up to 25.
    c.data.max_skip.update({"kind": "stm", "start": 0, "end": 25, "every_clips": 3000})
    if arg == "tiny":
        c.model.update(
            {"backbone": "tiny", "key_dim": 8, "value_dim": 16, "decoder_dim": 16, "max_objects": 3}
        )
        d = c.data
        d.sources.youtube_vos.ratio = 0.0
        d.sources.davis.ratio = 1.0
        d.batch_size, d.crop_size, d.resize_shorter, d.min_object_pixels = 2, 32, 32, 4
        d.num_workers = 0
        d.max_skip.update({"every_clips": 2, "end": 2})
        t.num_steps, t.log_every, t.checkpoint_every, t.eval_every, t.lr = 2, 1, 2, 2, 1e-3
        t.progress_bar = False
        c.eval.max_videos, c.eval.max_frames = 1, 4
    return c
