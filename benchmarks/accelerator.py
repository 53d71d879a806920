"""Throughput of the batched step on one device: fps, achieved TFLOP/s, peak memory, compile time.

Run on a GPU/TPU (the issue's table: 480x854, 2 objects, ResNet-50; at most 8 minutes on one GPU):
    python -m benchmarks.accelerator
On a CPU, at a small size (CI runs this with --model tiny):
    python -m benchmarks.accelerator --height 96 --width 160 --batches 1,4 --frames 3

Rows: one video in float32, one video in bfloat16, then B videos per step in bfloat16 for each B of
--batches. Each row compiles its step (compile time = lower + compile), fills the B slots with frame
0, runs --warmup frames untimed, then times --frames steps (blocking on the last). FLOPs per step come
from XLA's cost analysis of the compiled step; peak memory from the device's allocator
(`memory_stats`, GPU/TPU) or, where the device has none (CPU), XLA's memory analysis of the step
(arguments + outputs + temporaries). Weights are random (speed does not depend on them).
XLA's cost analysis counts a loop body once, so the streaming read (a while loop over memory
chunks) is counted for one chunk: the TFLOP/s printed is a lower bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from stm_jax.inference.batched import BatchedStepper
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.stm import init_variables

# Dense bf16 peak TFLOP/s by device kind (vendor data sheets, without sparsity).
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L4": 121.0,
    "A10G": 70.0,
    "TPU v4": 275.0,
    "TPU v5e": 197.0,
    "TPU v5p": 459.0,
}

MODELS = {
    "resnet50": ModelConfig(max_objects=2),
    "tiny": ModelConfig(backbone="tiny", key_dim=8, value_dim=16, decoder_dim=16, max_objects=2),
}


def device_peak(device, override: float) -> float | None:
    if override:
        return override
    kind = device.device_kind
    return next((peak for name, peak in PEAK_BF16_TFLOPS.items() if name in kind), None)


def _flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float((analysis or {}).get("flops", 0.0))


def _memory_bytes(device, compiled) -> tuple[float, str]:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return float(stats["peak_bytes_in_use"]), "allocator peak"
    m = compiled.memory_analysis()
    total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
    return float(total - m.alias_size_in_bytes), "XLA analysis"


def run_row(model_config, dtype, videos, args, variables):
    """Times `args.frames` steps of `videos` slots; returns a dict of the row's numbers."""
    config = dataclasses.replace(model_config, dtype=dtype)
    stepper = BatchedStepper(config, MemoryConfig())
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (videos, args.height, args.width, 3), np.uint8)
    labels = np.zeros((args.height, args.width), np.uint8)
    labels[: args.height // 2, : args.width // 3] = 1
    labels[args.height // 2 :, args.width // 2 :] = 2
    valid = np.ones((2,), bool)
    active = np.ones((videos,), bool)
    state = stepper.empty(variables, videos, args.height, args.width, 2)
    frames, active = jax.device_put(frames), jax.device_put(active)

    start = time.perf_counter()
    step = stepper.step.lower(variables, frames, state, active).compile()
    compile_s = time.perf_counter() - start
    for slot in range(videos):
        state = stepper.reset_slot(variables, state, np.int32(slot), frames[slot], labels, valid)
    for _ in range(args.warmup):
        out, _, state = step(variables, frames, state, active)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(args.frames):
        out, _, state = step(variables, frames, state, active)
    jax.block_until_ready(out)
    seconds = (time.perf_counter() - start) / args.frames
    memory, memory_source = _memory_bytes(jax.devices()[0], step)
    return {
        "dtype": dtype,
        "videos": videos,
        "fps": videos / seconds,
        "ms": seconds * 1e3,
        "tflops": _flops(step) / seconds / 1e12,
        "memory_gib": memory / 2**30,
        "memory_source": memory_source,
        "compile_s": compile_s,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--batches", default="4,16,64", help="videos per step for bf16 rows")
    parser.add_argument("--frames", type=int, default=10, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per row")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="device peak (bf16)")
    args = parser.parse_args(argv)
    model_config = MODELS[args.model]
    variables = jax.device_put(init_variables(jax.random.key(0), model_config))
    device = jax.devices()[0]
    peak = device_peak(device, args.peak_tflops)
    rows = [("float32", 1), ("bfloat16", 1)]
    rows += [("bfloat16", int(b)) for b in args.batches.split(",") if b]
    print(
        f"{args.height}x{args.width}, 2 objects, {args.model}, memory capacity 40, "
        f"{args.frames} timed steps after {args.warmup} warm-up; device {device.platform} "
        f"({device.device_kind}), peak {peak or 'unknown'} bf16 TFLOP/s"
    )
    print(
        "| dtype | videos/step | frames/s | ms/step | TFLOP/s | % of peak | peak memory GiB | compile s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for dtype, videos in rows:
        r = run_row(model_config, dtype, videos, args, variables)
        share = f"{100 * r['tflops'] / peak:.1f}" if peak else "n/a"
        print(
            f"| {r['dtype']} | {r['videos']} | {r['fps']:.2f} | {r['ms']:.1f} | "
            f"{r['tflops']:.3f} | {share} | {r['memory_gib']:.3f} ({r['memory_source']}) | "
            f"{r['compile_s']:.1f} |",
            flush=True,
        )
        jax.clear_caches()


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing anything
    main()
