"""STM from scratch on synthetic videos, small enough for 2 CPU cores (a real learning check + demo).

Run:
  python main.py --config configs/synthetic_cpu.py --workdir runs/synthetic_cpu
Expected time: about 7 minutes on 2 idle CPU cores (measured 6 min 54 s and 7 min 01 s; under 20
minutes with the cores shared). Tiny backbone, 64x64 crops, batch 4.
Expected score: J&F >= 0.85 on 16 held-out synthetic videos (64x96, 12 frames, 1-3 moving, occluding
objects, one leaves the frame); the copy-the-first-frame-mask baseline is printed beside it.
Variant for CI: `get_config("tiny")` (2 steps, batch 2, 32 px).
"""

import ml_collections

from stm_jax.jobs.config_base import config_variant, train_config


def _synthetic(num_videos: int, seed: int, size=(64, 96)) -> dict:
    return {
        "kind": "synthetic",
        "ratio": 1.0,
        "num_videos": num_videos,
        "seed": seed,
        "num_frames": 12,
        "height": size[0],
        "width": size[1],
        "num_objects": (1, 3),
    }


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    arg = config_variant(arg, ("tiny",), __file__)
    c = train_config()
    c.model.update(
        {"backbone": "tiny", "key_dim": 32, "value_dim": 128, "decoder_dim": 64, "max_objects": 3}
    )
    d = c.data
    # Training videos (seed 0) and held-out evaluation videos (seed 1) never share a seed.
    d.sources = ml_collections.ConfigDict({"synthetic": _synthetic(2000, seed=0)})
    d.batch_size = 4
    d.crop_size = 64
    d.resize_shorter = 64
    d.max_train_objects = 3
    d.min_object_pixels = 20
    d.max_skip = ml_collections.ConfigDict(
        {"kind": "stm", "start": 1, "end": 4, "every_clips": 2000}
    )
    d.num_workers = 0  # 2 cores: a worker process would only compete with the step for them
    t = c.train
    t.num_steps = 4000
    t.lr = 1e-3  # from scratch (1e-5 is for fine-tuning ImageNet weights)
    t.lr_schedule = "poly"
    t.lr_end = 1e-5
    t.warmup_steps = 50
    t.grad_clip = 5.0
    t.detach_memory = True
    t.log_every = 25
    t.checkpoint_every = 500
    t.eval_every = 500
    t.keep_checkpoints = 2
    eval_source = _synthetic(16, seed=1)
    eval_source.pop("ratio")
    c.eval.source = ml_collections.ConfigDict(eval_source)
    c.memory.mem_every = 3
    if arg == "tiny":
        c.model.update({"key_dim": 8, "value_dim": 16, "decoder_dim": 16})
        d.sources.synthetic.update({"num_videos": 4, "height": 32, "width": 48})
        d.batch_size, d.crop_size, d.resize_shorter, d.min_object_pixels = 2, 32, 32, 4
        t.num_steps, t.log_every, t.checkpoint_every, t.eval_every = 2, 1, 1, 2
        t.progress_bar = False
        c.eval.source.update({"num_videos": 1, "height": 32, "width": 48, "num_frames": 4})
    return c
