"""The evaluate job's throughput: videos per step, host-pipeline overhead, warm compilation cache.

Run: python -m benchmarks.evaluate_throughput [--videos 8 --frames 24 --height 64 --width 96]
On generated DAVIS-layout videos with the shipped checkpoint, for videos_per_step in --batches:
  * a fresh process with an empty compilation cache runs the job (segment + score) once (its time
    includes compilation), then the segmentation --repeats times (the steady state; median);
  * the steady-state segmentation's wall time (weights loaded, inputs checked, every PNG written)
    is compared with the sum of its compiled steps (the same steps replayed on decoded frames,
    each waited for: the device time the job needs; median of --repeats replays);
  * a second fresh process with the now warm cache runs the job once: its first-run time against
    the cold first run shows what the persistent cache saves.
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


class TimedStepper:
    """Wraps a Stepper: every call waited for, its duration summed."""

    def __init__(self, stepper):
        self.stepper, self.seconds, self.num_slots = stepper, 0.0, stepper.num_slots

    def empty(self, *args):
        return self.stepper.empty(*args)

    def _timed(self, name):
        import jax

        def call(*args):
            start = time.perf_counter()
            out = jax.block_until_ready(getattr(self.stepper, name)(*args))
            self.seconds += time.perf_counter() - start
            return out

        return call

    def __getattr__(self, name):
        return self._timed(name)


def child(args) -> dict:
    from configs import davis2017_val
    from stm_jax.inference.compile_cache import enable_compile_cache
    from stm_jax.inference.model_loading import load_model
    from stm_jax.inference.scheduler import segment_tasks
    from stm_jax.inference.settings import make_stepper
    from stm_jax.jobs import segment
    from stm_jax.jobs.demo import SHIPPED_CHECKPOINT
    from stm_jax.jobs.evaluate import evaluate_davis

    enable_compile_cache(args.cache)
    config = davis2017_val.get_config()
    config.checkpoint = str(SHIPPED_CHECKPOINT)
    config.data.root = args.root
    config.memory.update(dict(mem_every=3, capacity=12))
    config.inference.videos_per_step = args.batch
    config.inference.compile_cache_dir = args.cache
    work = Path(args.work)
    timings = {}
    start = time.perf_counter()
    evaluate_davis(config, str(work / "job"))  # in a fresh process: includes compilation
    timings["job"] = time.perf_counter() - start
    if args.repeats == 0:  # the warm-cache process: only the first job matters
        return timings
    segments = []
    for run in range(args.repeats):
        start = time.perf_counter()
        segment.segment_videos(config, str(work / f"segment{run}"))
        segments.append(time.perf_counter() - start)
    timings["segment"] = statistics.median(segments)
    # The compiled steps alone, on frames decoded beforehand, each waited for.
    loads = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model_config, variables = load_model(config)
        loads.append(time.perf_counter() - start)
    timings["load"] = statistics.median(loads)
    stepper = TimedStepper(make_stepper(config, model_config))
    tasks = [segment.video_task(v, 3, False) for v in segment.list_videos(config)]
    for task in tasks:
        task.frames = [load() for load in task.frames]
    steps = []
    for _ in range(args.repeats + 1):  # the first pass compiles (if a shape was not seen yet)
        stepper.seconds = 0.0
        for _ in segment_tasks(stepper, variables, tasks, args.batch):
            pass
        steps.append(stepper.seconds)
    timings["steps"] = statistics.median(steps[1:])
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument(
        "--repeats", type=int, default=3, help="steady-state runs; their median is reported"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--root", "--cache", "--work"):  # the child process's
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    from stm_jax.data.synthetic import write_synthetic_davis

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = write_synthetic_davis(
            tmp / "davis",
            num_train=0,
            num_val=args.videos,
            seed=7,
            num_frames=args.frames,
            height=args.height,
            width=args.width,
            num_objects=(1, 3),
        )
        frames = args.videos * args.frames
        print(
            f"evaluate job, {args.videos} generated videos x {args.frames} frames at "
            f"{args.height}x{args.width}, shipped checkpoint (tiny backbone), float32"
        )
        print(
            "| videos/step | frames/s (steady) | segment wall s | of which loading weights s "
            "| sum of steps s | overhead | overhead without loading "
            "| job s, cold cache | job s, warm cache (new process) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for batch in [int(b) for b in args.batches.split(",")]:
            cache = tmp / f"cache{batch}"
            results = []
            for repeats in (args.repeats, 0):
                command = [sys.executable, "-m", "benchmarks.evaluate_throughput", "--child"]
                command += [f"--root={root}", f"--cache={cache}", f"--batch={batch}"]
                command += [f"--work={tmp / f'w{batch}_{repeats}'}", f"--repeats={repeats}"]
                out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
                if out.returncode:
                    raise SystemExit(out.stderr)
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            cold, warm = results
            wall, steps, load = cold["segment"], cold["steps"], cold["load"]
            print(
                f"| {batch} | {frames / wall:.1f} | {wall:.2f} | {load:.2f} | {steps:.2f} | "
                f"{100 * (wall / steps - 1):+.0f} % | {100 * ((wall - load) / steps - 1):+.0f} % | "
                f"{cold['job']:.1f} | {warm['job']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
