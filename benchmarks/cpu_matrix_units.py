"""Which XLA:CPU setting reaches the CPU's matrix units (AMX / AVX-512 BF16) for STM's ops?

Times STM's heaviest op kinds at DAVIS size (480x854: the stride-16 grid is 30x54) in float32 and
bfloat16 under each candidate set of XLA flags, one fresh process per setting (XLA reads its flags
once), and prints GFLOP/s per op and the bf16 / fp32 ratio. The compiled HLO of every setting is
dumped and searched for the kernels that ran (oneDNN / XNNPACK / YNNPACK custom calls or fusions),
so a fast or slow number can be traced to the library behind it.

Run:  python -m benchmarks.cpu_matrix_units [--repeats 5]
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
    args = parser.parse_args()
    print(f"CPU matrix-unit flags: {' '.join(cpu_flags()) or 'none'}; {os.cpu_count()} cores")
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
