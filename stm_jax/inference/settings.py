"""The `config.inference` block of the segment / evaluate / YouTube-VOS jobs, resolved.

inference.videos_per_step  videos per compiled step; 0 = by backend (1 on CPU, where a bigger
                           batch buys nothing, 16 on GPU/TPU)
inference.preset           'default' (the model's dtype) or 'accelerator' (bfloat16 convolutions
                           and matmuls; affinity, softmax and aggregation stay float32)
inference.prefetch         frames decoded ahead per video
inference.decode_threads   threads decoding frames
inference.compile_cache    persistent compilation cache on/off; compile_cache_dir moves it
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import ml_collections

from stm_jax.inference.batched import BatchedStepper
from stm_jax.inference.compile_cache import setup_from_config
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig

PRESETS = ("default", "accelerator")
DEFAULT_VIDEOS_PER_STEP = {"cpu": 1}
ACCELERATOR_VIDEOS_PER_STEP = 16


def inference_block(**overrides) -> ml_collections.ConfigDict:
    block = ml_collections.ConfigDict(
        dict(
            videos_per_step=0,
            preset="default",
            prefetch=4,
            decode_threads=4,
            compile_cache=True,
            compile_cache_dir="",
        )
    )
    block.update(overrides)
    return block


def videos_per_step(config, platform: str | None = None) -> int:
    chosen = int((config.get("inference") or {}).get("videos_per_step", 0))
    if chosen > 0:
        return chosen
    platform = platform or jax.default_backend()
    return DEFAULT_VIDEOS_PER_STEP.get(platform, ACCELERATOR_VIDEOS_PER_STEP)


def make_stepper(config, model_config: ModelConfig) -> BatchedStepper:
    """The batched stepper for a job (preset applied); turns the compilation cache on if asked."""
    inference = config.get("inference") or {}
    preset = inference.get("preset", "default")
    if preset not in PRESETS:
        raise ValueError(f"inference.preset={preset!r}; choose one of {PRESETS}.")
    if preset == "accelerator":
        model_config = dataclasses.replace(model_config, dtype="bfloat16")
    setup_from_config(config)
    return _stepper(model_config, MemoryConfig.from_config(config.memory))


@functools.lru_cache(maxsize=8)
def _stepper(model_config: ModelConfig, memory_config: MemoryConfig) -> BatchedStepper:
    """One stepper per configuration in a process, so a second job run reuses its compilations."""
    return BatchedStepper(model_config, memory_config)
