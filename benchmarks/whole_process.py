"""The whole process, ours vs the PyTorch reference: segmenting a video from disk as a user does.

The "P1 video": 23 generated frames at 480x854 (JPEG on disk) with 2 objects in the first mask,
the same random ResNet-50 STM weights on both sides. Ours is the segment job exactly as a user runs
it (`python main.py --config configs/segment.py` on the frames folder and the first mask, with the
weights converted once by the convert job); the reference is tests/torch_stm_reference.py running
the official STM protocol (memorise every 5th frame plus the previous one) on the same frames read
from disk, writing palette PNGs as the official code does. Each side is one fresh process per run;
both run on the machine's cores (2 here: XLA's thread pool, torch.set_num_threads(2)).

Each side reports: process start + imports, model load, compilation (ours: JAX's trace, lowering
and XLA compile events, on a cold and on a warm persistent cache), frame decoding and PNG writing
(ours does both on helper threads, overlapping the steps), and the per-frame step (median of frames
2.. , timed to completion). The speed-up is the median over `--pairs` alternating runs of the
reference's wall time over ours (warm cache, as every run after the first).

Run: python -m benchmarks.whole_process [--pairs 3] [--frames 23]   (full size: run it alone)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OBJECTS, MEM_EVERY = 2, 5


def _timer(totals: dict, key: str, fn):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

    return timed


def child_ours(report: Path, argv: list[str]) -> None:
    """The segment job via its real entry point, with timers around the phases."""
    t_start = time.time()
    import jax
    import jax.monitoring

    from stm_jax.inference import model_loading, stepper
    from stm_jax.io import images

    totals: dict = {"imports_done": time.time(), "steps": []}
    compile_events = ("/jax/core/compile/",)

    def on_event(name, seconds, **_):
        if name.startswith(compile_events):
            totals["compile"] = totals.get("compile", 0.0) + seconds

    jax.monitoring.register_event_duration_secs_listener(on_event)
    # Patched before the jobs import them by name.
    images.read_rgb = _timer(totals, "decode", images.read_rgb)
    images.write_palette_png = _timer(totals, "png", images.write_palette_png)
    model_loading.load_model = _timer(totals, "load", model_loading.load_model)
    init = stepper.Stepper.__init__

    def timed_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        step = self.step

        def timed_step(*a, **k):
            start = time.perf_counter()
            out = jax.block_until_ready(step(*a, **k))
            totals["steps"].append(time.perf_counter() - start)
            return out

        self.step = timed_step

    stepper.Stepper.__init__ = timed_init
    sys.argv = ["main.py", *argv]
    from stm_jax.entry import run

    try:
        run()
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    finally:
        totals["t_start"] = t_start
        report.write_text(json.dumps(totals))


def child_torch(report: Path, checkpoint: str, frames_dir: str, mask: str, out_dir: str) -> None:
    """The official protocol on tests/torch_stm_reference.py, frames from disk, PNGs out."""
    t_start = time.time()
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from tests.torch_stm_reference import STM

    totals: dict = {"imports_done": time.time(), "steps": [], "decode": 0.0, "png": 0.0}
    torch.set_num_threads(2)
    start = time.perf_counter()
    model = STM("resnet50", 128, 512, 256, 11)
    state = torch.load(checkpoint, map_location="cpu")
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    model.eval()
    totals["load"] = time.perf_counter() - start
    palette = Image.open(mask).getpalette()
    names = sorted(p.name for p in Path(frames_dir).glob("*.jpg"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def frame(t):
        start = time.perf_counter()
        image = np.asarray(Image.open(Path(frames_dir) / names[t]).convert("RGB"))
        totals["decode"] += time.perf_counter() - start
        return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]

    labels = np.asarray(Image.open(mask))
    probs = torch.eye(11)[torch.from_numpy(labels).long()].permute(2, 0, 1)[None]
    keys = values = None
    previous = frame(0)
    with torch.no_grad():
        for t in range(1, len(names)):
            current = frame(t)
            start = time.perf_counter()
            prev_key, prev_value = model.memorize(previous, probs, OBJECTS)
            if t == 1:
                this_keys, this_values = prev_key, prev_value
            else:
                this_keys = torch.cat([keys, prev_key], dim=3)
                this_values = torch.cat([values, prev_value], dim=3)
            logit = model.segment(current, this_keys, this_values, OBJECTS)
            probs = F.softmax(logit, dim=1)
            if (t - 1) % MEM_EVERY == 0:
                keys, values = this_keys, this_values
            labels = probs[0].argmax(0).numpy().astype(np.uint8)
            totals["steps"].append(time.perf_counter() - start)
            start = time.perf_counter()
            image = Image.fromarray(labels, mode="P")
            image.putpalette(palette)
            image.save(out / f"{Path(names[t]).stem}.png")
            totals["png"] += time.perf_counter() - start
            previous = current
    totals["t_start"] = t_start
    report.write_text(json.dumps(totals))


def prepare(work: Path, frames: int, height: int, width: int) -> dict:
    """The P1 video on disk, the random weights as an official-layout .pth and converted."""
    import numpy as np
    import torch
    from PIL import Image

    from stm_jax.io.images import write_palette_png
    from stm_jax.model.config import ModelConfig
    from tests.parity_utils import make_reference, random_video

    video, labels = random_video(frames, height, width, OBJECTS, seed=0)
    frames_dir = work / "p1"
    frames_dir.mkdir(parents=True)
    for t, image in enumerate(video):
        Image.fromarray(image).save(frames_dir / f"{t:05d}.jpg", quality=90)
    mask = work / "p1_00000.png"
    write_palette_png(mask, labels.astype(np.uint8))
    model, _ = make_reference(ModelConfig(), seed=0)
    pth = work / "random_stm.pth"
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, pth)
    converted = work / "weights"
    subprocess.run(
        [sys.executable, "main.py", "--config", "configs/convert.py", "--workdir", str(converted),
         f"--config.checkpoint={pth}"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    return {"frames": frames_dir, "mask": mask, "pth": pth, "converted": converted}


def run_side(side: str, paths: dict, work: Path, run_id: str, cache: Path) -> dict:
    report = work / f"report_{side}_{run_id}.json"
    if side == "ours":
        args = [
            "--config", "configs/segment.py", "--workdir", str(work / f"ours_{run_id}"),
            f"--config.checkpoint={paths['converted']}", "--config.data.layout=folder",
            f"--config.data.frames={paths['frames']}",
            f"--config.data.first_mask={paths['mask']}",
            f"--config.inference.compile_cache_dir={cache}",
        ]  # fmt: skip
    else:
        args = [str(paths["pth"]), str(paths["frames"]), str(paths["mask"]), str(work / run_id)]
    command = [sys.executable, "-m", "benchmarks.whole_process", "--child", side, str(report)]
    spawned = time.time()
    proc = subprocess.run(command + args, cwd=ROOT, capture_output=True, text=True, check=False)
    ended = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    r = json.loads(report.read_text())
    steps = r["steps"]
    phases = {
        "wall": ended - spawned,
        "start+imports": r["imports_done"] - spawned,
        "model load": r.get("load", 0.0),
        "compile": r.get("compile", 0.0),
        "frame decoding": r.get("decode", 0.0),
        "PNG writing": r.get("png", 0.0),
        "first step": steps[0],
        "step (median)": statistics.median(steps[1:]),
        "steps (sum)": sum(steps),
    }
    if side == "ours":
        line = next((x for x in proc.stdout.splitlines() if x.startswith("compute dtype")), "")
        phases["dtype line"] = line
    return phases


def main() -> None:
    if sys.argv[1:2] == ["--child"]:  # one side's process: --child SIDE REPORT ARGS...
        side, report, extra = sys.argv[2], Path(sys.argv[3]), sys.argv[4:]
        return child_ours(report, extra) if side == "ours" else child_torch(report, *extra)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=23)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="whole_process_") as tmp:
        work = Path(tmp)
        paths = prepare(work, args.frames, args.height, args.width)
        cache = work / "jax_cache"
        cold = run_side("ours", paths, work, "cold", cache)
        runs = {"ours": [], "pytorch": []}
        for i in range(args.pairs):
            order = ("ours", "pytorch") if i % 2 == 0 else ("pytorch", "ours")
            for side in order:
                runs[side].append(run_side(side, paths, work, f"{side}{i}", cache))
    print(
        f"P1 video: {args.frames} frames {args.height}x{args.width} (JPEG), {OBJECTS} objects, "
        f"resnet50 random weights; pytorch float32, ours its default dtype (below); "
        f"{os.cpu_count()} cores; median of "
        f"{args.pairs} alternating pair(s); ours with a warm compile cache (cold: separate column)"
    )
    print(cold.get("dtype line", ""))
    keys = [k for k in cold if k != "dtype line"]
    print(f"  {'seconds':16s} {'ours (cold)':>12s} {'ours':>9s} {'pytorch':>9s}")
    for key in keys:
        ours = statistics.median(r[key] for r in runs["ours"])
        torch_ = statistics.median(r[key] for r in runs["pytorch"])
        print(f"  {key:16s} {cold[key]:12.2f} {ours:9.2f} {torch_:9.2f}")
    ratio = statistics.median(t["wall"] / o["wall"] for o, t in zip(runs["ours"], runs["pytorch"]))
    step_ratio = statistics.median(
        t["step (median)"] / o["step (median)"] for o, t in zip(runs["ours"], runs["pytorch"])
    )
    print(f"whole process speed-up (pytorch wall / ours wall, warm cache): {ratio:.2f}x")
    print(f"per-frame step speed-up alone: {step_ratio:.2f}x")


if __name__ == "__main__":
    main()
