"""Training health checks: saturated pixels, per-module gradient norms, and actionable warnings.

Saturation. Soft aggregation clamps each foreground probability to [1e-7, 1 - 1e-7] before taking
its logit (spec A.6). A pixel at the clamp gets exactly zero gradient. In float32 the clamped logits are
-16.118 (p = 1e-7) and +15.942 (p = 1 - 1e-7 rounds to 1 - 1.19e-7); `SATURATION_LOGIT = 15.9` lies
just inside both, so |logit| >= 15.9 means "at the clamp" (a logit between 15.9 and 15.942 is within
1.4e-7 of p = 1, no gradient to speak of either). The saturated fraction is counted over the
(valid pixel, valid object slot) pairs of the predicted frames: background and unused slots are left
out, void pixels too.
"""

from __future__ import annotations

import jax.numpy as jnp

SATURATION_LOGIT = 15.9
SATURATION_WARN = 0.5  # a warning when more than this fraction of foreground logits is clamped
MODULES = ("Encoder_M", "Encoder_Q", "KV_M_r4", "KV_Q_r4", "Decoder")


def saturated_fraction(logits, object_valid, valid):
    """Counts foreground logits at soft aggregation's clamp.

    Args:
      logits: [B, F, H, W, K] aggregated logits.
      object_valid: [B, O] bool, O <= K - 1 (slot i + 1 holds object i).
      valid: [B, F, H, W] bool (False on void pixels).
    Returns:
      (saturated count, total count) as float32 scalars; fraction = saturated / max(total, 1).
    """
    num_objects = object_valid.shape[1]
    foreground = logits[..., 1 : num_objects + 1]
    weight = valid[..., None].astype(jnp.float32) * object_valid[:, None, None, None, :]
    saturated = (jnp.abs(foreground) >= SATURATION_LOGIT).astype(jnp.float32) * weight
    return jnp.sum(saturated), jnp.sum(weight)


def module_grad_norms(grads) -> dict:
    """{'grad_norm/<module>': L2 norm} for each top-level module of the STM params."""
    out = {}
    for name, tree in grads.items():
        leaves = [jnp.sum(jnp.square(x.astype(jnp.float32))) for x in _leaves(tree)]
        out[f"grad_norm/{name}"] = jnp.sqrt(sum(leaves))
    return out


def _leaves(tree):
    if isinstance(tree, dict) or hasattr(tree, "items"):
        for value in tree.values():
            yield from _leaves(value)
    else:
        yield tree


def health_warnings(values: dict, first_step: bool) -> list[str]:
    """Actionable warnings from logged metrics (plain floats).

    Args:
      values: metrics with 'saturated_fraction' and 'grad_norm/<module>'.
      first_step: check for whole modules with exactly zero gradient (only meaningful at step 0).
    Returns:
      Messages, each saying what is wrong and how to fix it.
    """
    warnings = []
    fraction = values.get("saturated_fraction", 0.0)
    if fraction > SATURATION_WARN:
        warnings.append(
            f"[health] {100 * fraction:.0f}% of foreground pixels are past soft aggregation's "
            "clamp (|logit| >= 15.9): cross-entropy gives them exactly zero gradient. The decoder "
            "output is far too large for these features: start new layers with PyTorch's default "
            "init (stm_jax.training.init does for every init_from), check that the backbone's BN "
            "statistics match the input (ImageNet-normalised RGB), or lower train.lr."
        )
    if first_step:
        dead = [
            k.split("/", 1)[1] for k, v in values.items() if k.startswith("grad_norm/") and v == 0
        ]
        if dead:
            warnings.append(
                f"[health] modules with exactly zero gradient at step 0: {', '.join(dead)}. They "
                "will never train. Usual causes: every pixel saturated (see saturated_fraction), no "
                "valid object in the batch (check data.min_object_pixels and the masks), or a zero "
                "output layer; re-initialise with init_from='' or a fresh init_from."
            )
    return warnings


def health_report(step: int, values: dict) -> str:
    """One readable block of the health metrics for the console."""
    lines = [f"[health] step {step}: loss {values.get('loss', float('nan')):.4f}"]
    lines.append(
        f"  saturated foreground pixels {100 * values.get('saturated_fraction', 0.0):.2f}%; "
        f"grad norm {values.get('grad_norm', 0.0):.4g}; max skip {values.get('max_skip', 0)}"
    )
    modules = [
        f"{k.split('/', 1)[1]} {v:.3g}" for k, v in values.items() if k.startswith("grad_norm/")
    ]
    lines.append("  grad norm per module: " + ", ".join(modules))
    data = [
        f"{k.split('/', 1)[1]} {int(v)}" for k, v in sorted(values.items()) if k.startswith("data/")
    ]
    if data:
        lines.append("  data: " + ", ".join(data))
    return "\n".join(lines)
