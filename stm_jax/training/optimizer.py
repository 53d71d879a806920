"""Optax optimizer and learning-rate schedules from `config.train`.

Adam as in PyTorch: weight decay is L2 added to the gradient before the Adam moments (what STCN's
`Adam(weight_decay=1e-7)` does), gradient clipping by global norm comes first.
"""

from __future__ import annotations

import optax


def make_schedule(train_config) -> optax.Schedule:
    """Learning rate as a function of the update step.

    Args:
      train_config: `config.train` (lr, lr_schedule, lr_power, lr_end, lr_boundaries, lr_gamma,
        warmup_steps, num_steps).
    Returns:
      An optax schedule.
    """
    t = train_config
    total = int(t.num_steps)
    if t.lr_schedule == "constant":
        schedule = optax.constant_schedule(float(t.lr))
    elif t.lr_schedule == "poly":
        schedule = optax.polynomial_schedule(
            float(t.lr), float(t.lr_end), float(t.lr_power), max(total, 1)
        )
    elif t.lr_schedule == "step":
        boundaries = {int(f * total): float(t.lr_gamma) for f in t.lr_boundaries}
        schedule = optax.piecewise_constant_schedule(float(t.lr), boundaries)
    else:
        raise ValueError(f"train.lr_schedule={t.lr_schedule!r}; use 'constant', 'poly' or 'step'.")
    if int(t.warmup_steps) > 0:
        warmup = optax.linear_schedule(0.0, float(t.lr), int(t.warmup_steps))
        schedule = optax.join_schedules([warmup, schedule], [int(t.warmup_steps)])
    return schedule


def make_optimizer(train_config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Builds clip -> L2 -> Adam -> -lr.

    Args:
      train_config: `config.train`.
    Returns:
      (optimizer, schedule).
    """
    t = train_config
    schedule = make_schedule(t)
    parts = []
    if float(t.grad_clip) > 0:
        parts.append(optax.clip_by_global_norm(float(t.grad_clip)))
    if float(t.weight_decay) > 0:
        parts.append(optax.add_decayed_weights(float(t.weight_decay)))
    parts.append(optax.scale_by_adam(b1=float(t.b1), b2=float(t.b2), eps=float(t.eps)))
    parts.append(optax.scale_by_learning_rate(schedule))
    return optax.chain(*parts), schedule
