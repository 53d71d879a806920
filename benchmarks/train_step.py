"""Training-step throughput on CPU: our jitted JAX step vs a PyTorch reference step of the same STM.

Both do one full STM training update on 3-frame clips at SIZE x SIZE: memorise frame 1 with its
ground truth, segment frame 2, memorise its (detached) soft output, segment frame 3, cross-entropy on
the soft-aggregated logits of frames 2 and 3, backward, Adam. Frozen BN in both. PyTorch uses the
reference model of `tests/torch_stm_reference.py` (the official structure, batch 1 per clip as in
Training-Code-of-STM); ours runs `stm_jax.training.step` with batch `--batch`.

Run:
  python benchmarks/train_step.py [--size 384] [--backbone resnet50] [--objects 2] [--steps 5]
      [--remat ,encoders] [--fit] [--no-torch]
Prints clips/s of both and the ratio (ours / PyTorch). Each side first runs `--warmup` untimed steps:
the first few steps of both run slower while their allocators' caches fill.

Peak memory: every side (ours once per `--remat` mode, then PyTorch) runs in its own subprocess.
"peak RSS" is the process's peak RSS during the timed steps (high-water mark reset after warm-up,
`peak_memory.reset_peak`) minus its RSS after imports: parameters, optimizer state, gradients and
activations, without the libraries themselves and, for ours, without what compiling left resident
(the compiled program; measured after `malloc_trim` and printed). For ours also "XLA": the compiled step's own
`memory_analysis()` (arguments + outputs + temporaries - donated aliases), the number that carries
over to an accelerator. `--fit` also compiles ours at batch 1 and 2 and estimates the batch that fits
in 16/24/80 GiB (`peak_memory.batch_fit`).

The memory allocator matters on CPU, for both sides: glibc returns XLA's per-step temporary buffer
(2.1 GB here) to the OS and page-faults it back in 4 KB pages every step (~0.5 s), and PyTorch's large
tensors cost it too. Compare with transparent huge pages for malloc (glibc >= 2.35) or under tcmalloc
(Debian/Ubuntu package libtcmalloc-minimal4); either applies to both sides:
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python benchmarks/train_step.py
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/train_step.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import peak_memory  # noqa: E402
from stm_jax.model.config import ModelConfig  # noqa: E402
from stm_jax.training import step as step_lib  # noqa: E402
from stm_jax.training.defaults import default_train_config  # noqa: E402
from stm_jax.training.init import initial_variables  # noqa: E402


def make_batch(batch: int, size: int, objects: int, seed: int = 0) -> dict:
    """Random frames with moving square objects, in the pipeline's layout."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, 3, size, size), np.int32)
    for b in range(batch):
        for k in range(1, objects + 1):
            y, x = rng.integers(0, size // 2, 2)
            for t in range(3):
                labels[b, t, y + 8 * t : y + size // 3 + 8 * t, x : x + size // 3] = k
    return {
        "frames": rng.integers(0, 256, (batch, 3, size, size, 3), dtype=np.uint8),
        "labels": labels,
        "void": np.zeros(labels.shape, bool),
        "masks": (labels[..., None] == np.arange(objects + 1)).astype(np.float32),
        "object_valid": np.ones((batch, objects), bool),
    }


def allocator() -> str:
    """The malloc this process runs with (an LD_PRELOADed tcmalloc/jemalloc shows in its maps)."""
    maps = Path("/proc/self/maps")
    text = maps.read_text() if maps.exists() else ""
    for name in ("tcmalloc", "jemalloc", "mimalloc"):
        if name in text:
            return name
    tunables = os.environ.get("GLIBC_TUNABLES")
    return f"glibc malloc ({tunables})" if tunables else "glibc malloc"


def _timed_steps(run_step, steps: int, warmup: int, finish=lambda: None) -> dict:
    """Warm-up steps, then `steps` timed ones with the RSS high-water mark reset before them."""
    for _ in range(warmup):
        run_step()
    finish()
    reset = peak_memory.reset_peak()
    start = time.perf_counter()
    for _ in range(steps):
        run_step()
    finish()
    return {
        "seconds": (time.perf_counter() - start) / steps,
        "peak_rss_mib": peak_memory.peak_rss_mib(),
        "peak_reset": reset,
    }


def time_jax(
    config: ModelConfig, batch: dict, steps: int, warmup: int, remat: str = "", fit: bool = False
) -> dict:
    """Our step: seconds per step, peak RSS, XLA's bytes (and at batch 1 and 2 with `fit`)."""
    jax.devices()  # the backend's own memory belongs to the baseline
    peak_memory.trim()
    base = peak_memory.current_rss_mib()
    train = default_train_config()
    train.remat = remat
    variables, _ = initial_variables(config, "", 0)
    mesh = step_lib.make_mesh(jax.devices()[:1])
    state = step_lib.replicate(step_lib.init_train_state(variables["params"], train, 0), mesh)
    stats = step_lib.replicate(variables["batch_stats"], mesh)
    del variables  # the step's copies are the only ones, as in training
    fn = step_lib.make_train_step(mesh, config, train)
    peak_memory.trim()
    before_compile = peak_memory.current_rss_mib()
    start = time.perf_counter()
    compiled = fn.lower(state, stats, batch).compile()
    xla = peak_memory.xla_bytes(compiled)
    peak_memory.trim()
    program = peak_memory.current_rss_mib() - before_compile  # compiled code, compiler leftovers
    state, metrics = compiled(state, stats, batch)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - start
    holder = {"state": state}

    def run_step():
        holder["state"], holder["metrics"] = compiled(holder["state"], stats, batch)

    result = _timed_steps(run_step, steps, warmup, lambda: jax.block_until_ready(holder["state"]))
    result.update(first=first, xla=xla, program_mib=program)
    result["peak_rss_mib"] -= base + program
    if fit:
        sizes = batch["frames"].shape[2]
        objects = batch["object_valid"].shape[1]
        result["xla_by_batch"] = {
            b: xla["total"]
            if b == batch["frames"].shape[0]
            else peak_memory.xla_bytes(
                fn.lower(holder["state"], stats, make_batch(b, sizes, objects)).compile()
            )["total"]
            for b in (1, 2)
        }
    return result


def torch_clip(batch: dict, index: int, num_slots: int, device="cpu") -> tuple:
    """Clip `index` of a batch as the PyTorch reference takes it: (frames [3, 3, H, W] in [0, 1],
    masks [3, K, H, W], labels [3, H, W], number of objects), on `device`."""
    import torch

    frames = torch.from_numpy(batch["frames"][index]).float().div(255).permute(0, 3, 1, 2)
    masks = torch.from_numpy(batch["masks"][index]).permute(0, 3, 1, 2)  # [T, O+1, H, W]
    labels = torch.from_numpy(batch["labels"][index]).long()
    objects = masks.shape[1] - 1
    full = torch.zeros(3, num_slots, *masks.shape[2:])
    full[:, : objects + 1] = masks
    return frames.to(device), full.to(device), labels.to(device), objects


def torch_clip_loss(model, frames, full, labels, objects):
    """The reference's training loss of one 3-frame clip: frame 1 memorised with its ground
    truth, frame 2 segmented and memorised with its detached soft output, frame 3 segmented;
    cross-entropy of frames 2 and 3."""
    import torch
    import torch.nn.functional as F

    keys, values = model.memorize(frames[0:1], full[0:1], objects)
    logit1 = model.segment(frames[1:2], keys, values, objects)
    probs = F.softmax(logit1, dim=1).detach()
    k1, v1 = model.memorize(frames[1:2], probs, objects)
    keys, values = torch.cat([keys, k1], dim=3), torch.cat([values, v1], dim=3)
    logit2 = model.segment(frames[2:3], keys, values, objects)
    return F.cross_entropy(logit1, labels[1:2]) + F.cross_entropy(logit2, labels[2:3])


def time_torch(backbone: str, num_slots: int, batch: dict, steps: int, warmup: int) -> dict:
    """The PyTorch reference step on one clip (batch element 0): seconds per step, peak RSS."""
    import torch

    from tests.torch_stm_reference import STM

    peak_memory.trim()
    base = peak_memory.current_rss_mib()
    torch.manual_seed(0)
    model = STM(backbone=backbone, num_slots=num_slots)
    model.eval()  # frozen BN; all parameters still trained
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    clip = torch_clip(batch, 0, num_slots)

    def one_step():
        optimizer.zero_grad()
        torch_clip_loss(model, *clip).backward()
        optimizer.step()

    result = _timed_steps(one_step, steps, 1 + warmup)
    result["peak_rss_mib"] -= base
    return result


def _side_args(args, side: str, remat: str = "") -> list[str]:
    keep = ["--size", "--backbone", "--objects", "--batch", "--steps", "--warmup", "--threads"]
    out = [sys.executable, __file__, "--side", side, "--remat", remat]
    for flag in keep:
        out += [flag, str(getattr(args, flag[2:]))]
    return out + (["--fit"] if args.fit else [])


def _run_side(args, side: str, remat: str = "") -> dict:
    """Runs one side in a fresh subprocess (its own RSS) and returns its result line."""
    proc = subprocess.run(_side_args(args, side, remat), capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"{side} (remat={remat!r}) failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(lines[-1][len("RESULT ") :])


def _side(args, config: ModelConfig) -> None:
    """The `--side` subprocess: one measurement, printed as a RESULT json line."""
    import torch

    torch.set_num_threads(args.threads or os.cpu_count())
    batch = make_batch(args.batch, args.size, args.objects)
    if args.side == "jax":
        result = time_jax(config, batch, args.steps, args.warmup, args.remat, args.fit)
    else:
        result = time_torch(args.backbone, config.num_slots, batch, args.steps, args.warmup)
    print("RESULT " + json.dumps(result))


def _report(args, ours: dict, theirs: dict | None) -> None:
    mib = peak_memory.MIB
    print(
        f"train step, {args.backbone} {args.size}x{args.size}, 3 frames, {args.objects} objects, "
        f"{os.cpu_count()} CPU cores, {allocator()}"
    )
    for remat, r in ours.items():
        x = r["xla"]
        print(
            f"  JAX (ours, remat={remat or 'off'!r}): {args.batch / r['seconds']:.3f} clips/s "
            f"({r['seconds']:.2f} s/step, batch {args.batch}; compile+first {r['first']:.1f} s); "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB (without the compiled program's "
            f"{r['program_mib']:.0f}); XLA {x['total'] / mib:.0f} MiB "
            f"(temp {x['temp'] / mib:.0f}, arguments {x['argument'] / mib:.0f})"
        )
    if theirs is not None:
        print(
            f"  PyTorch ref: {1 / theirs['seconds']:.3f} clips/s ({theirs['seconds']:.2f} s/step, "
            f"batch 1); peak RSS {theirs['peak_rss_mib']:.0f} MiB"
        )
    if not all(r["peak_reset"] for r in [*ours.values(), *([theirs] if theirs else [])]):
        print("  (peak RSS could not be reset after warm-up: whole-process peaks)")
    off = ours.get("")
    if theirs is not None and off is not None:
        print(f"  ratio ours/PyTorch: {args.batch / off['seconds'] * theirs['seconds']:.2f}x speed")
        if args.batch == 1:
            print(
                f"  peak memory ours/PyTorch (RSS): {off['peak_rss_mib'] / theirs['peak_rss_mib']:.2f}"
                f"; ours' XLA bytes / PyTorch RSS: "
                f"{off['xla']['total'] / mib / theirs['peak_rss_mib']:.2f}"
            )
    for remat, r in ours.items():
        if remat and off is not None:
            print(
                f"  remat={remat!r} vs off: XLA bytes {r['xla']['total'] / off['xla']['total']:.2f}x, "
                f"peak RSS {r['peak_rss_mib'] / off['peak_rss_mib']:.2f}x, "
                f"step time {r['seconds'] / off['seconds']:.2f}x"
            )
    for remat, r in ours.items():
        if "xla_by_batch" in r:
            b1, b2 = r["xla_by_batch"]["1"], r["xla_by_batch"]["2"]
            fits = ", ".join(
                f"{gib} GiB: {peak_memory.batch_fit(b1, b2, gib)}" for gib in (16, 24, 80)
            )
            print(
                f"  fit (remat={remat or 'off'!r}): XLA per clip {(b2 - b1) / mib:.0f} MiB, fixed "
                f"{(2 * b1 - b2) / mib:.0f} MiB -> batch per device with 10% kept free: {fits}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = cpu count)")
    parser.add_argument(
        "--remat", default=",encoders", help="comma-separated train.remat modes to run ('' = off)"
    )
    parser.add_argument("--fit", action="store_true", help="estimate batches for 16/24/80 GiB")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--side", choices=("jax", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = ModelConfig(backbone=args.backbone, max_objects=10)
    if args.side:
        return _side(args, config)
    ours = {m: _run_side(args, "jax", m) for m in dict.fromkeys(args.remat.split(","))}
    theirs = None if args.no_torch else _run_side(args, "torch")
    _report(args, ours, theirs)


if __name__ == "__main__":
    main()
