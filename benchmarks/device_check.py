"""One-shot device check: inference, training and bfloat16 numbers of one GPU/TPU in one table.

Run on a lent machine (installs nothing itself; `device_check.sh` first installs wheels it is given):
    bash benchmarks/device_check.sh [--wheels DIR] [--time-limit 480]
CPU dry run at a tiny size (CI runs it): bash benchmarks/device_check.sh --dry-run

Rows, in this order, each printed as soon as it is measured (a timeout leaves the rows before it):
  * inference: frames/s of the per-frame step at 480x854 with 2 objects (ResNet-50, random weights,
    16+ frames in memory): float32, bfloat16, and bfloat16 with 4 and 16 videos per step
    (`benchmarks.accelerator.run_row`); TFLOP/s against the device's bf16 peak; XLA's count of the
    step's memory and the allocator's peak so far;
  * agreement: label agreement of bfloat16 with float32 (and J&F of both) with the shipped
    checkpoint on generated videos (`benchmarks.bf16_accuracy`; no trained ResNet-50 is at hand);
  * train: clips/s of our data-parallel train step at 384x384 (3-frame clips, 2 objects, ResNet-50,
    bfloat16) with batch 4 and 8, and of the PyTorch reference step (`tests/torch_stm_reference.py`,
    the official structure, one clip after the other as the official training does, bfloat16
    autocast) on the same device and clips; the ratio ours / PyTorch.
Each part runs in its own process, one after the other, so PyTorch and JAX never share the
device's memory; a part still running at --time-limit seconds is stopped and one that would
start after it is skipped, each reported as a row. Exit code 1 if a part failed or timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The cheap agreement part before the two training parts, so a slow compilation loses the least.
PARTS = ("inference", "agreement", "train", "torch")

FULL = dict(
    height=480,
    width=854,
    model="resnet50",
    batches="4,16",
    frames=10,
    warmup=2,
    memory_frames=16,
    train_size=384,
    train_backbone="resnet50",
    train_batches=(4, 8),
    train_steps=10,
    train_warmup=2,
    agreement=dict(videos=16, frames=24, height=64, width=96),
)
DRY = dict(
    FULL,
    height=48,
    width=64,
    model="tiny",
    frames=2,
    warmup=1,
    memory_frames=3,
    train_size=32,
    train_backbone="tiny",
    train_batches=(2,),  # one compilation of the train step: CI time
    train_steps=1,
    train_warmup=0,
    # tests/test_bf16.py's videos: with the test cache its programs are compiled already
    agreement=dict(videos=3, frames=8, height=64, width=96),
)
COLUMNS = (
    "part",
    "setting",
    "rate",
    "ms/step",
    "TFLOP/s",
    "% of peak",
    "XLA GiB",
    "device peak GiB",
    "compile s",
    "notes",
)


def emit(**row) -> None:
    """One measured row, for the parent to print (a child's stdout carries only these)."""
    print("ROW " + json.dumps(row), flush=True)


def _device_peak_gib():
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def inference_part(sizes: dict) -> None:
    import jax

    describe_device(sizes)
    from benchmarks import accelerator
    from stm_jax.model.family import init_variables

    args = argparse.Namespace(
        **{k: sizes[k] for k in ("height", "width", "frames", "warmup", "memory_frames")},
        chunk_frames=4,
    )
    model_config = accelerator.MODELS[sizes["model"]]
    variables = jax.device_put(init_variables(jax.random.key(0), model_config))
    peak = accelerator.device_peak(jax.devices()[0], 0.0)
    cost = accelerator.read_cost_model(
        model_config, variables, args.height, args.width, args.chunk_frames
    )
    rows = [("float32", 1), ("bfloat16", 1)]
    rows += [("bfloat16", int(b)) for b in sizes["batches"].split(",")]
    for dtype, videos in rows:
        setting = f"{args.height}x{args.width}, 2 objects, {dtype}, {videos} video(s)/step"
        try:
            r = accelerator.run_row(model_config, dtype, videos, args, variables, cost)
        except Exception as error:  # only running out of device memory is expected
            if not accelerator.out_of_memory(error):
                raise
            emit(part="inference", setting=setting, notes="out of device memory")
            jax.clear_caches()
            continue
        emit(
            part="inference",
            setting=setting,
            rate=f"{r['fps']:.2f} frames/s",
            ms=r["ms"],
            tflops=r["tflops"],
            share=100 * r["tflops"] / peak if peak else None,
            xla_gib=r["xla_gib"],
            peak_gib=_device_peak_gib(),
            compile_s=r["compile_s"],
            notes=f"{r['gflop_per_frame']:.1f} GFLOP/frame, {r['memory_frames']} frames in memory",
        )
        jax.clear_caches()


def _train_setting(sizes, batch) -> str:
    size = sizes["train_size"]
    return f"{size}x{size}, 3 frames, 2 objects, {sizes['train_backbone']}, bf16, batch {batch}"


def train_part(sizes: dict) -> None:
    """Our train step (bfloat16) for each batch of sizes['train_batches']."""
    import jax

    from benchmarks import accelerator
    from benchmarks.train_step import make_batch
    from stm_jax.inference.step_memory import compiled_bytes
    from stm_jax.model.config import ModelConfig
    from stm_jax.training import step as step_lib
    from stm_jax.training.defaults import default_train_config
    from stm_jax.training.init import initial_variables

    config = ModelConfig(backbone=sizes["train_backbone"], max_objects=10, dtype="bfloat16")
    train = default_train_config()
    variables, _ = initial_variables(config, "", 0)
    mesh = step_lib.make_mesh(jax.devices()[:1])
    peak = accelerator.device_peak(jax.devices()[0], 0.0)
    for batch_size in sizes["train_batches"]:
        setting = _train_setting(sizes, batch_size)
        state = step_lib.replicate(step_lib.init_train_state(variables["params"], train, 0), mesh)
        stats = step_lib.replicate(variables["batch_stats"], mesh)
        batch = jax.device_put(make_batch(batch_size, sizes["train_size"], 2))
        try:
            start = time.perf_counter()
            compiled = step_lib.make_train_step(mesh, config, train).lower(state, stats, batch)
            compiled = compiled.compile()
            compile_s = time.perf_counter() - start
            for _ in range(sizes["train_warmup"]):
                state, metrics = compiled(state, stats, batch)
            jax.block_until_ready(state)
            start = time.perf_counter()
            for _ in range(sizes["train_steps"]):
                state, metrics = compiled(state, stats, batch)
            jax.block_until_ready(state)
        except Exception as error:
            if not accelerator.out_of_memory(error):
                raise
            emit(part="train", setting=f"ours, {setting}", notes="out of device memory")
            continue
        seconds = (time.perf_counter() - start) / sizes["train_steps"]
        tflops = accelerator.flops(compiled) / seconds / 1e12
        emit(
            part="train",
            setting=f"ours, {setting}",
            rate=f"{batch_size / seconds:.2f} clips/s",
            clips_per_s=batch_size / seconds,
            batch=batch_size,
            ms=seconds * 1e3,
            tflops=tflops,
            share=100 * tflops / peak if peak else None,
            xla_gib=compiled_bytes(compiled) / 2**30,
            peak_gib=_device_peak_gib(),
            compile_s=compile_s,
            notes=f"loss {float(metrics['loss']):.3f}",
        )
        del state, stats, compiled
        jax.clear_caches()


def torch_part(sizes: dict) -> None:
    """The PyTorch reference step on the same clips, one clip after the other, bf16 autocast."""
    import torch

    from benchmarks.train_step import make_batch, torch_clip, torch_clip_loss
    from tests.torch_stm_reference import STM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = STM(backbone=sizes["train_backbone"], num_slots=11).to(device)
    model.eval()  # frozen BN; every parameter still trained
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for batch_size in sizes["train_batches"]:
        batch = make_batch(batch_size, sizes["train_size"], 2)
        clips = [torch_clip(batch, i, 11, device) for i in range(batch_size)]

        def step(clips=clips):
            optimizer.zero_grad()
            for clip in clips:
                with torch.autocast(device, dtype=torch.bfloat16):
                    loss = torch_clip_loss(model, *clip) / len(clips)
                loss.backward()
            optimizer.step()
            return loss

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(sizes["train_warmup"]):
            step()
        sync()
        start = time.perf_counter()
        for _ in range(sizes["train_steps"]):
            loss = step()
        sync()
        seconds = (time.perf_counter() - start) / sizes["train_steps"]
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        emit(
            part="train",
            setting=f"PyTorch reference, {_train_setting(sizes, batch_size)}",
            rate=f"{batch_size / seconds:.2f} clips/s",
            torch_clips_per_s=batch_size / seconds,
            batch=batch_size,
            ms=seconds * 1e3,
            peak_gib=peak,
            notes=f"torch {torch.__version__} on {device}; loss {float(loss) * batch_size:.3f}",
        )


def agreement_part(sizes: dict) -> None:
    from benchmarks.bf16_accuracy import measure

    a = sizes["agreement"]
    start = time.perf_counter()
    result = measure(a["videos"], a["frames"], a["height"], a["width"])
    emit(
        part="agreement",
        setting=(
            f"bf16 vs float32 labels, shipped checkpoint, {a['videos']} generated videos x "
            f"{a['frames']} frames, {a['height']}x{a['width']}"
        ),
        rate=f"{100 * result['agreement']:.3f} % of pixels",
        notes=(
            f"J&F float32 {result['jf_float32']:.4f}, bf16 {result['jf_bfloat16']:.4f}; "
            f"{time.perf_counter() - start:.0f} s"
        ),
    )


def _cell(value, digits=2) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_row(row: dict) -> str:
    cells = [
        row.get("part"),
        row.get("setting"),
        row.get("rate"),
        _cell(row.get("ms"), 1),
        _cell(row.get("tflops"), 3),
        _cell(row.get("share"), 1),
        _cell(row.get("xla_gib"), 3),
        _cell(row.get("peak_gib"), 3),
        _cell(row.get("compile_s"), 1),
        row.get("notes"),
    ]
    return "| " + " | ".join(c or "" for c in cells) + " |"


def describe_device(sizes: dict) -> None:
    """The line above the table: the device, its memory for JAX, its bf16 peak, versions."""
    import jax

    from benchmarks.accelerator import device_peak

    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    memory = f"{limit / 2**30:.1f} GiB for JAX" if limit else "memory size not reported"
    dry = " (dry run, tiny sizes)" if sizes is DRY else ""
    print(
        f"INFO device check{dry}: {device.platform} ({device.device_kind}), {memory}, bf16 peak "
        f"{device_peak(device, 0.0) or 'unknown'} TFLOP/s; jax {jax.__version__}",
        flush=True,
    )


def print_row(row: dict, rows: list) -> None:
    """Prints a row (the table's header before the first) and keeps it in `rows`."""
    if not rows:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
    rows.append(row)
    print(format_row(row), flush=True)


def run_part(part: str, dry_run: bool, timeout: float, rows: list) -> str:
    """Runs one part in a child process, printing its rows as they arrive; returns how it ended."""
    command = [sys.executable, "-m", "benchmarks.device_check", "--part", part]
    command += ["--dry-run"] if dry_run else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(timeout, child.kill)
    timer.start()
    try:
        for line in child.stdout:
            if line.startswith("ROW "):
                row = json.loads(line[4:])
                print_row(row, rows)
            elif line.startswith("INFO "):
                print(line[5:], end="", flush=True)
        child.wait()
    finally:
        timer.cancel()
    if child.returncode == 0:
        return "done"
    return "timed out" if child.returncode < 0 else f"failed (exit {child.returncode})"


def ratio_rows(rows: list) -> list[dict]:
    ours = {r["batch"]: r["clips_per_s"] for r in rows if "clips_per_s" in r}
    theirs = {r["batch"]: r["torch_clips_per_s"] for r in rows if "torch_clips_per_s" in r}
    return [
        dict(
            part="train",
            setting=f"ours / PyTorch reference, batch {batch}",
            rate=f"{ours[batch] / theirs[batch]:.2f}x",
        )
        for batch in sorted(set(ours) & set(theirs))
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes (runs on a CPU)")
    parser.add_argument("--time-limit", type=float, default=480.0, help="seconds for all parts")
    parser.add_argument("--parts", default=",".join(PARTS), help="a subset of " + ",".join(PARTS))
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = DRY if args.dry_run else FULL
    if args.part:
        globals()[f"{args.part}_part"](sizes)
        return 0
    start = time.perf_counter()
    # The parent never touches the device (JAX would take its memory from the children): the
    # inference child describes it (an INFO line) before its rows.
    rows: list[dict] = []
    failed = False
    for part in args.parts.split(","):
        left = args.time_limit - (time.perf_counter() - start)
        if left < 10:
            print_row(dict(part=part, notes="skipped: time limit reached"), rows)
            continue
        ended = run_part(part, args.dry_run, left, rows)
        if ended != "done":
            failed = True
            print_row(dict(part=part, notes=ended), rows)
    for row in ratio_rows(rows):
        print_row(row, rows)
    print(f"total {time.perf_counter() - start:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
