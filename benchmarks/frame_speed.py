"""Benchmark (b): seconds per frame of a model family's published protocol, ours vs a PyTorch
reference with identical weights and the same thread count, the reference in float32 and under
bfloat16 autocast. Goal: ours at least 1.3x faster than the float32 reference.

Run: python -m benchmarks.frame_speed [--family stm|stcn] [--height 480 --width 854] [--objects 2]
     [--frames 12] [--threads N]

* stm (default): tests/torch_stm_reference.py, official STM's protocol (memorise the previous
  frame, read, decode; every 5th frame kept).
* stcn: tests/torch_stcn_reference.py, STCN's eval_davis.py protocol (top-20 L2 read of frame 0
  and every 5th frame, the previous frame not read; a frame's values are encoded only when it is a
  memory frame, on both sides).

Every side runs the same video, frames 1..N-1, each step memorising its frame as the protocol says;
frame 1 is a warm-up (compilation for ours) and is excluded, so the default 12 frames time frames
2..11: 2 memory frames (5, 10) in 10, the proportion of a long video. The mean per frame is the
figure that matters (memory frames cost more); the median is printed too. FLOPs are XLA's count
of our compiled step (a loop body counted once); the reference's GFLOP/s use the same count, an
estimate.
"""

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.inference.whole_video import labels_to_probs
from stm_jax.model.config import ModelConfig
from stm_jax.model.padding import Padding
from tests.parity_utils import make_reference, random_video, to_torch_frame

MEM_EVERY = 5  # both families' published protocol


def time_ours(stepper, variables, frames, labels, num_objects):
    stream = VideoStream(stepper, variables)
    stream.start(frames[0], labels, num_objects)
    times = []
    for frame in frames[1:]:
        start = time.perf_counter()
        probs = stream.step(frame)
        jax.block_until_ready(probs)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def time_torch_stm(model, frames, labels, num_objects):
    probs = torch.from_numpy(labels_to_probs(labels, 11)).permute(2, 0, 1)[None]
    keys = values = None
    times = []
    for t in range(1, len(frames)):
        start = time.perf_counter()
        prev_key, prev_value = model.memorize(to_torch_frame(frames[t - 1]), probs, num_objects)
        if t == 1:
            this_keys, this_values = prev_key, prev_value
        else:
            this_keys = torch.cat([keys, prev_key], dim=3)
            this_values = torch.cat([values, prev_value], dim=3)
        logit = model.segment(to_torch_frame(frames[t]), this_keys, this_values, num_objects)
        probs = F.softmax(logit.float(), dim=1)
        if (t - 1) % MEM_EVERY == 0:
            keys, values = this_keys, this_values
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def time_torch_stcn(model, frames, labels, num_objects, top_k=20):
    """STCN's published loop (tests/torch_stcn_reference.run_video), timed per frame: the value
    encoder runs on memory frames only, as in STCN's inference_core.py."""
    from tests.torch_stcn_reference import (
        aggregate,
        normalise_frames,
        one_hot,
        pad_divide_by,
        top_k_read,
    )

    size = frames.shape[1:3]

    def image(t):
        (padded,), _ = pad_divide_by([normalise_frames(frames[t : t + 1])], 16, size)
        return padded

    (masks,), _ = pad_divide_by([one_hot(labels, num_objects)], 16, size)
    first = image(0)
    key, _, f16, _, _ = model.encode_key(first)
    memory_keys = key.flatten(start_dim=2)
    memory_values = model.encode_value(first, f16, aggregate(masks)[1:]).flatten(start_dim=2)
    times = []
    for t in range(1, len(frames)):
        start = time.perf_counter()
        x = image(t)
        key, query_value, f16, f8, f4 = model.encode_key(x)
        readout = top_k_read(memory_keys, memory_values, key, top_k)
        probs = aggregate(model.decode(readout, query_value, f8, f4).float())
        if t % MEM_EVERY == 0:
            value = model.encode_value(x, f16, probs[1:])
            memory_keys = torch.cat([memory_keys, key.flatten(start_dim=2)], 2)
            memory_values = torch.cat([memory_values, value.flatten(start_dim=2)], 2)
        times.append(time.perf_counter() - start)
    return times


def make_stcn_reference(seed=0):
    """(reference STCN at the released sizes, our config, our variables via the .pth converter)."""
    from stm_jax.convert.stcn import convert_stcn_state_dict
    from tests.torch_stcn_reference import make_stcn, stcn_state_dict

    model = make_stcn(seed)
    config = ModelConfig(family="stcn")
    return model, config, convert_stcn_state_dict(stcn_state_dict(model), config)


def flops(stage) -> float:
    """XLA's FLOP count of a compiled computation."""
    analysis = stage.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float((analysis or {}).get("flops", 0.0))


def step_flops(stepper, variables, height, width, objects):
    """(FLOPs of a memory frame's step, FLOPs of another frame's step). XLA counts a `lax.cond` as
    its costlier branch, so the skipped value encoding is counted separately and taken off."""
    state = stepper.state_shape(variables, 1, height, width, objects)
    frames = jax.ShapeDtypeStruct((1, height, width, 3), jnp.uint8)
    active = jax.ShapeDtypeStruct((1,), jnp.bool_)
    step = flops(stepper.step.lower(variables, frames, state, active).compile())
    core = stepper.core
    if not core._may_skip_encoding():
        return step, step
    query = jax.eval_shape(core.predict, variables, frames, state).query
    probs = jax.ShapeDtypeStruct((1, height, width, stepper.num_slots), jnp.float32)
    padding = Padding.for_size(height, width)

    def encode(variables, frames, probs, valid, query):
        return core.encode_memory(variables, frames, probs, valid, padding, query)

    lowered = jax.jit(encode).lower(variables, frames, probs, state.object_valid, query)
    return step, step - flops(lowered.compile())


def summary(name, times, frame_flops):
    mean, median = statistics.mean(times), statistics.median(times)
    rate = frame_flops / mean / 1e9
    print(
        f"{name}: mean {mean:.3f} s/frame, median {median:.3f} s, {rate:.1f} GFLOP/s "
        f"(frames: {np.round(times, 3).tolist()})"
    )
    return mean, median


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=("stm", "stcn"), default="stm")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.family == "stcn":
        torch_model, config, variables = make_stcn_reference(seed=0)
        time_torch = time_torch_stcn
    else:
        config = ModelConfig()
        torch_model, variables = make_reference(config, seed=0)
        time_torch = time_torch_stm
    variables = jax.device_put(variables)
    stepper = Stepper(config, {})  # the family's published protocol
    frames, labels = random_video(args.frames, args.height, args.width, args.objects, seed=0)
    ours = time_ours(stepper, variables, frames, labels, args.objects)[1:]
    fp32 = time_torch(torch_model, frames, labels, args.objects)[1:]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = time_torch(torch_model, frames, labels, args.objects)[1:]
    memory_flops, other_flops = step_flops(
        stepper, variables, args.height, args.width, args.objects
    )
    timed = range(2, args.frames)
    memory_frames = sum(t % MEM_EVERY == 0 for t in timed)
    others = len(timed) - memory_frames
    frame_flops = (memory_frames * memory_flops + others * other_flops) / len(timed)
    device = jax.devices()[0]
    print(
        f"{args.family}, {args.height}x{args.width}, {args.objects} objects, float32, "
        f"{config.backbone}, {len(ours)} timed frames of which {memory_frames} memory frames; jax on "
        f"{device.platform} ({device.device_kind}), torch on CPU with {torch.get_num_threads()} "
        f"threads"
    )
    print(
        f"XLA FLOPs of our step: {memory_flops / 1e9:.1f} G on a memory frame, "
        f"{other_flops / 1e9:.1f} G otherwise, {frame_flops / 1e9:.1f} G per timed frame on average "
        "(the reference's GFLOP/s below use the same count: an estimate)"
    )
    ours_mean, ours_median = summary("ours", ours, frame_flops)
    fp32_mean, fp32_median = summary("pytorch float32", fp32, frame_flops)
    bf16_mean, bf16_median = summary("pytorch bfloat16 autocast", bf16, frame_flops)
    print(
        f"speed-up of ours over pytorch float32 (goal >= 1.3): {fp32_mean / ours_mean:.2f}x mean, "
        f"{fp32_median / ours_median:.2f}x median"
    )
    print(
        f"speed-up of ours over pytorch bfloat16 autocast: {bf16_mean / ours_mean:.2f}x mean, "
        f"{bf16_median / ours_median:.2f}x median"
    )


if __name__ == "__main__":
    main()
