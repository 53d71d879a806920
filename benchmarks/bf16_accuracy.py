"""The accuracy cost of bfloat16 inference: the same weights in float32 and in bfloat16
(convolutions and matmuls in bf16, affinity / softmax / aggregation in float32) on generated videos.

Run: python -m benchmarks.bf16_accuracy [--videos 16 --frames 24 --height 64 --width 96]
Uses the shipped checkpoint (stm_jax/assets/synthetic_cpu) on held-out synthetic videos in the
training videos' format (seed 7 on, as the demo), and prints the pixel agreement of the label maps
and J&F (official DAVIS-2017 definitions) of both against the generated ground truth.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from stm_jax.checkpoint_io import load_trained_model
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.evaluation.davis import score_sequence_arrays
from stm_jax.inference.scheduler import VideoTask, segment_tasks
from stm_jax.inference.stepper import Stepper
from stm_jax.jobs.demo import SHIPPED_CHECKPOINT
from stm_jax.memory.config import MemoryConfig

MEMORY = MemoryConfig(mem_every=3, capacity=12)


def segment_all(config, variables, videos, videos_per_step):
    """Per video its probabilities [T, H, W, K] (frame 0: the given mask) and the stepper used."""
    stepper = Stepper(config, MEMORY)
    tasks = [
        VideoTask(i, list(v.frames), v.labels[0], int(v.labels[0].max()))
        for i, v in enumerate(videos)
    ]
    out = {i: [None] * len(v.frames) for i, v in enumerate(videos)}
    for task, index, probs in segment_tasks(
        stepper, variables, tasks, videos_per_step, return_probs=True
    ):
        out[task.key][index] = probs
    return [np.stack(out[i]) for i in range(len(videos))], stepper


def j_and_f(videos, predictions) -> float:
    scores = []
    for video, pred in zip(videos, predictions):
        scores += score_sequence_arrays(video.name, video.labels, pred)
    j = np.mean([np.mean(s.j) for s in scores])  # official: mean over objects of per-object means
    f = np.mean([np.mean(s.f) for s in scores])
    return float((j + f) / 2)


def measure(videos=16, frames=24, height=64, width=96, seed=7, videos_per_step=8) -> dict:
    """{'agreement', 'jf_float32', 'jf_bfloat16', 'dtypes', 'probability_gap'} on `videos`
    generated videos: label agreement of frames 1.., J&F of both, the dtypes the two steppers ran
    and the largest difference of their probabilities."""
    config, variables = load_trained_model(SHIPPED_CHECKPOINT)
    clips = [
        make_synthetic_video(seed + i, frames, height, width, (1, config.max_objects))
        for i in range(videos)
    ]
    fp32, fp32_stepper = segment_all(config, variables, clips, videos_per_step)
    bf16_config = dataclasses.replace(config, dtype="bfloat16")
    bf16, bf16_stepper = segment_all(bf16_config, variables, clips, videos_per_step)
    labels32 = [p.argmax(-1).astype(np.uint8) for p in fp32]
    labels16 = [p.argmax(-1).astype(np.uint8) for p in bf16]
    later = [(a[1:] == b[1:]) for a, b in zip(labels32, labels16)]  # frame 0 is the given mask
    agreement = float(np.mean(np.concatenate([x.ravel() for x in later])))
    return {
        "agreement": agreement,
        "jf_float32": j_and_f(clips, labels32),
        "jf_bfloat16": j_and_f(clips, labels16),
        # what ran: a bf16 run that silently computed in float32 would give a gap of ~0
        "dtypes": (fp32_stepper.model_config.dtype, bf16_stepper.model_config.dtype),
        "probability_gap": float(max(np.abs(a[1:] - b[1:]).max() for a, b in zip(fp32, bf16))),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    args = parser.parse_args()
    result = measure(args.videos, args.frames, args.height, args.width)
    print(
        f"{args.videos} videos x {args.frames} frames at {args.height}x{args.width}, shipped "
        "checkpoint, float32 vs bfloat16 weights-identical"
    )
    print(f"pixel agreement of labels (frames 1..): {result['agreement'] * 100:.3f} %")
    print(
        f"J&F float32 {result['jf_float32']:.4f}  bfloat16 {result['jf_bfloat16']:.4f}  "
        f"difference {result['jf_bfloat16'] - result['jf_float32']:+.4f}"
    )
    print(f"largest probability difference: {result['probability_gap']:.4f}")


if __name__ == "__main__":
    main()
