"""Memory of the per-frame step, estimated from the model and memory configs without compiling.

    estimate = step_estimate(model_config, memory_config, height, width, objects, weight_bytes)
    estimate.total                       # bytes of one video's step, conservative
    available_memory(device)             # what that device may hand out (host RAM on a CPU)

`stm_jax.inference.step_memory` asks XLA, which needs the step compiled at the frame size: minutes
and tens of GB at 4K, the very allocation a check has to avoid. This counts the buffers the step
holds instead, from the architecture's widths (`backbone.channels` at strides 4, 8, 16, key / value
/ decoder widths) and the memory settings:

* weights (and their bfloat16 casts in bfloat16);
* the memory bank, twice: the donated state and the state the step builds (a commit moves slots);
* the read's affinity: `chunk_frames` x P memory positions against P query positions, float32, two
  copies (scores and their exponentials; three with top-k or usage counting), per key set (one per
  object for STM, one for all with shared keys, STCN) — at 4K this is ~80 % of the step;
* activations: per padded pixel, the query features the decoder keeps, the largest of the query
  encoder's, memory encoder's and decoder's working sets (the last two per object), and the
  full-resolution float32 probabilities and logits.

Checked against XLA's analysis in tests/test_memory_estimate.py (tiny model, three sizes: within
1.0x-1.6x, never below). ResNet-50 STM at the default memory settings, estimate / XLA (CPU):
480x854 0.76 / 0.68 GiB with one object, 1.30 / 1.09 with two; 1080x1920 4.8 / 4.3 and 9.2 / 8.0;
2160x3840 42.1 / 39.9 and 82.7 / 78.1. STCN at 480x854: 0.86 / 0.68 and 1.30 / 1.02. So it errs on
the side of refusing, by 6 % at 4K to 30 % at small sizes.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from stm_jax.cli_errors import ConfigError
from stm_jax.memory.bank import init_bank
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.policy import get_policy
from stm_jax.model.backbone import BACKBONES
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import get_family
from stm_jax.model.padding import Padding

GIB = 2**30
STRIDE = 16
MEMINFO = "/proc/meminfo"


class StepMemoryError(ConfigError):
    """The step does not fit in the memory available at this frame size and these settings."""


@dataclasses.dataclass(frozen=True)
class StepEstimate:
    """Bytes of one video's step by part."""

    weights: int
    bank: int
    affinity: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.bank + self.affinity + self.activations

    def describe(self) -> str:
        parts = ", ".join(
            f"{name} {getattr(self, name) / GIB:.2f}"
            for name in ("weights", "bank", "affinity", "activations")
        )
        return f"{self.total / GIB:.1f} GiB ({parts} GiB)"


def tree_bytes(tree) -> int:
    """Bytes of a pytree of arrays or ShapeDtypeStructs."""
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _stem_width(backbone) -> int:
    spec = getattr(backbone, "spec", backbone)
    return int(getattr(spec, "stem_width", backbone.channels[0]))


def _encoder_work(backbone) -> float:
    """Elements per padded pixel of an encoder's working set: the stride-2 stem (conv, norm, ReLU
    live together) or four stride-4 tensors of a residual block, whichever is larger."""
    c2 = backbone.channels[0]
    return max(3 * _stem_width(backbone) / 4, 4 * c2 / 16)


def bank_bytes(memory: MemoryConfig, key_sets, objects, positions, key_dim, value_dim, dtype):
    """Bytes of one video's memory bank (the policy's own state included), by shape only."""
    shapes = jax.eval_shape(
        lambda: init_bank(memory, key_sets, objects, positions, key_dim, value_dim, dtype)
    )
    return tree_bytes(shapes)


def step_estimate(
    model: ModelConfig,
    memory: MemoryConfig,
    height: int,
    width: int,
    objects: int,
    weight_bytes: int,
) -> StepEstimate:
    """Bytes one video's step needs at this frame size and object-slot count (see the module
    docstring); `weight_bytes` is the float32 weights' size (`tree_bytes(variables)`)."""
    family = get_family(model)
    itemsize = jnp.dtype(model.compute_dtype).itemsize
    padded_h, padded_w = Padding.for_size(height, width).padded_shape
    pixels = padded_h * padded_w
    positions = (padded_h // STRIDE) * (padded_w // STRIDE)
    key_sets = 1 if family.shares_memory_keys else objects

    weights = weight_bytes + (weight_bytes * itemsize // 4 if itemsize < 4 else 0)
    bank = 2 * bank_bytes(
        memory, key_sets, objects, positions, model.key_dim, model.value_dim, model.compute_dtype
    )

    chunk = memory.chunk_frames * positions
    counts_usage = get_policy(memory).counts_usage
    copies = 3 if (memory.top_k or counts_usage) else 2
    affinity = copies * key_sets * chunk * positions * 4
    affinity += 2 * objects * positions * model.value_dim * 4  # the running readout (float32)
    if memory.top_k:  # the k gathered values of every query position
        affinity += objects * positions * memory.top_k * model.value_dim * 4

    query_backbone = BACKBONES.get(model.backbone)
    value_backbone = BACKBONES.get(model.value_backbone)
    c2, c3, c4 = query_backbone.channels
    kept = c2 / 16 + c3 / 64 + c4 / 256 + (model.key_dim + model.value_dim) / 256
    memory_work = _encoder_work(value_backbone) + 2 * _stem_width(value_backbone) / 4
    decoder_work = 5 * model.decoder_dim / 16
    work = max(_encoder_work(query_backbone), objects * memory_work, objects * decoder_work)
    # float32 at full size: the K-slot probabilities (an output), per object its foreground
    # probability and (bg, fg) logits; XLA fuses the rest (input scaling, one-hot, masks) away.
    full_size = 2 + model.num_slots + 2 * objects
    activations = int(pixels * ((kept + work) * itemsize + full_size * 4))
    return StepEstimate(int(weights), int(bank), int(affinity), activations)


def host_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where there is no such file)."""
    try:
        with open(MEMINFO) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def available_memory(device) -> int | None:
    """Bytes the step may use on `device`: its allocator's limit (GPU/TPU `memory_stats()`), host
    RAM available now on a CPU, or None when neither is known."""
    if device.platform == "cpu":
        return host_available()
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    limit = (stats or {}).get("bytes_limit")
    return int(limit) if limit else None
