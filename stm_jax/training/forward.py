"""The training forward pass over a clip: frame 1 with its ground truth in memory, then every later
frame is predicted from all earlier frames and its own soft output is written into memory (spec C).

Mirrors `stm_jax.inference.step` with batch dims [B, O]: memory masks are the object channels of the
K-slot probabilities, `others` = clamp(sum of the other valid objects' masks, 0, 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stm_jax.memory.read import read_plain
from stm_jax.model.aggregation import other_objects, soft_aggregate
from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import STM


def clip_logits(model_config: ModelConfig, variables, batch, detach_memory: bool = True):
    """Aggregated logits of frames 2..T of every clip.

    Args:
      model_config: the architecture.
      variables: {'params', 'batch_stats'}.
      batch: 'frames' uint8 [B, T, H, W, 3], 'masks' float32 [B, T, H, W, O+1] one-hot,
        'object_valid' bool [B, O].
      detach_memory: stop the gradient through the soft masks written into memory.
    Returns:
      [B, T-1, H, W, K] float32 logits (K = model_config.num_slots).
    """
    model = STM(model_config)
    frames = batch["frames"].astype(jnp.float32) / 255.0
    object_valid = batch["object_valid"]
    num_objects = object_valid.shape[1]
    num_frames = frames.shape[1]

    def memorize(frame, masks):
        masks = masks * object_valid[..., None, None]
        keys, values = model.apply(
            variables, frame, masks, other_objects(masks, object_valid), method=STM.encode_memory
        )
        b, o, h, w, _ = keys.shape
        return keys.reshape(b, o, h * w, -1), values.reshape(b, o, h * w, -1)

    first_masks = jnp.moveaxis(batch["masks"][:, 0, ..., 1 : num_objects + 1], -1, 1)
    mem_keys, mem_values = memorize(frames[:, 0], first_masks)
    outputs = []
    for t in range(1, num_frames):
        q_key, q_value, r3, r2 = model.apply(variables, frames[:, t], method=STM.encode_query)
        b, h, w, dk = q_key.shape
        queries = jnp.broadcast_to(q_key.reshape(b, 1, h * w, dk), (b, num_objects, h * w, dk))
        readout = read_plain(
            mem_keys,
            mem_values,
            jnp.ones(mem_keys.shape[:3], bool),
            queries,
            model_config.similarity,
            model_config.top_k,
        ).reshape(b, num_objects, h, w, -1)
        logits = model.apply(
            variables,
            readout.astype(model_config.compute_dtype),
            q_value,
            r3,
            r2,
            method=STM.decode,
        )
        foreground = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)[..., 1]
        aggregated = soft_aggregate(foreground, object_valid, model_config.num_slots)
        outputs.append(aggregated)
        if t + 1 < num_frames:  # the last frame's output is never read
            probs = jax.nn.softmax(aggregated, axis=-1)[..., 1 : num_objects + 1]
            if detach_memory:
                probs = jax.lax.stop_gradient(probs)
            keys, values = memorize(frames[:, t], jnp.moveaxis(probs, -1, 1))
            mem_keys = jnp.concatenate([mem_keys, keys], axis=2)
            mem_values = jnp.concatenate([mem_values, values], axis=2)
    return jnp.stack(outputs, axis=1)
