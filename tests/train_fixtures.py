"""Tiny training configs and batches shared by the training tests (fast on 2 CPU cores)."""

from __future__ import annotations

import os
import tempfile

import jax
import ml_collections
import numpy as np

from stm_jax.jobs.config_base import train_config

# Every train_job.run builds a fresh jitted step; the persistent compilation cache lets the many
# identical tiny runs of these tests (and their subprocesses) compile each program once.
TEST_JAX_CACHE = os.environ.get(
    "STM_TEST_JAX_CACHE", os.path.join(tempfile.gettempdir(), "stm_jax_test_cache")
)
jax.config.update("jax_compilation_cache_dir", TEST_JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def cache_env() -> dict:
    """Environment variables giving a subprocess the same persistent compilation cache, so the
    programs a test's subprocess shares with other tests compile once."""
    return {
        "JAX_COMPILATION_CACHE_DIR": TEST_JAX_CACHE,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def synthetic_source(num_videos=4, seed=0, size=(32, 48), frames=6) -> dict:
    return {
        "kind": "synthetic",
        "ratio": 1.0,
        "num_videos": num_videos,
        "seed": seed,
        "num_frames": frames,
        "height": size[0],
        "width": size[1],
        "num_objects": (1, 2),
    }


def tiny_config(batch_size: int = 2, num_steps: int = 2) -> ml_collections.ConfigDict:
    """A 32-px, tiny-backbone synthetic run with no evaluation (override fields per test)."""
    c = train_config()
    c.model.update(
        {"backbone": "tiny", "key_dim": 8, "value_dim": 16, "decoder_dim": 16, "max_objects": 2}
    )
    d = c.data
    d.sources = ml_collections.ConfigDict({"synthetic": synthetic_source()})
    d.batch_size, d.crop_size, d.resize_shorter = batch_size, 32, 32
    d.max_train_objects, d.min_object_pixels, d.num_workers = 2, 4, 0
    d.max_skip = ml_collections.ConfigDict({"kind": "stm", "start": 1, "end": 3, "every_clips": 4})
    t = c.train
    t.num_steps, t.lr, t.log_every, t.checkpoint_every, t.eval_every = num_steps, 1e-3, 1, 0, 0
    t.progress_bar = False
    t.async_checkpoint = False
    return c


def random_batch(batch=2, frames=3, size=32, objects=2, seed=0) -> dict:
    """A batch in the pipeline's layout: random frames, random blob labels with 1..objects ids."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, frames, size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for b in range(batch):
        for k in range(1, objects + 1):
            cy, cx = rng.uniform(8, size - 8, 2)
            for t in range(frames):
                inside = (yy - cy - 2 * t) ** 2 + (xx - cx) ** 2 < 36
                labels[b, t][inside] = k
    masks = (labels[..., None] == np.arange(objects + 1)).astype(np.float32)
    return {
        "frames": rng.integers(0, 256, (batch, frames, size, size, 3), dtype=np.uint8),
        "labels": labels,
        "void": np.zeros(labels.shape, bool),
        "masks": masks,
        "object_valid": np.ones((batch, objects), bool),
        "num_objects": np.full((batch,), objects, np.int32),
    }


def read_tensorboard_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of every scalar under `logdir`, read by TensorBoard's own loader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0})  # 0: keep them all
    accumulator.Reload()
    return {
        tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }
