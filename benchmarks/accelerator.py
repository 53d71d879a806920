"""Throughput of the batched step on one device: fps, achieved TFLOP/s, peak memory, compile time.

Run on a GPU/TPU (the issue's table: 480x854, 2 objects, ResNet-50; at most 8 minutes on one GPU):
    python -m benchmarks.accelerator
On a CPU, at a small size (CI runs this with --model tiny):
    python -m benchmarks.accelerator --height 96 --width 160 --batches 1,4 --frames 3

Rows: one video in float32, one video in bfloat16, then B videos per step in bfloat16 for each B of
--batches. Each row compiles its step (compile time = lower + compile), fills the B slots with frame
0, runs warm-up steps untimed until the memory holds --memory-frames frames (every frame is kept,
mem_every=1; 16 is what DAVIS 2017 val's ~70-frame videos keep on average with the default
mem_every=5), then times --frames steps (blocking on the last); the memory grows by one frame per
timed step. Peak memory comes from the device's allocator (`memory_stats`, GPU/TPU: the process's
peak so far, so rows are ordered by size) or, where the device has none (CPU), XLA's memory
analysis of the step (arguments + outputs + temporaries). Weights are random (speed does not depend
on them). A row that runs out of device memory is printed as such and the next row runs.

FLOPs: XLA's cost analysis counts a loop body once, and the read streams memory in a while loop
over chunks, so the count of one step is corrected to the chunks it runs: the step is lowered (not
compiled) with chunks of c and 2c frames; the difference is one chunk's FLOPs (the part that grows
with memory), the rest is the step without the read's loop; a step reading M frames costs
rest + ceil(M / c) * chunk. TFLOP/s = those FLOPs over the timed steps / their time.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from stm_jax.inference.step_memory import compiled_bytes, step_inputs
from stm_jax.inference.stepper import Stepper
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables

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


def flops(stage) -> float:
    """XLA's FLOP count of a lowered or compiled computation."""
    analysis = stage.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float((analysis or {}).get("flops", 0.0))


def _memory_bytes(device, compiled) -> tuple[float, str]:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return float(stats["peak_bytes_in_use"]), "allocator peak"
    return float(compiled_bytes(compiled)), "XLA analysis"


def _memory_config(chunk_frames: int) -> MemoryConfig:
    return MemoryConfig(chunk_frames=chunk_frames, mem_every=1)


def read_cost_model(model_config, variables, height, width, chunk_frames) -> tuple[float, float]:
    """(FLOPs of one video's step without the read's chunk loop, FLOPs of one chunk of the loop),
    from XLA's counts of the step lowered with chunks of c and 2c frames (see the docstring)."""
    counts = []
    for chunk in (chunk_frames, 2 * chunk_frames):
        stepper = Stepper(model_config, _memory_config(chunk))
        inputs = step_inputs(stepper, variables, 1, height, width, 2)
        counts.append(flops(stepper.step.lower(variables, *inputs)))
    chunk = counts[1] - counts[0]
    return counts[0] - chunk, chunk


def _frames_in_memory(state) -> int:
    """Valid memory frames of slot 0 (every slot holds the same number here)."""
    return int(np.sum(np.asarray(state.bank.frame_index)[0] >= 0))


def run_row(model_config, dtype, videos, args, variables, cost):
    """Times `args.frames` steps of `videos` slots; returns a dict of the row's numbers."""
    config = dataclasses.replace(model_config, dtype=dtype)
    memory_config = _memory_config(args.chunk_frames)
    stepper = Stepper(config, memory_config)
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
    for _ in range(max(args.warmup, args.memory_frames - 1)):
        out, _, state = step(variables, frames, state, active)
    jax.block_until_ready(state)
    first = _frames_in_memory(state)
    start = time.perf_counter()
    for _ in range(args.frames):
        out, _, state = step(variables, frames, state, active)
    jax.block_until_ready(out)
    seconds = (time.perf_counter() - start) / args.frames
    last = _frames_in_memory(state)
    # Frames read by each timed step: the memory grows by one per step up to its capacity.
    read = [min(first + i, memory_config.capacity) for i in range(args.frames)]
    assert min(first + args.frames, memory_config.capacity) == last, (first, last)
    rest, chunk = cost
    flops = videos * sum(rest + -(-m // args.chunk_frames) * chunk for m in read) / args.frames
    memory, memory_source = _memory_bytes(jax.devices()[0], step)
    return {
        "dtype": dtype,
        "videos": videos,
        "fps": videos / seconds,
        "ms": seconds * 1e3,
        "tflops": flops / seconds / 1e12,
        "gflop_per_frame": flops / videos / 1e9,
        "memory_frames": f"{first}-{last - 1}",
        "memory_gib": memory / 2**30,
        "memory_source": memory_source,
        "xla_gib": compiled_bytes(step) / 2**30,
        "compile_s": compile_s,
    }


def out_of_memory(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--batches", default="4,16,64", help="videos per step for bf16 rows")
    parser.add_argument("--frames", type=int, default=10, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per row")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="device peak (bf16)")
    parser.add_argument(
        "--memory-frames", type=int, default=16, help="frames in memory when timing starts"
    )
    parser.add_argument("--chunk-frames", type=int, default=MemoryConfig.chunk_frames)
    args = parser.parse_args(argv)
    model_config = MODELS[args.model]
    variables = jax.device_put(init_variables(jax.random.key(0), model_config))
    device = jax.devices()[0]
    peak = device_peak(device, args.peak_tflops)
    rows = [("float32", 1), ("bfloat16", 1)]
    rows += [("bfloat16", int(b)) for b in args.batches.split(",") if b]
    cost = read_cost_model(model_config, variables, args.height, args.width, args.chunk_frames)
    print(
        f"{args.height}x{args.width}, 2 objects, {args.model}, memory capacity "
        f"{MemoryConfig.capacity} in chunks of {args.chunk_frames} frames, {args.frames} timed "
        f"steps with {args.memory_frames}+ frames in memory; device {device.platform} "
        f"({device.device_kind}), peak {peak or 'unknown'} bf16 TFLOP/s; one video's step: "
        f"{cost[0] / 1e9:.4g} GFLOP + {cost[1] / 1e9:.4g} GFLOP per {args.chunk_frames} memory frames"
    )
    print(
        "| dtype | videos/step | frames/s | ms/step | TFLOP/s | % of peak | GFLOP/frame "
        "| frames in memory | peak memory GiB | compile s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dtype, videos in rows:
        try:
            r = run_row(model_config, dtype, videos, args, variables, cost)
        except Exception as error:  # only running out of device memory is expected
            if not out_of_memory(error):
                raise
            print(f"| {dtype} | {videos} | out of device memory | | | | | | | |", flush=True)
            jax.clear_caches()
            continue
        share = f"{100 * r['tflops'] / peak:.1f}" if peak else "n/a"
        print(
            f"| {r['dtype']} | {r['videos']} | {r['fps']:.2f} | {r['ms']:.1f} | "
            f"{r['tflops']:.3f} | {share} | {r['gflop_per_frame']:.2f} | {r['memory_frames']} | "
            f"{r['memory_gib']:.3f} ({r['memory_source']}) | {r['compile_s']:.1f} |",
            flush=True,
        )
        jax.clear_caches()


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing anything
    main()
