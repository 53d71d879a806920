"""Default blocks of a training config: `config.train` (optimisation, loss, cadence) and `config.eval`
(in-training evaluation). The whole training config is `stm_jax.jobs.config_base.train_config()`.
"""

from __future__ import annotations

import ml_collections

from stm_jax.training.loss import loss_option_defaults


def default_train_config() -> ml_collections.ConfigDict:
    """Optimisation, loss, logging and checkpoint cadence (`config.train`).

    Returns:
      The ConfigDict; see the field comments.
    """
    t = ml_collections.ConfigDict()
    t.num_steps = 200_000  # optimizer updates (each on one global batch of data.batch_size clips)
    t.seed = 0
    # Optax Adam (spec C: Adam, lr 1e-5, betas (0.9, 0.999), eps 1e-8).
    t.lr = 1e-5
    t.lr_schedule = "constant"  # 'constant' | 'poly' | 'step'
    t.lr_power = 0.9  # poly: lr * (1 - step / num_steps) ** power (Training-Code-of-STM stage 2)
    t.lr_end = 0.0  # poly: final lr
    t.lr_boundaries = (0.8,)  # step: fractions of num_steps where lr is multiplied by lr_gamma
    t.lr_gamma = 0.1
    t.warmup_steps = 0  # linear warm-up from 0 (0 = none)
    t.b1, t.b2, t.eps = 0.9, 0.999, 1e-8
    t.weight_decay = (
        0.0  # L2 added to the gradient before Adam (PyTorch Adam weight_decay; STCN 1e-7)
    )
    t.grad_clip = 0.0  # clip by global norm (0 = off)
    t.accumulate = 1  # micro-batches per update: the global batch is split and gradients averaged
    # Recompute activations in the backward pass instead of keeping them (jax.checkpoint): '' = off,
    # 'encoders' = memory and query encoders, 'all' = encoders and decoder. Same values, less memory.
    t.remat = ""
    # Loss (spec C): CE on the soft-aggregated logits of frames 2..n; a name in
    # stm_jax.training.loss.LOSSES: 'ce' | 'bootstrap' (STCN: the hardest p of the pixels, p annealed
    # 1 -> bootstrap_final_p between bootstrap_start and bootstrap_end) | one you register. Every
    # registered loss's options are fields here.
    t.loss = "ce"
    t.update(loss_option_defaults())
    t.detach_memory = True  # stop the gradient through soft masks written into memory (stage 2)
    # Cadence (steps); 0 disables.
    t.log_every = 10
    t.checkpoint_every = 1000
    t.eval_every = 0
    t.keep_checkpoints = 3
    t.async_checkpoint = True
    t.progress_bar = True
    t.log_batches = False  # True: batches.jsonl gets each step's batch CRC-32 (which data)
    # N > 0: run N steps, print the health report (saturation, grad norm per module, data counts)
    # and exit without checkpoints or evaluation: a check of a new dataset or init in minutes.
    t.dry_run = 0
    return t


def default_eval_config() -> ml_collections.ConfigDict:
    """In-training evaluation (`config.eval`): J&F on a validation source; the best step is kept.

    `source` uses the data-source layout (kind + constructor arguments), e.g.
    {'kind': 'davis', 'root': ..., 'year': '2017', 'split': 'val'} or a held-out synthetic source.
    """
    e = ml_collections.ConfigDict()
    e.source = ml_collections.ConfigDict({"kind": "synthetic", "num_videos": 0})
    e.max_videos = 0  # 0 = all
    e.max_frames = 0  # 0 = all frames of each video
    e.size = 0  # 0 = native size; else frames are resized so the shorter side is this many pixels
    # Held-out videos whose frame | prediction | ground truth sheet is logged to TensorBoard at
    # each evaluation (0 = none).
    e.images = 2
    return e
