"""Segmentation losses on soft-aggregated K-slot logits (spec C).

Per clip: the mean pixel cross-entropy of each predicted frame (frames 2..n), summed over frames
(Training-Code-of-STM sums frames 2 and 3). The batch loss is the mean over clips, so splitting a batch
into equal micro-batches and averaging their gradients gives exactly the full-batch gradient.
Void pixels (id 255 in the annotation) never count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


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


def clip_loss(logits, labels, valid, keep_fraction=None):
    """The batch loss: per-frame losses summed over frames, averaged over clips.

    Args: as `frame_losses`. Returns: (scalar loss, [B, F] per-frame losses).
    """
    per_frame = frame_losses(logits, labels, valid, keep_fraction)
    return jnp.mean(jnp.sum(per_frame, axis=-1)), per_frame
