"""Long-video benchmark with accuracy: the memory policies side by side, through the segment job.

Generated videos of 1,000+ frames (`stm_jax.data.long_synthetic`: objects leave and come back,
their appearance changes) are written as a DAVIS-layout tree (lossless PNG frames) and segmented by
the segment job (`configs/davis2017_val.py`, what a user runs) with the shipped checkpoint
(stm_jax/assets/synthetic_cpu); its PNGs are scored with the official definitions (frames 1..N-2).
Each policy runs in its own process so that peak RSS is its own.

Run:
  python -m benchmarks.long_video_policies                     # 2 videos x 1200 frames, 64x96
  python -m benchmarks.long_video_policies --frames 2000 --videos 3
Prints J&F, seconds per frame of the whole job (loading, compilation, decoding and PNG writing
included; the same for every policy) and peak RSS per policy, and long_term's time per frame over
oldest's (goal: <= 1.2).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

CHECKPOINT = Path(__file__).resolve().parents[1] / "stm_jax" / "assets" / "synthetic_cpu"
POLICIES = ("oldest", "none", "long_term", "least_used")


def write_tree(root: Path, args) -> list:
    """The videos as a DAVIS 2017 'val' tree with PNG frames; returns their label arrays."""
    from stm_jax.data.long_synthetic import make_long_video
    from stm_jax.io.images import write_palette_png

    videos = []
    for index in range(args.videos):
        video = make_long_video(1000 + index, args.frames, args.height, args.width, args.objects)
        frames = root / "JPEGImages/480p" / video.name
        frames.mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(video.frames):
            Image.fromarray(frame).save(frames / f"{t:05d}.png")
        write_palette_png(root / "Annotations/480p" / video.name / "00000.png", video.labels[0])
        videos.append(video)
    (root / "ImageSets/2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets/2017/val.txt").write_text("".join(f"{v.name}\n" for v in videos))
    return videos


def run_policy(args) -> dict:
    """Segments every video with one policy through the segment job; returns its scores, time and
    peak RSS."""
    from configs import davis2017_val
    from stm_jax.evaluation.davis import score_sequence_arrays
    from stm_jax.io.images import read_label_mask
    from stm_jax.jobs import segment

    with tempfile.TemporaryDirectory() as tmp:
        videos = write_tree(Path(tmp) / "davis", args)
        config = davis2017_val.get_config()
        config.checkpoint = str(CHECKPOINT)
        config.data.root = str(Path(tmp) / "davis")
        config.memory.update(capacity=args.capacity, eviction=args.policy)
        config.memory.update(
            long_term_prototypes=args.prototypes,
            long_term_size=args.store,
            long_term_selection=args.selection,
        )
        start = time.perf_counter()
        segment.run(config, str(Path(tmp) / "out"))
        seconds = time.perf_counter() - start
        j, f = [], []
        for video in videos:
            folder = Path(tmp) / "out/predictions" / video.name
            predictions = np.stack([read_label_mask(p) for p in sorted(folder.glob("*.png"))])
            scores = score_sequence_arrays(video.name, video.labels, predictions)
            j += [s.j.mean() for s in scores]
            f += [s.f.mean() for s in scores]
    timed = sum(len(v.frames) for v in videos)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "policy": args.policy,
        "J&F": (np.mean(j) + np.mean(f)) / 2,
        "J": float(np.mean(j)),
        "F": float(np.mean(f)),
        "s_per_frame": seconds / timed,
        "peak_rss_mib": peak,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1200)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--capacity", type=int, default=10)
    parser.add_argument("--prototypes", type=int, default=8)
    parser.add_argument("--store", type=int, default=256)
    parser.add_argument("--selection", default="usage", choices=["usage", "random"])
    parser.add_argument("--policy", choices=POLICIES, help="internal: run one policy, print JSON")
    args = parser.parse_args()
    if args.policy:
        print(json.dumps(run_policy(args)))
        return
    print(
        f"{args.videos} videos x {args.frames} frames at {args.height}x{args.width}, "
        f"{args.objects} objects, shipped checkpoint, capacity {args.capacity} (mem_every 5), "
        f"long_term: {args.prototypes} prototypes per frame ({args.selection}), store {args.store}; "
        "segment job"
    )
    rows = {}
    for policy in POLICIES:
        command = [sys.executable, "-m", "benchmarks.long_video_policies", "--policy", policy]
        command += [f"--{k}={v}" for k, v in vars(args).items() if k != "policy"]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows[policy] = json.loads(out.strip().splitlines()[-1])
    print("| eviction | J&F | J | F | s/frame (job) | peak RSS (MiB) |\n|---|---|---|---|---|---|")
    for policy, r in rows.items():
        print(
            f"| {policy} | {r['J&F']:.3f} | {r['J']:.3f} | {r['F']:.3f} | "
            f"{r['s_per_frame'] * 1000:.1f} ms | {r['peak_rss_mib']:.0f} |"
        )
    ratio = rows["long_term"]["s_per_frame"] / rows["oldest"]["s_per_frame"]
    print(f"long_term / oldest time per frame: {ratio:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
