"""Segmentation losses on soft-aggregated K-slot logits (spec C), and the loss registry (`train.loss`).

A loss is a function `(logits [B, F, H, W, K], labels [B, F, H, W] int, valid [B, F, H, W] bool,
step [] int32, train_config) -> [B, F]` per-frame losses, registered with
`@register_loss("name", options={...})`; `options` are its own `config.train` fields with their
defaults (they appear in every training config, so `--config.train.<option>=...` works). Per clip the
per-frame losses (frames 2..n) are summed (Training-Code-of-STM sums frames 2 and 3); the batch loss
is the mean over clips, so splitting a batch into equal micro-batches and averaging their gradients
gives exactly the full-batch gradient. Void pixels (id 255 in the annotation) never count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stm_jax.registry import Registry

LOSSES = Registry("training loss", "train.loss")


def register_loss(name: str, options: dict | None = None):
    """Decorator: makes a loss selectable as `train.loss=name`, with its own config fields."""

    def add(fn):
        fn.options = dict(options or {})
        return LOSSES.register(name)(fn)

    return add


def loss_option_defaults() -> dict:
    """Every registered loss's options with their defaults (for `config.train`)."""
    defaults = {}
    for name in LOSSES:
        defaults.update(LOSSES.get(name).options)
    return defaults


def pixel_cross_entropy(logits, labels):
    """Args: logits [..., K] float; labels [...] int in [0, K). Returns [...] float32 CE.

    The label's log-probability is picked with a one-hot product rather than `take_along_axis`, whose
    gradient is a scatter that XLA:CPU runs serially; the values are identical (a label outside
    [0, K), i.e. void, gives 0 and is masked by the caller).
    """
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    one_hot = jax.nn.one_hot(labels, log_probs.shape[-1], dtype=log_probs.dtype)
    return -jnp.sum(log_probs * one_hot, axis=-1)


def bootstrap_fraction(step, start: int, end: int, final_p: float):
    """STCN's kept fraction of the hardest pixels: 1 before `start`, linear to `final_p` at `end`."""
    progress = jnp.clip((step - start) / max(end - start, 1), 0.0, 1.0)
    return 1.0 - progress * (1.0 - final_p)


def frame_losses(logits, labels, valid, keep_fraction=None):
    """Mean CE per frame, optionally over the hardest `keep_fraction` of the valid pixels only.

    Args:
      logits: [B, F, H, W, K] aggregated logits.
      labels: [B, F, H, W] int targets.
      valid: [B, F, H, W] bool, False on void pixels.
      keep_fraction: None (plain CE) or a scalar in (0, 1] (may be traced: it anneals with the step).
    Returns:
      [B, F] float32.
    """
    ce = pixel_cross_entropy(logits, labels)
    valid_f = valid.astype(jnp.float32)
    count = jnp.sum(valid_f, axis=(-2, -1))
    if keep_fraction is None:
        return jnp.sum(ce * valid_f, axis=(-2, -1)) / jnp.maximum(count, 1.0)
    flat = jnp.where(valid, ce, -1.0).reshape(*ce.shape[:2], -1)  # CE >= 0, so void sorts last
    hardest = -jnp.sort(-flat, axis=-1)
    keep = jnp.maximum(jnp.ceil(keep_fraction * count), 1.0)
    rank = jnp.arange(flat.shape[-1], dtype=jnp.float32)
    chosen = rank < keep[..., None]
    return jnp.sum(jnp.where(chosen, hardest, 0.0), axis=-1) / keep


@register_loss("ce")
def cross_entropy(logits, labels, valid, step, train_config):
    """Plain pixel cross-entropy (STM, Training-Code-of-STM)."""
    return frame_losses(logits, labels, valid)


@register_loss(
    "bootstrap",
    options={"bootstrap_start": 20_000, "bootstrap_end": 70_000, "bootstrap_final_p": 0.15},
)
def bootstrapped_cross_entropy(logits, labels, valid, step, train_config):
    """STCN's bootstrapped CE: plain CE before `bootstrap_start`, then the hardest p of the pixels,
    p annealed linearly 1 -> `bootstrap_final_p` until `bootstrap_end`."""
    keep = bootstrap_fraction(
        step,
        int(train_config.bootstrap_start),
        int(train_config.bootstrap_end),
        float(train_config.bootstrap_final_p),
    )
    return frame_losses(logits, labels, valid, keep)


@register_loss("focal", options={"focal_gamma": 2.0})
def focal(logits, labels, valid, step, train_config):
    """Focal loss (Lin et al., 2017): each pixel's CE weighted by (1 - p_label)^focal_gamma, so
    easy, confident pixels count less; the mean over valid pixels per frame. A worked example of a
    loss entry (docs/extending.md)."""
    ce = pixel_cross_entropy(logits, labels)
    weight = (1.0 - jnp.exp(-ce)) ** float(train_config.focal_gamma)
    valid_f = valid.astype(jnp.float32)
    return jnp.sum(weight * ce * valid_f, axis=(-2, -1)) / jnp.maximum(
        jnp.sum(valid_f, axis=(-2, -1)), 1.0
    )


def clip_loss(per_frame):
    """The batch loss from [B, F] per-frame losses: summed over frames, averaged over clips."""
    return jnp.mean(jnp.sum(per_frame, axis=-1))
