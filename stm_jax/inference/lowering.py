"""Lowering a jitted step for other platforms from this host (`jax.export`), with the check that keeps
CPU-only settings out of accelerator programs.

    exported = export_for(jitted_step, *abstract_args, platforms=("tpu",))   # LoweringError if not

No TPU or GPU is needed: JAX lowers for any platform on any host. What this catches there:
* a construct with no lowering for the platform: a host callback (`jax.pure_callback`,
  `jax.debug.print`) lowers only for this process's own backend; a vendor kernel (cuDNN attention)
  only for its vendor;
* a custom call without JAX's compatibility guarantee (`jax.export`'s own check);
* an XLA:CPU compiler option (`xla_cpu_*`) on a step compiled for another platform (the compiler
  options are not part of the lowered program, so they are read from the jit itself).
What it cannot catch: failures of that platform's compiler (memory, an unsupported fusion) and
numerics, which only a real device shows (`benchmarks/device_check.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
# Every XLA:CPU-only compiler option starts so (stm_jax.training.cpu_compile sets the one we use).
CPU_ONLY_OPTION_PREFIX = "xla_cpu_"


class LoweringError(ValueError):
    """A step that does not lower (or would not compile as built) for a requested platform."""


def check_platforms(platforms: Sequence[str]) -> tuple[str, ...]:
    platforms = tuple(platforms)
    unknown = [p for p in platforms if p not in PLATFORMS]
    if not platforms or unknown or len(set(platforms)) != len(platforms):
        raise LoweringError(
            f"platforms {platforms!r}: give distinct names among {', '.join(PLATFORMS)}."
        )
    return platforms


def compiler_options(jitted, *args) -> dict:
    """The compiler options `jitted` (a `jax.jit` function) compiles `args` with.

    JAX keeps them with the traced computation (they are not in the StableHLO), so this reads them
    from there; `tests/test_lowering.py` checks it still finds the options of a known jit.
    """
    return dict(jitted.trace(*args)._params.get("compiler_options_kvs", ()))


def export_for(jitted, *args, platforms: Sequence[str]) -> jax.export.Exported:
    """`jax.export` of `jitted` on `args` (arrays or `jax.ShapeDtypeStruct`s, shardings included)
    for `platforms` (one artifact; several platforms = one module with a branch per platform)."""
    platforms = check_platforms(platforms)
    name = getattr(jitted, "__name__", "the step")
    cpu_only = sorted(
        k for k in compiler_options(jitted, *args) if k.startswith(CPU_ONLY_OPTION_PREFIX)
    )
    other = [p for p in platforms if p != "cpu"]
    if cpu_only and other:
        raise LoweringError(
            f"{name} is built with XLA:CPU compiler options {cpu_only} but is lowered for {other}; "
            "apply CPU-only settings through stm_jax.training.cpu_compile, which scopes them to CPU."
        )
    try:
        return jax.export.export(jitted, platforms=platforms)(*args)
    except (ValueError, NotImplementedError, TypeError) as error:
        raise LoweringError(f"{name} does not lower for {platforms}: {error}") from error
