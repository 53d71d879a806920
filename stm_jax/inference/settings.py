"""The `config.inference` block of the segment / evaluate / YouTube-VOS jobs, resolved.

inference.videos_per_step  videos per compiled step; 0 = chosen per frame size and object-slot
                           count: 1 on CPU (a bigger batch buys nothing there), on a GPU/TPU as many
                           as fit in memory_fraction of the device's memory by XLA's analysis of the
                           compiled step (`stm_jax.inference.step_memory`), at most 64
inference.memory_fraction  share of the device's memory (its allocator's limit) that sizing may
                           fill; the rest is for the next step's inputs, outputs being read and
                           fragmentation
inference.downscale        False: a video whose per-frame step would not fit in memory_fraction of the
                           memory available (host RAM on a CPU; by an estimate made before compiling,
                           `stm_jax.inference.memory_estimate`) is refused in one line. True: it is
                           segmented at the largest stride-16 size that fits (bilinear) and its masks
                           are resized back to the input size (probabilities bilinear, then argmax)
inference.preset           'default' (the model's dtype) or 'accelerator' (bfloat16 convolutions
                           and matmuls; affinity, softmax and aggregation stay float32)
inference.prefetch         frames decoded ahead per video
inference.decode_threads   threads decoding frames
inference.compile_cache    persistent compilation cache on/off; compile_cache_dir moves it
"""

from __future__ import annotations

import dataclasses
import functools
import threading

import jax
import ml_collections

from stm_jax.cli_errors import ConfigError
from stm_jax.inference.compile_cache import setup_from_config
from stm_jax.inference.step_memory import GIB, device_memory, step_memory
from stm_jax.inference.stepper import Stepper
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import get_family

PRESETS = ("default", "accelerator")
MAX_VIDEOS_PER_STEP = 64  # past this a step only adds latency: the device is full long before
UNSIZED_VIDEOS_PER_STEP = 16  # an accelerator that reports no memory size
DEFAULT_MEMORY_FRACTION = 0.8


def inference_block(**overrides) -> ml_collections.ConfigDict:
    block = ml_collections.ConfigDict(
        dict(
            videos_per_step=0,
            memory_fraction=DEFAULT_MEMORY_FRACTION,
            downscale=False,
            preset="default",
            prefetch=4,
            decode_threads=4,
            compile_cache=True,
            compile_cache_dir="",
        )
    )
    block.update(overrides)
    return block


class VideosPerStep:
    """`inference.videos_per_step` resolved for each bucket (frame size, object slots); the
    scheduler calls it with the bucket's shape (`stm_jax.inference.scheduler.segment_bucket`).

    An explicit value wins; else 1 on a CPU; else the most videos whose step fits in
    `memory_fraction` of the device's memory by XLA's analysis of the compiled step (at most
    MAX_VIDEOS_PER_STEP). Says in one line what it chose and why (once per job, or once per bucket
    shape when derived from memory). Thread-safe: the device threads of a job share one.
    """

    def __init__(self, config, stepper: Stepper, device=None, say=print):
        inference = config.get("inference") or {}
        self.explicit = int(inference.get("videos_per_step", 0))
        self.fraction = float(inference.get("memory_fraction", DEFAULT_MEMORY_FRACTION))
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError(
                f"inference.memory_fraction={self.fraction} must be in (0, 1]; e.g. "
                f"--config.inference.memory_fraction={DEFAULT_MEMORY_FRACTION}."
            )
        self.stepper, self.device, self.say = stepper, device, say
        self._chosen: dict = {}
        self._lock = threading.Lock()

    def __call__(self, variables, height: int, width: int, objects: int) -> int:
        device = self.device or jax.local_devices()[0]
        by_memory = self.explicit <= 0 and device.platform != "cpu"
        key = (height, width, objects) if by_memory else None
        with self._lock:
            if key not in self._chosen:
                videos, why = self._choose(device, variables, height, width, objects)
                self._chosen[key] = videos
                self.say(why)
            return self._chosen[key]

    def _choose(self, device, variables, height, width, objects) -> tuple[int, str]:
        if self.explicit > 0:
            return (
                self.explicit,
                f"[inference] {self.explicit} video(s) per step (set by inference.videos_per_step).",
            )
        if device.platform == "cpu":
            return 1, (
                "[inference] 1 video per step on CPU: a batch of videos is no faster there "
                "(--config.inference.videos_per_step=N to choose)."
            )
        limit = device_memory(device)
        if limit is None:
            return UNSIZED_VIDEOS_PER_STEP, (
                f"[inference] {UNSIZED_VIDEOS_PER_STEP} videos per step: {device.device_kind} does "
                "not report its memory size (--config.inference.videos_per_step=N to choose)."
            )
        memory = step_memory(self.stepper, variables, height, width, objects)
        fit = memory.videos_within(self.fraction * limit)
        videos = min(max(fit, 1), MAX_VIDEOS_PER_STEP)
        note = ""
        if fit < 1:
            note = "; not even one video fits: running one (lower the frame size if it fails)"
        elif fit > MAX_VIDEOS_PER_STEP:
            note = f"; {fit} would fit, {MAX_VIDEOS_PER_STEP} is the most"
        return videos, (
            f"[inference] {height}x{width}, {objects} object slot(s): {videos} video(s) per step "
            f"on {device.device_kind}, by XLA's analysis of the compiled step ({memory.describe()}) "
            f"within {self.fraction:g} x {limit / GIB:.1f} GiB{note} "
            "(--config.inference.videos_per_step=N to choose)."
        )


def with_preset(model_config: ModelConfig, preset: str) -> ModelConfig:
    """The model config an `inference.preset` runs: 'accelerator' = bfloat16 compute."""
    if preset not in PRESETS:
        raise ValueError(f"inference.preset={preset!r}; choose one of {PRESETS}.")
    if preset == "accelerator":
        return dataclasses.replace(model_config, dtype="bfloat16")
    return model_config


def make_stepper(config, model_config: ModelConfig, dataset: str = "") -> Stepper:
    """The job's stepper (preset applied; memory fields left unset follow the model family's
    protocol, for `dataset` if it has its own: `ModelFamily.memory_protocol`); turns the
    compilation cache on if asked."""
    inference = config.get("inference") or {}
    model_config = with_preset(model_config, inference.get("preset", "default"))
    setup_from_config(config)
    return cached_stepper(model_config, config.memory, dataset)


def cached_stepper(model_config: ModelConfig, memory, dataset: str = "") -> Stepper:
    """The stepper of a model and a memory configuration (`config.memory` or a MemoryConfig; unset
    protocol fields follow the family's, for `dataset`), one per configuration in a process, so a
    second job run or in-training evaluation reuses its compilations."""
    protocol = get_family(model_config).memory_protocol(dataset)
    return _stepper(model_config, MemoryConfig.from_config(memory, protocol))


@functools.lru_cache(maxsize=8)
def _stepper(model_config: ModelConfig, memory_config: MemoryConfig) -> Stepper:
    return Stepper(model_config, memory_config)
