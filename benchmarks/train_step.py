"""Training-step throughput on CPU: our jitted JAX step vs a PyTorch reference step of the same STM.

Both do one full STM training update on 3-frame clips at SIZE x SIZE: memorise frame 1 with its
ground truth, segment frame 2, memorise its (detached) soft output, segment frame 3, cross-entropy on
the soft-aggregated logits of frames 2 and 3, backward, Adam. Frozen BN in both. PyTorch uses the
reference model of `tests/torch_stm_reference.py` (the official structure, batch 1 per clip as in
Training-Code-of-STM); ours runs `stm_jax.training.step` with batch `--batch`.

Run:
  python benchmarks/train_step.py [--size 384] [--backbone resnet50] [--objects 2] [--steps 5]
Prints clips/s of both and the ratio (ours / PyTorch). Each side first runs `--warmup` untimed steps:
the first few steps of both run slower while their allocators' caches fill.

The memory allocator matters on CPU, for both sides: glibc returns XLA's per-step temporary buffer
(2.1 GB here) to the OS and page-faults it back in 4 KB pages every step (~0.5 s), and PyTorch's large
tensors cost it too. Compare with transparent huge pages for malloc (glibc >= 2.35) or under tcmalloc
(Debian/Ubuntu package libtcmalloc-minimal4); either applies to both sides:
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python benchmarks/train_step.py
  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/train_step.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def time_jax(config: ModelConfig, batch: dict, steps: int, warmup: int) -> tuple[float, float]:
    """Returns (compile + first step seconds, seconds per step after `warmup` more steps)."""
    train = default_train_config()
    variables, _ = initial_variables(config, "", 0)
    mesh = step_lib.make_mesh(jax.devices()[:1])
    state = step_lib.replicate(step_lib.init_train_state(variables["params"], train, 0), mesh)
    stats = step_lib.replicate(variables["batch_stats"], mesh)
    fn = step_lib.make_train_step(mesh, config, train)
    start = time.perf_counter()
    state, metrics = fn(state, stats, batch)
    jax.block_until_ready(metrics)
    first = time.perf_counter() - start
    for _ in range(warmup):
        state, metrics = fn(state, stats, batch)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = fn(state, stats, batch)
    jax.block_until_ready(metrics)
    return first, (time.perf_counter() - start) / steps


def time_torch(backbone: str, num_slots: int, batch: dict, steps: int, warmup: int) -> float:
    """Seconds per PyTorch step on one clip (batch element 0)."""
    import torch
    import torch.nn.functional as F

    from tests.torch_stm_reference import STM

    torch.manual_seed(0)
    model = STM(backbone=backbone, num_slots=num_slots)
    model.eval()  # frozen BN; all parameters still trained
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    frames = torch.from_numpy(batch["frames"][0]).float().div(255).permute(0, 3, 1, 2)
    masks = torch.from_numpy(batch["masks"][0]).permute(0, 3, 1, 2)  # [T, O+1, H, W]
    labels = torch.from_numpy(batch["labels"][0]).long()
    objects = masks.shape[1] - 1
    full = torch.zeros(3, num_slots, *masks.shape[2:])
    full[:, : objects + 1] = masks

    def one_step():
        optimizer.zero_grad()
        keys, values = model.memorize(frames[0:1], full[0:1], objects)
        logit1 = model.segment(frames[1:2], keys, values, objects)
        probs = F.softmax(logit1, dim=1).detach()
        k1, v1 = model.memorize(frames[1:2], probs, objects)
        keys, values = torch.cat([keys, k1], dim=3), torch.cat([values, v1], dim=3)
        logit2 = model.segment(frames[2:3], keys, values, objects)
        loss = F.cross_entropy(logit1, labels[1:2]) + F.cross_entropy(logit2, labels[2:3])
        loss.backward()
        optimizer.step()

    for _ in range(1 + warmup):
        one_step()
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = cpu count)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads or os.cpu_count())
    config = ModelConfig(backbone=args.backbone, max_objects=10)
    batch = make_batch(args.batch, args.size, args.objects)
    first, ours = time_jax(config, batch, args.steps, args.warmup)
    theirs = time_torch(args.backbone, config.num_slots, batch, args.steps, args.warmup)
    ours_clips, theirs_clips = args.batch / ours, 1.0 / theirs
    print(
        f"train step, {args.backbone} {args.size}x{args.size}, 3 frames, {args.objects} objects, "
        f"{os.cpu_count()} CPU cores, {allocator()}"
    )
    print(
        f"  JAX (ours):  {ours_clips:.3f} clips/s  ({ours:.2f} s/step, batch {args.batch}; "
        f"compile+first {first:.1f} s)"
    )
    print(f"  PyTorch ref: {theirs_clips:.3f} clips/s  ({theirs:.2f} s/step, batch 1)")
    print(f"  ratio ours/PyTorch: {ours_clips / theirs_clips:.2f}x")


if __name__ == "__main__":
    main()
