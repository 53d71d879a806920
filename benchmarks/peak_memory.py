"""Peak-memory helpers for the benchmarks: process RSS (Linux) and XLA's memory analysis.

RSS: `reset_peak()` sets the kernel's high-water mark (VmHWM) to the current RSS (write "5" to
/proc/self/clear_refs, Linux >= 4.0), so `peak_rss_mib()` afterwards is the peak of the phase that
follows, not of imports or compilation. Where the reset is not allowed it falls back to ru_maxrss
(the whole process's peak) and says so.

XLA: `xla_bytes(compiled)` is what the compiled program needs on its device (arguments + outputs +
temporaries, minus outputs aliased to donated arguments): the number that carries over to
accelerators, unlike RSS, which also counts host-side buffers and allocator caches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
from pathlib import Path

MIB = 2**20
GIB = 2**30


def _status_kib(field: str) -> float | None:
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return None


def current_rss_mib() -> float:
    """Resident set size now (MiB); ru_maxrss where /proc is missing."""
    kib = _status_kib("VmRSS")
    return (kib if kib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def trim() -> None:
    """Returns freed heap memory to the OS (glibc `malloc_trim(0)`; a no-op elsewhere)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def reset_peak() -> bool:
    """Resets the RSS high-water mark to the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mib() -> float:
    """Peak RSS (MiB) since the last `reset_peak()` (VmHWM), else since the process started."""
    kib = _status_kib("VmHWM")
    return (kib if kib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def xla_bytes(compiled) -> dict:
    """Device bytes of a compiled JAX program (`jax.jit(f).lower(...).compile()`)."""
    m = compiled.memory_analysis()
    out = {
        "argument": int(m.argument_size_in_bytes),
        "output": int(m.output_size_in_bytes),
        "alias": int(m.alias_size_in_bytes),
        "temp": int(m.temp_size_in_bytes),
    }
    out["total"] = out["argument"] + out["output"] - out["alias"] + out["temp"]
    return out


def batch_fit(total_b1: int, total_b2: int, capacity_gib: float, reserve: float = 0.1) -> int:
    """Largest batch whose estimated bytes fit in `capacity_gib` with `reserve` of it kept free.

    The estimate is linear in the batch: per clip = total(2) - total(1), fixed (parameters, optimizer
    state, batch-independent buffers) = total(1) - per clip.
    """
    per_clip = total_b2 - total_b1
    fixed = total_b1 - per_clip
    usable = capacity_gib * GIB * (1 - reserve)
    return max(0, int((usable - fixed) // per_clip)) if per_clip > 0 else 0
