"""Soft aggregation of per-object foreground probabilities into K-slot logits (spec A.6, from RGMP)."""

from __future__ import annotations

import jax.numpy as jnp

AGGREGATION_EPS = 1e-7


def soft_aggregate(fg_probs, object_valid, num_slots: int):
    """Merges per-object foreground probabilities into K-channel logits.

    em[0] = prod_i (1 - p_i) over valid objects; em[i] = p_i for valid objects, 0 for unused slots;
    em is clamped to [1e-7, 1 - 1e-7] and returned as log(em / (1 - em)).

    Args:
      fg_probs: [..., O, H, W] foreground probability of each object slot.
      object_valid: [..., O] bool; invalid slots contribute nothing.
      num_slots: K >= O + 1; slots past O + 1 are unused (logit log(1e-7 / (1 - 1e-7))).
    Returns:
      [..., H, W, K] float32 logits.
    """
    probs = fg_probs.astype(jnp.float32) * object_valid[..., None, None].astype(jnp.float32)
    background = jnp.prod(1.0 - probs, axis=-3, keepdims=True)
    em = jnp.concatenate([background, probs], axis=-3)
    pad = num_slots - em.shape[-3]
    if pad < 0:
        raise ValueError(f"{em.shape[-3] - 1} objects do not fit in {num_slots} aggregation slots.")
    em = jnp.pad(em, [(0, 0)] * (em.ndim - 3) + [(0, pad), (0, 0), (0, 0)])
    em = jnp.clip(em, AGGREGATION_EPS, 1.0 - AGGREGATION_EPS)
    logits = jnp.log(em / (1.0 - em))
    return jnp.moveaxis(logits, -3, -1)


def other_objects(masks, object_valid):
    """The memory encoder's "others" input (spec A.2): clamp(sum of the other valid objects' masks, 0, 1).

    Args:
      masks: [..., O, H, W] soft masks of each object slot.
      object_valid: [..., O] bool; invalid slots contribute nothing.
    Returns:
      [..., O, H, W] float.
    """
    masks = masks * object_valid[..., None, None]
    return jnp.clip(jnp.sum(masks, axis=-3, keepdims=True) - masks, 0.0, 1.0)
