"""STCN stage 0: pre-training on static images turned into 3-frame clips (STCN's `--stage 0`).

Run (each dataset as images/ + masks/ folders; FSS-1000's class folders flattened into one):
  python main.py --config configs/stcn_static.py --workdir runs/stcn_s0 \
      --config.init_from=/weights/resnet50-19c8e357.pth,/weights/resnet18-5c106cde.pth \
      --config.data.sources.fss.root=/data/static/fss \
      --config.data.sources.duts_tr.root=/data/static/DUTS-TR \
      --config.data.sources.duts_te.root=/data/static/DUTS-TE \
      --config.data.sources.ecssd.root=/data/static/ecssd \
      --config.data.sources.big.root=/data/static/BIG_small \
      --config.data.sources.hrsod.root=/data/static/HRSOD_small
  (the two torchvision files fill the ResNet-50 key encoder and the ResNet-18 value encoder).
Expected time: 300k updates of batch 16 at 384x384; STCN reports about 36 hours on two RTX 2080 Ti
(up to ~100 h when data loading is the bottleneck). Not practical on CPU (use configs/synthetic_cpu.py).
Expected score: none is published for stage 0 alone (STCN does not evaluate it); it is the start of
configs/stcn_main.py, which reaches DAVIS-2017 val J&F 85.4.
Recipe (STCN's train.py / hyper_para.py): Adam lr 1e-5, weight decay 1e-7, step decay x0.1 at 150k,
bootstrapped CE (plain CE until 20k, then the hardest p of the pixels, p 1 -> 0.15 by 70k), one
object per clip, no pasting, the soft output memorised with its gradient.
Variant for CI: `get_config("tiny")` (2 steps, tiny backbones, 32 px; set the image_folder root).
"""

import ml_collections

from stm_jax.jobs.config_base import config_variant, train_config

# STCN's ConcatDataset draws every image equally often, BIG and HRSOD five times: the mixing
# ratios are images x repeats with the published dataset sizes (recount if your copies differ).
STATIC_SOURCES = {
    "fss": 10_000,  # FSS-1000
    "duts_tr": 10_553,
    "duts_te": 5_019,
    "ecssd": 1_000,
    "big": 5 * 150,
    "hrsod": 5 * 2_010,
}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    arg = config_variant(arg, ("tiny",), __file__)
    c = train_config()
    c.model.family = "stcn"
    d = c.data
    d.sources = ml_collections.ConfigDict(
        {
            name: {"kind": "image_folder", "root": "", "ratio": float(count), "binary": True}
            for name, count in STATIC_SOURCES.items()
        }
    )
    d.batch_size = 16  # 8 per GPU on 2 GPUs
    d.num_frames = 3
    d.crop_size = 384
    d.resize_shorter = 384  # STCN resizes the shorter side to 384, then crops 384 x 384
    d.max_train_objects = 1  # STCN's stage 0 is single-object
    d.paste_prob = 0.0
    t = c.train
    t.num_steps = 300_000
    t.lr = 1e-5
    t.lr_schedule = "step"
    t.lr_boundaries = (0.5,)  # 150k of 300k
    t.lr_gamma = 0.1
    t.weight_decay = 1e-7
    t.loss = "bootstrap"
    t.bootstrap_start, t.bootstrap_end, t.bootstrap_final_p = 20_000, 70_000, 0.15
    t.detach_memory = False  # STCN encodes frame 2's soft mask with its gradient
    t.checkpoint_every = 5000
    t.log_every = 100
    if arg == "tiny":
        c.model.update(
            {
                "backbone": "tiny",
                "value_backbone": "tiny",
                "key_dim": 8,
                "value_dim": 16,
                "decoder_dim": 16,
                "max_objects": 3,
            }
        )
        d.sources = ml_collections.ConfigDict(
            {"images": {"kind": "image_folder", "root": "", "ratio": 1.0, "binary": False}}
        )
        d.batch_size, d.crop_size, d.resize_shorter, d.min_object_pixels = 2, 32, 32, 4
        d.num_workers = 0
        t.num_steps, t.log_every, t.checkpoint_every, t.lr = 2, 1, 2, 1e-3
        t.bootstrap_start, t.bootstrap_end = 0, 2  # the second step keeps the hardest pixels
        t.progress_bar = False
    return c
