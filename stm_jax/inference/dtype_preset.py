"""`model.dtype='auto'`: the compute dtype an inference run picks for this machine, and why.

bfloat16 keeps the accuracy bar (>= 99.9 % of pixels as in float32, J&F within 0.005 on the
shipped checkpoint's held-out videos: tests/test_bf16.py), so 'auto' picks it wherever it
is measured to make the whole per-frame step faster, and float32 everywhere else. The measurements
are the table below (`python -m benchmarks.cpu_matrix_units --whole-step`); a machine or jaxlib
they do not cover gets float32, which is never the wrong answer, only possibly the slower one.

The choice is said in one line, once per process; an explicit `model.dtype` (a config flag or a
`Segmenter.from_checkpoint` argument) is used as given and says nothing. Everything the choice
reads (backend, CPU flags, jaxlib version) can be passed in, so it is tested without the machine.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

AUTO = "auto"
OVERRIDE = "set model.dtype to override"

# bfloat16's speed-up over float32 (> 1: bfloat16 is faster) for the whole STM step (ResNet-50,
# 2 objects) under the best XLA:CPU setting measured, by (jaxlib version, the CPU's bfloat16
# unit). No XLA flag is needed: none made bfloat16 faster. On the AVX-512 BF16 CPU, jaxlib 0.10.2's
# XLA:CPU computes every bfloat16 convolution of the step in float32 (the optimised HLO holds them
# as f32 YNNPACK fusions, whatever the oneDNN / XNNPACK / YNNPACK flags), so bfloat16 only adds
# conversions.
CPU_BF16_SPEEDUP = {
    # AMD EPYC with AVX-512 BF16, 2 shared cores, 224x416, steps of both dtypes alternating:
    # 0.84x (default flags), 0.90x (YNN dot fusion), 0.79x (XNN dot fusion), 0.97x (oneDNN).
    ("0.10.2", "avx512_bf16"): 0.97,
    # Intel with AMX, per op (res4 / res2 convolutions, readout matmul): 0.69-0.98x under every
    # flag; only the affinity matmul, a small share of the step, reached 1.66x (YNN dot fusion).
    ("0.10.2", "amx_bf16"): 0.98,
}
BF16_UNITS = ("amx_bf16", "avx512_bf16")  # best first


@dataclasses.dataclass(frozen=True)
class Preset:
    dtype: str
    reason: str

    def line(self) -> str:
        return f"compute dtype: {self.dtype} ({self.reason})"


def read_cpu_flags(path: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags, or None where they cannot be read (no /proc, another OS)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    found = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    return frozenset(found.group(1).split()) if found else None


def jaxlib_version() -> str:
    import jaxlib.version

    return jaxlib.version.__version__


def choose(backend: str, cpu_flags: frozenset[str] | None, jaxlib: str) -> Preset:
    """The preset for a backend ('cpu', 'gpu', 'tpu', ...), CPU flags (None: unknown) and jaxlib."""
    if backend != "cpu":
        # Both dtypes run there; which is faster is not measured yet, and float32 is the exact one.
        return Preset(
            "float32", f"bfloat16 speed on {backend} is not measured yet; {OVERRIDE}, e.g. bfloat16"
        )
    if cpu_flags is None:
        return Preset("float32", f"the CPU's features could not be read; {OVERRIDE}")
    unit = next((u for u in BF16_UNITS if u in cpu_flags), None)
    if unit is None:
        return Preset(
            "float32", f"the CPU has no bfloat16 unit (amx_bf16, avx512_bf16); {OVERRIDE}"
        )
    speedup = CPU_BF16_SPEEDUP.get((jaxlib, unit))
    if speedup is None:
        return Preset(
            "float32",
            f"CPU has {unit}; bfloat16 speed with jaxlib {jaxlib} is not measured "
            f"(benchmarks/cpu_matrix_units.py --whole-step); {OVERRIDE}",
        )
    if speedup > 1.0:
        return Preset(
            "bfloat16", f"CPU has {unit}: {speedup:.2f}x faster than float32 here; {OVERRIDE}"
        )
    return Preset(
        "float32",
        f"CPU has {unit}, but XLA:CPU in jaxlib {jaxlib} runs bf16 convolutions slower than float32 "
        f"here; {OVERRIDE}",
    )


_ANNOUNCED: set[str] = set()


def resolve_dtype(
    requested: str,
    backend: str | None = None,
    cpu_flags: frozenset[str] | None | str = "read",
    jaxlib: str | None = None,
    say=print,
    announced: set[str] = _ANNOUNCED,
) -> str:
    """`requested` itself unless it is 'auto'; then this machine's preset, said once per process.

    backend / cpu_flags / jaxlib default to this process's (jax's default backend, /proc/cpuinfo,
    the installed jaxlib). `announced` holds the lines already said."""
    if requested != AUTO:
        return requested
    if backend is None:
        import jax

        backend = jax.default_backend()
    flags = read_cpu_flags() if cpu_flags == "read" else cpu_flags
    preset = choose(backend, flags, jaxlib or jaxlib_version())
    if preset.line() not in announced:
        announced.add(preset.line())
        say(preset.line())
    return preset.dtype
