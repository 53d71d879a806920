"""Benchmark (b): seconds per frame of the official protocol, ours vs a PyTorch reference STM with
identical weights and the same thread count. Goal: ours at least 1.3x faster.

Run: python -m benchmarks.frame_speed [--height 480 --width 854] [--objects 2] [--frames 8]
Both run the same video (frames 1..N of the protocol: memorise the previous frame, read, decode);
the first measured frame of each is a warm-up (compilation for ours) and is excluded.
"""

import argparse
import os
import statistics
import time

import jax
import numpy as np
import torch
import torch.nn.functional as F

from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.inference.whole_video import labels_to_probs
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from tests.parity_utils import make_reference, random_video, to_torch_frame


def time_ours(config, variables, frames, labels, num_objects):
    stream = VideoStream(Stepper(config, MemoryConfig()), variables)
    stream.start(frames[0], labels, num_objects)
    times = []
    for frame in frames[1:]:
        start = time.perf_counter()
        probs = stream.step(frame)
        jax.block_until_ready(probs)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def time_torch(model, frames, labels, num_objects, mem_every=5):
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
        probs = F.softmax(logit, dim=1)
        if (t - 1) % mem_every == 0:
            keys, values = this_keys, this_values
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = ModelConfig()
    torch_model, variables = make_reference(config, seed=0)
    variables = jax.device_put(variables)
    frames, labels = random_video(args.frames, args.height, args.width, args.objects, seed=0)
    ours = time_ours(config, variables, frames, labels, args.objects)[1:]
    theirs = time_torch(torch_model, frames, labels, args.objects)[1:]
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    device = jax.devices()[0]
    print(
        f"{args.height}x{args.width}, {args.objects} objects, float32, resnet50, "
        f"{len(ours)} timed frames; jax on {device.platform} ({device.device_kind}), "
        f"torch on CPU with {torch.get_num_threads()} threads"
    )
    print(f"ours:    {ours_s:.3f} s/frame  (frames: {np.round(ours, 3).tolist()})")
    print(f"pytorch: {theirs_s:.3f} s/frame  (frames: {np.round(theirs, 3).tolist()})")
    print(f"speed-up (goal >= 1.3): {theirs_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
