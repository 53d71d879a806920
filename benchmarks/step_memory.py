"""How well the sizing of `inference.videos_per_step` predicts XLA's count of the compiled step.

Run: python -m benchmarks.step_memory [--height 480 --width 854 --backbone resnet50 --batches 4,8]
Compiles the step (random weights, 2 objects, memory capacity 40) for 1 and 2 videos, as the jobs'
sizing does (`stm_jax.inference.step_memory`), predicts the bytes of the step for each of --batches
videos, and compiles those to compare with XLA's own count, for float32 and bfloat16. On a CPU the
counts are XLA:CPU's (a GPU's or TPU's compiler lays memory out somewhat differently).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import time

import jax

from stm_jax.inference.step_memory import GIB, step_bytes, step_memory
from stm_jax.inference.stepper import Stepper
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--batches", default="4,8")
    args = parser.parse_args()
    model = ModelConfig(backbone=args.backbone, max_objects=2)
    variables = jax.device_put(init_variables(jax.random.key(0), model))
    print(
        f"{args.height}x{args.width}, 2 objects, {args.backbone}, capacity 40; "
        f"device {jax.devices()[0].device_kind}"
    )
    print("| dtype | videos | predicted GiB | XLA GiB | predicted / XLA | compile s |")
    print("|---|---|---|---|---|---|")
    for dtype in ("float32", "bfloat16"):
        stepper = Stepper(dataclasses.replace(model, dtype=dtype), MemoryConfig())
        start = time.perf_counter()
        memory = step_memory(stepper, variables, args.height, args.width, 2)
        print(
            f"| {dtype} | 1 and 2 (sizing: {memory.describe()}) | | | | "
            f"{time.perf_counter() - start:.1f} |",
            flush=True,
        )
        for videos in (int(b) for b in args.batches.split(",")):
            start = time.perf_counter()
            actual = step_bytes(stepper, variables, videos, args.height, args.width, 2)
            predicted = memory.total(videos)
            print(
                f"| {dtype} | {videos} | {predicted / GIB:.3f} | {actual / GIB:.3f} | "
                f"{predicted / actual:.3f} | {time.perf_counter() - start:.1f} |",
                flush=True,
            )
    print("uptime: " + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
