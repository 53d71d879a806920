"""The exported step (configs/export.py) against the segment job: artifact size, frames/s on this host.

Run: python -m benchmarks.exported_step [--height 240 --width 432 --frames 40 --repeats 3]
     [--checkpoint DIR | --random-resnet50]
On one generated video (PNG frames, 2 objects) with the shipped checkpoint (or a ResNet-50 of
random weights saved as a checkpoint, for the size and speed of the official architecture), it
exports the step for cpu, cuda and tpu, then alternates, --repeats times:
  * the runner (run_exported.py: jax, numpy, pillow) in a fresh process: its own frames/s over
    frames 2.. (after the first step compiled), and the process's wall time;
  * the segment job (`python main.py --config configs/segment.py`) in a fresh process: its wall
    time, and its frames/s over a second segmentation in that process (compiled step reused;
    includes loading the weights and checking the inputs).
Both write every mask as a PNG. Prints medians and `uptime` (the load during the run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_video(folder: Path, frames: int, height: int, width: int) -> None:
    from stm_jax.data.synthetic import make_synthetic_video
    from stm_jax.io.images import write_palette_png, write_rgb

    video = make_synthetic_video(3, frames, height, width, 2)
    for index, frame in enumerate(video.frames):
        write_rgb(folder / "frames" / f"{index:05d}.png", frame)
    write_palette_png(folder / "first_mask.png", video.labels[0])


def random_resnet50(out_dir: Path) -> Path:
    """A ResNet-50 STM of random weights saved as a stm_jax checkpoint (what convert writes)."""
    import jax

    from stm_jax.jobs.convert import save_converted
    from stm_jax.model.config import ModelConfig
    from stm_jax.model.family import init_variables

    config = ModelConfig()
    variables = jax.tree.map(lambda x: jax.device_get(x), init_variables(jax.random.key(0), config))
    meta = {"model": config.to_dict(), "step": 0, "score": None}
    save_converted(out_dir, variables, meta)
    return out_dir


def child(args) -> None:
    """In a fresh process: the segment job twice; prints its second run's frames/s."""
    from configs import segment
    from stm_jax.jobs import segment as segment_job

    config = segment.get_config()
    config.checkpoint = args.checkpoint
    config.data.update(frames=f"{args.video}/frames", first_mask=f"{args.video}/first_mask.png")
    config.inference.compile_cache = False
    segment_job.segment_videos(config, f"{args.work}/first")
    start = time.perf_counter()
    segment_job.segment_videos(config, f"{args.work}/second")
    print("JOB_FPS", args.frames / (time.perf_counter() - start))


def timed(command) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=432)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", default="", help="default: the shipped checkpoint")
    parser.add_argument("--random-resnet50", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", dest="work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    from configs import export
    from stm_jax.jobs import export as export_job
    from stm_jax.jobs.demo import SHIPPED_CHECKPOINT

    tmp = Path(tempfile.mkdtemp(prefix="stm_exported_"))
    write_video(tmp / "video", args.frames, args.height, args.width)
    checkpoint = args.checkpoint or str(SHIPPED_CHECKPOINT)
    if args.random_resnet50:
        checkpoint = str(random_resnet50(tmp / "resnet50"))
    config = export.get_config()
    config.checkpoint = checkpoint
    config.export.update(height=args.height, width=args.width, objects=2)
    start = time.perf_counter()
    export_job.run(config, str(tmp / "artifact"))
    export_s = time.perf_counter() - start
    contract = json.loads((tmp / "artifact" / "contract.json").read_text())
    sizes = {p.name: p.stat().st_size for p in (tmp / "artifact").iterdir()}
    runner, job = {"fps": [], "wall": []}, {"fps": [], "wall": []}
    video = str(tmp / "video")
    for repeat in range(args.repeats):
        wall, out = timed(
            [sys.executable, str(tmp / "artifact" / "run_exported.py"), str(tmp / "artifact")]
            + [f"{video}/frames", f"{video}/first_mask.png", str(tmp / f"runner{repeat}")]
        )
        runner["wall"].append(wall)
        runner["fps"].append(float(out.split("; ")[-1].split()[0]))
        wall, out = timed(
            [sys.executable, "-m", "benchmarks.exported_step", "--child", "--video", video]
            + ["--work-dir", str(tmp / f"job{repeat}"), "--checkpoint", checkpoint]
            + ["--frames", str(args.frames)]
        )
        job["wall"].append(wall)
        job["fps"].append(float(out.split("JOB_FPS")[-1].split()[0]))
    median = statistics.median
    model = contract["model"]["backbone"]
    print(
        f"{args.frames} frames of {args.height}x{args.width}, 2 objects, {model} "
        f"({checkpoint}), platforms {', '.join(contract['platforms'])}; export {export_s:.1f} s"
    )
    print("artifact: " + ", ".join(f"{n} {s / 2**20:.2f} MiB" for n, s in sorted(sizes.items())))
    print(f"artifact total: {sum(sizes.values()) / 2**20:.2f} MiB")
    print("| | frames/s (frames 2.., median) | process wall s (median) | runs |")
    print("|---|---|---|---|")
    for name, r in (("runner (jax, numpy, pillow)", runner), ("segment job", job)):
        fps = ", ".join(f"{x:.1f}" for x in r["fps"])
        print(f"| {name} | {median(r['fps']):.2f} | {median(r['wall']):.2f} | {fps} |")
    print(f"runner / job frames/s: {median(runner['fps']) / median(job['fps']):.2f}")
    print("uptime:" + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
