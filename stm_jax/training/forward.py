"""The training forward pass over a clip, on the per-frame core of inference (`stm_jax.core`).

Frame 1 with its ground truth goes into memory; every later frame is predicted from all earlier frames
through the same bank and the same read as inference, and its own soft output is written into memory
(spec C). The bank holds the clip's T-1 memory frames (`MemoryConfig.for_training_clip`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stm_jax.core import Core
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig


def clip_logits(
    model_config: ModelConfig,
    variables,
    batch,
    detach_memory: bool = True,
    memory_config: MemoryConfig | None = None,
):
    """Aggregated logits of frames 2..T of every clip.

    Args:
      model_config: the architecture.
      variables: {'params', 'batch_stats'}.
      batch: 'frames' uint8 [B, T, H, W, 3], 'masks' float32 [B, T, H, W, O+1] one-hot,
        'object_valid' bool [B, O].
      detach_memory: stop the gradient through the soft masks written into memory.
      memory_config: the read (similarity, top_k); default: the family's training protocol.
    Returns:
      [B, T-1, H, W, K] float32 logits (K = model_config.num_slots).
    """
    num_frames = batch["frames"].shape[1]
    memory_config = training_memory(model_config, memory_config).for_training_clip(num_frames)
    core = Core(model_config, memory_config, differentiable=True)
    frames, object_valid = batch["frames"], batch["object_valid"]
    num_slots = model_config.num_slots
    first = batch["masks"][:, 0]
    first = jnp.pad(first, [(0, 0)] * 3 + [(0, num_slots - first.shape[-1])])  # O+1 -> K slots
    state = core.start(variables, frames[:, 0], first, object_valid)
    outputs = []
    for t in range(1, num_frames):
        logits, state, query = core.predict(variables, frames[:, t], state)
        outputs.append(logits)
        if t + 1 < num_frames:  # the last frame's output is never read
            probs = jax.nn.softmax(logits, axis=-1)
            if detach_memory:
                probs = jax.lax.stop_gradient(probs)
            state = core.memorize(variables, frames[:, t], probs, state, query)
    return jnp.stack(outputs, axis=1)


def training_memory(model_config: ModelConfig, memory_config=None) -> MemoryConfig:
    """The memory read of training: the run's `config.memory`, its unset protocol fields taken from
    the family's training protocol (`ModelFamily.training_memory_defaults`, e.g. STCN trains with
    the full softmax and evaluates with top-k), then its inference protocol."""
    from stm_jax.model.family import get_family

    family = get_family(model_config)
    protocol = {**family.memory_defaults, **family.training_memory_defaults}
    return MemoryConfig.from_config(memory_config or {}, protocol)
