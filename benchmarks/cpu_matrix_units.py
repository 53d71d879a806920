"""Which XLA:CPU setting reaches the CPU's matrix units (AMX / AVX-512 BF16) for STM's ops?

Times STM's heaviest op kinds at DAVIS size (480x854: the stride-16 grid is 30x54) in float32 and
bfloat16 under each candidate set of XLA flags, one fresh process per setting (XLA reads its flags
once), and prints GFLOP/s per op and the bf16 / fp32 ratio. The compiled HLO of every setting is
dumped and searched for the kernels that ran (oneDNN / XNNPACK / YNNPACK custom calls or fusions),
so a fast or slow number can be traced to the library behind it.

`--whole-step` times the whole per-frame STM step instead (ResNet-50, 480x854, 2 objects, the
`Stepper` as the jobs run it, random weights) in float32 and bfloat16 under each setting, one fresh
process per setting running both dtypes' steps alternately (so a busy machine slows both alike),
and reads the convolutions of the compiled bf16 step from its
optimised HLO: their dtype before and after XLA's passes and the kernel each became (a plain HLO
convolution = XLA:CPU's Eigen convolution; a custom fusion / call = that library's).
Full size: run it alone (it needs ~6 GiB and both cores).

Run:  python -m benchmarks.cpu_matrix_units [--repeats 5]
      python -m benchmarks.cpu_matrix_units --whole-step [--frames 4] [--settings default,ynn_dot_fusion]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SETTINGS = {
    "default": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "onednn_custom_call": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "onednn_dot_fusion": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot",
    "xnn_dot_fusion": "--xla_cpu_experimental_xnn_fusion_type=dot,eltwise",
    "ynn_dot_fusion": "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise",
}

# (name, kind, shapes): conv = (H, W, Cin, Cout, kernel), dot = (M, K, N)
OPS = [
    ("conv3x3 256->256 @30x54 (res4)", "conv", (30, 54, 256, 256, 3)),
    ("conv1x1 1024->256 @30x54 (res4)", "conv", (30, 54, 1024, 256, 1)),
    ("conv3x3 64->64 @120x214 (res2)", "conv", (120, 214, 64, 64, 3)),
    ("affinity 1620x128 . 128x6480", "dot", (1620, 128, 6480)),
    ("readout 1620x6480 . 6480x512", "dot", (1620, 6480, 512)),
]

CHILD = r"""
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
ops, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
out = {}
for name, kind, shape in ops:
    for dtype in ("float32", "bfloat16"):
        dt = jnp.dtype(dtype)
        rng = np.random.default_rng(0)
        if kind == "conv":
            h, w, ci, co, k = shape
            x = jnp.asarray(rng.standard_normal((1, h, w, ci)), dt)
            y = jnp.asarray(rng.standard_normal((k, k, ci, co)) * 0.05, dt)
            p = k // 2
            f = jax.jit(lambda a, b: jax.lax.conv_general_dilated(
                a, b, (1, 1), ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
                preferred_element_type=jnp.float32 if dtype == "float32" else None))
            flops = 2 * h * w * ci * co * k * k
        else:
            m, kk, n = shape
            x = jnp.asarray(rng.standard_normal((m, kk)), dt)
            y = jnp.asarray(rng.standard_normal((kk, n)), dt)
            f = jax.jit(lambda a, b: a @ b)
            flops = 2 * m * kk * n
        f(x, y).block_until_ready()
        times = []
        for _ in range(repeats):
            t = time.perf_counter(); f(x, y).block_until_ready(); times.append(time.perf_counter() - t)
        out[f"{name}|{dtype}"] = flops / min(times) / 1e9
print("RESULT" + json.dumps(out))
"""


def kernels_in(dump: Path) -> list[str]:
    """Custom-call targets and fusion kinds of the optimised HLO that name a library."""
    found = set()
    for path in dump.glob("*after_optimizations*.txt"):
        text = path.read_text(errors="ignore")
        found.update(re.findall(r'custom_call_target="([^"]+)"', text))
        found.update(re.findall(r"kind=k(\w+)", text))
        found.update(m.lower() for m in re.findall(r"(onednn|xnn\w*|ynn\w*)", text, re.I))
    return sorted(k for k in found if k not in ("Loop", "Input", "Output"))


def run_setting(flags: str, repeats: int) -> tuple[dict, list[str]]:
    with tempfile.TemporaryDirectory() as dump:
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env["XLA_FLAGS"] = f"{flags} --xla_dump_to={dump} --xla_dump_hlo_as_text".strip()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(OPS), str(repeats)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1][:200]}, []
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
        return json.loads(line[len("RESULT") :]), kernels_in(Path(dump))


WHOLE_STEP_CHILD = r"""
import json, statistics, sys, time
import jax, numpy as np
from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables
frames_n, height, width = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
variables = jax.device_put(init_variables(jax.random.key(0), ModelConfig()))
rng = np.random.default_rng(0)
frames = rng.integers(0, 256, (frames_n + 1, height, width, 3), dtype=np.uint8)
labels = np.zeros((height, width), np.uint8)
labels[: height // 2, : width // 3] = 1
labels[height // 2 :, width // 2 :] = 2
streams = {}
for dtype in ("float32", "bfloat16"):  # float32 compiles first: its module is dumped first
    streams[dtype] = VideoStream(Stepper(ModelConfig(dtype=dtype), MemoryConfig()), variables)
    streams[dtype].start(frames[0], labels, 2)
times = {d: [] for d in streams}
for frame in frames[1:]:
    for dtype, stream in streams.items():  # alternating: the load of shared cores hits both alike
        start = time.perf_counter()
        jax.block_until_ready(stream.step(frame))
        times[dtype].append(time.perf_counter() - start)
# the first step of each compiles; the rest are the steady state
print("RESULT" + json.dumps({d: {"first": t[0], "step": statistics.median(t[1:]), "times": t}
                             for d, t in times.items()}))
"""


def _computations(text: str):
    """(computation name, its instruction lines) of an HLO module's text."""
    name, lines = None, []
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY )?%(\S+) \(.*\{$", line)
        if header:
            name, lines = header.group(1), []
        elif line.startswith("}") and name:
            yield name, lines
            name = None
        elif name:
            lines.append(line)


def convolution_kernels(dump: Path, module: str = "jit__step") -> dict:
    """The convolutions of `module`'s HLO: {'before': {dtype: n}, 'after': {kernel (dtype): n}}.

    After optimisation a convolution left as a plain HLO op runs in XLA:CPU's own (Eigen) kernel;
    one inside a custom fusion (e.g. `xnn_fusion`, `ynn_fusion`) or a custom call (`__onednn$...`)
    runs in that library."""
    out = {"before": {}, "after": {}}
    for stage, pattern in (("before", "before_optimizations"), ("after", "after_optimizations")):
        texts = [
            p.read_text(errors="ignore") for p in sorted(dump.glob(f"*.{module}.*{pattern}.txt"))
        ]
        texts = [t for t in texts if "bf16[" in t]  # the bfloat16 step's module
        if not texts:
            continue
        text = texts[0]
        custom = {  # computation -> the custom fusion calling it
            m.group(2): re.sub(r"\.\d+$", "", m.group(1))
            for m in re.finditer(r"%(\S+) = \S+ fusion\(.*?kind=kCustom, calls=%([\w.-]+)", text)
        }
        counts = out[stage]
        for comp, lines in _computations(text):
            for line in lines:
                conv = re.search(r"= (\w+)\[[^=]*? convolution\(", line)
                call = re.search(r'= (\w+)\[.*custom_call_target="([^"]*conv[^"]*)"', line, re.I)
                if conv:
                    where = (
                        custom.get(comp, "XLA:CPU Eigen convolution") if stage == "after" else ""
                    )
                    key = f"{where} ({conv.group(1)})" if where else conv.group(1)
                elif call:
                    key = f"{call.group(2)} ({call.group(1)})"
                else:
                    continue
                counts[key] = counts.get(key, 0) + 1
    return out


def run_whole_step(flags: str, frames: int, height: int, width: int) -> dict:
    """Both dtypes' steps in one process under `flags`, alternating frame by frame."""
    with tempfile.TemporaryDirectory() as dump:
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env["XLA_FLAGS"] = f"{flags} --xla_dump_to={dump} --xla_dump_hlo_as_text".strip()
        env.pop("JAX_COMPILATION_CACHE_DIR", None)  # every setting compiles its own step
        proc = subprocess.run(
            [sys.executable, "-c", WHOLE_STEP_CHILD, str(frames), str(height), str(width)],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
        return {**json.loads(line[len("RESULT") :]), "convs": convolution_kernels(Path(dump))}


def whole_step(settings: list[str], frames: int, height: int, width: int) -> None:
    print(
        f"whole STM step: resnet50, {height}x{width}, 2 objects, {frames - 1} timed frames per "
        "dtype, float32 and bfloat16 alternating in one process per setting"
    )
    print(f"  {'setting':20s} {'fp32 s/frame':>12s} {'bf16 s/frame':>12s} {'bf16 speed-up':>13s}")
    notes = []
    for setting in settings:
        row = run_whole_step(SETTINGS[setting], frames, height, width)
        if "error" in row:
            print(f"  {setting:20s} failed: {row['error']}")
            continue
        f32, b16 = row["float32"]["step"], row["bfloat16"]["step"]
        print(f"  {setting:20s} {f32:12.3f} {b16:12.3f} {f32 / b16:12.2f}x", flush=True)
        convs = row["convs"]
        notes.append(
            f"  {setting}: bf16 step's convolutions before XLA's passes {convs['before']}, "
            f"after {convs['after']}; first (compiling) step fp32 {row['float32']['first']:.1f} s, "
            f"bf16 {row['bfloat16']['first']:.1f} s; steps fp32 "
            f"{[round(t, 2) for t in row['float32']['times'][1:]]}, bf16 "
            f"{[round(t, 2) for t in row['bfloat16']['times'][1:]]}"
        )
    print("(speed-up > 1: bfloat16 is faster)")
    print("\n".join(notes))


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(re.search(r"^flags\s*:\s*(.*)$", text, re.M).group(1).split())
    return sorted(f for f in flags if f.startswith("amx") or f.endswith("bf16") or f == "avx512f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--whole-step", action="store_true", help="time the whole STM step")
    parser.add_argument("--frames", type=int, default=4, help="--whole-step: steps per run")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    args = parser.parse_args()
    print(f"CPU matrix-unit flags: {' '.join(cpu_flags()) or 'none'}; {os.cpu_count()} cores")
    if args.whole_step:
        whole_step(args.settings.split(","), args.frames, args.height, args.width)
        return
    for setting in args.settings.split(","):
        result, kernels = run_setting(SETTINGS[setting], args.repeats)
        print(f"\n## {setting}: XLA_FLAGS='{SETTINGS[setting]}'")
        if "error" in result:
            print(f"  failed: {result['error']}")
            continue
        print(f"  kernels in the optimised HLO: {', '.join(kernels) or '-'}")
        print(f"  {'op':34s} {'fp32 GFLOP/s':>13s} {'bf16 GFLOP/s':>13s} {'bf16/fp32':>9s}")
        for name, _, _ in OPS:
            f32, b16 = result[f"{name}|float32"], result[f"{name}|bfloat16"]
            print(f"  {name:34s} {f32:13.1f} {b16:13.1f} {b16 / f32:9.2f}")


if __name__ == "__main__":
    main()
