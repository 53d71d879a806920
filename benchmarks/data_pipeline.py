"""Clips per second of the full training input pipeline at 384x384, with 0, 1 and 2 grain workers.

Reads a synthetic DAVIS tree at 480p from disk (JPEG decode + PNG masks, like real DAVIS), or a real
dataset root, through the exact trainer path (`make_train_iterator`). Also prints the train step's clips/s
on the same batch and machine, and the headroom (pipeline clips/s with the last worker count / step).

    python benchmarks/data_pipeline.py [--root /data/DAVIS] [--batches 10]
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


def train_step_clips_per_second(config, batch, steps: int = 2) -> float:
    """Clips/s of the jitted STM train step (ResNet-50, the batch's crop size) on this machine.

    Args:
      config: the data config used for the batch.
      batch: one per-process numpy batch from the pipeline.
      steps: timed steps after the compiling one.

    Returns:
      Clips per second of the train step on `batch`.
    """
    from benchmarks.train_step import time_jax
    from stm_jax.model.config import ModelConfig

    _, seconds = time_jax(ModelConfig(max_objects=config.max_train_objects), batch, steps)
    return config.batch_size / seconds


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
        print(f"train step (ResNet-50, same batch): {step_rate:.2f} clips/s")
        print(
            f"headroom with {workers} workers (pipeline / step, goal >= 2): {rate / step_rate:.1f}x"
        )


if __name__ == "__main__":
    main()
