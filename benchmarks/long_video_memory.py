"""Benchmark (c) and the long-video check: host peak memory stays flat over a long video once the
memory bank is full (bounded capacity, eviction of the oldest kept frame except the first).

Run:
  python -m benchmarks.long_video_memory                          # 300 frames, resnet50, 240x432
  python -m benchmarks.long_video_memory --frames 5000 --backbone tiny --height 96 --width 160 \
      --report 500,5000                                           # the 5,000-frame check
Prints peak RSS (ru_maxrss) and current RSS at the report frames and the ratio of the last to the
first report (goal: within 10 %). The bank fills after capacity * mem_every frames.
"""

import argparse
import resource
import time

import jax
import numpy as np

from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables
from tests.parity_utils import random_video


def rss_mib() -> tuple[float, float]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    return peak, current


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=432)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--capacity", type=int, default=10)
    parser.add_argument("--report", default="")
    args = parser.parse_args()
    reports = [int(r) for r in args.report.split(",") if r] or [
        args.capacity * 5 + 10,
        args.frames // 2,
        args.frames,
    ]
    config = ModelConfig(backbone=args.backbone)
    variables = init_variables(jax.random.key(0), config)
    memory = MemoryConfig(capacity=args.capacity)
    stream = VideoStream(Stepper(config, memory), variables)
    frames, labels = random_video(10, args.height, args.width, args.objects, seed=0)
    stream.start(frames[0], labels, args.objects)
    print(
        f"{args.frames} frames at {args.height}x{args.width}, {args.backbone}, {args.objects} objects, "
        f"capacity {args.capacity} (full after frame {args.capacity * memory.mem_every})"
    )
    start, seen = time.perf_counter(), {}
    for t in range(1, args.frames):
        probs = stream.step(frames[t % len(frames)])
        np.asarray(probs)  # what a real run does with each frame: bring it to the host
        if t + 1 in reports:
            peak, current = rss_mib()
            seen[t + 1] = peak
            held = int(np.sum(np.asarray(stream.state.video.bank.frame_index) >= 0))
            print(
                f"frame {t + 1:6d}: peak RSS {peak:8.1f} MiB, current {current:8.1f} MiB, "
                f"frames in memory {held}, {(t + 1) / (time.perf_counter() - start):.1f} frames/s"
            )
    first, last = seen[min(seen)], seen[max(seen)]
    print(f"peak RSS at frame {max(seen)} / frame {min(seen)}: {last / first:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
