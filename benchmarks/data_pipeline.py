"""Clips per second of the full training input pipeline at 384x384, with 0, 1 and 2 grain workers.

Reads a synthetic DAVIS tree at 480p from disk (JPEG decode + PNG masks, like real DAVIS), or a real
dataset root, through the exact trainer path (`make_train_iterator`). Also prints the train step's clips/s
once `stm_jax.training` provides a step (see `train_step_clips_per_second`).

    /work/venv/bin/python benchmarks/data_pipeline.py [--root /data/DAVIS] [--batches 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from absl import flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stm_jax.data.config import default_data_config
from stm_jax.data.pipeline import make_train_iterator
from stm_jax.data.synthetic import write_synthetic_davis


def train_step_clips_per_second(config, batch) -> float | None:
    """Hook for the trainer author: clips/s of one jitted train step on `batch`, or None.

    Fill this in once `stm_jax.training` provides a step (build state, compile once, time a few steps,
    return batch_size / seconds per step).

    Args:
      config: the data config used for the batch.
      batch: one per-process numpy batch.

    Returns:
      Clips per second, or None while no train step exists.
    """
    try:
        import stm_jax.training  # noqa: F401
    except ImportError:
        return None
    return None


def measure(config, num_workers: int, batches: int, warmup: int = 2) -> tuple[float, dict]:
    """Clips/s of `batches` batches after `warmup` (worker start-up excluded).

    Returns:
      (clips per second, the last batch).
    """
    config.num_workers = num_workers
    iterator = make_train_iterator(config, 0, 1)
    try:
        for _ in range(warmup):
            batch = next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            batch = next(iterator)
        elapsed = time.perf_counter() - start
    finally:
        iterator.close()
    return batches * config.batch_size / elapsed, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="", help="a DAVIS root (default: a synthetic 480p tree)")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--workers", default="0,1,2")
    args = parser.parse_args()
    flags.FLAGS.mark_as_parsed()  # grain workers read absl flags
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or write_synthetic_davis(
            tmp, num_train=4, num_val=0, num_frames=20, height=480, width=854
        )
        config = default_data_config()
        config.sources = {
            "davis": {
                "kind": "davis",
                "root": str(root),
                "ratio": 1.0,
                "year": "2017",
                "split": "train",
                "resolution": "480p",
            }
        }
        config.batch_size = args.batch_size
        config.max_skip = {"kind": "constant", "value": 10}
        print(
            f"crop {config.crop_size}x{config.crop_size}, {config.num_frames} frames, "
            f"batch {config.batch_size}, {args.batches} timed batches"
        )
        batch = None
        for workers in (int(w) for w in args.workers.split(",")):
            rate, batch = measure(config, workers, args.batches)
            print(f"workers={workers}: {rate:.1f} clips/s")
        step_rate = train_step_clips_per_second(config, batch)
        print(
            "train step: "
            + (f"{step_rate:.1f} clips/s" if step_rate else "n/a (no stm_jax.training step yet)")
        )


if __name__ == "__main__":
    main()
