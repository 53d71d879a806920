"""Every CPU-only setting of the project, in one place, each applied only where the devices are CPUs.

Accelerators get XLA's defaults: nothing here reaches a GPU or TPU program
(`tests/test_lowering.py` exports the steps for ("tpu",) and ("cuda",) and fails on a CPU option).

1. The training step's XLA:CPU compiler options (`train_step_compiler_options`). XLA:CPU hands
   convolutions to YNNPACK by default. For STM's backward pass that is the slow choice: YNNPACK's
   kernel gradient of a 3x3 convolution takes 155 ms for a [2, 96, 96, 256] decoder map where XLA's
   own (Eigen) convolution takes 78 ms, and forward and input-gradient convolutions are as fast
   either way (`benchmarks/train_step.py` measured the whole step at 5.05 -> 4.75 s on 2 cores). So
   the training step keeps YNNPACK for matmuls and reductions only. The option is set per
   compilation (`jax.jit(..., compiler_options=...)`), never through the process-wide XLA_FLAGS, and
   only when the step is compiled for CPUs and this jaxlib knows the option; otherwise the step
   compiles with XLA's defaults. The option names XLA:CPU, so a GPU or TPU compiler would refuse it.
2. The cross-process collectives of the CPU client (`use_cpu_collectives`): CPU devices of several
   processes need an implementation (gloo). It is a JAX setting read by the CPU client alone, set
   before `jax.distributed.initialize`, when no backend may be asked which platform it is; GPU and
   TPU clients bring their own (NCCL, ICI) and never read it.
3. The allocator tip of CPU training (`allocator_hint`): a message, on CPU only.

Not settings, and not CPU-only: the formulations chosen for XLA:CPU's speed (1x1 convolutions as
matmuls, the convolutions' kernel gradient in canonical form (`stm_jax.model.conv`: fast inside the
accumulation loop), the max-pool's and the loss's scatter-free gradients, the remat's custom_vjp with its token
chain) are plain JAX with the same values on every platform, and the lowering tests export them for
TPU and GPU; whether they are also the fast choice there is for `benchmarks/device_check.py` to show.
"""

from __future__ import annotations

import functools
import os
import sys

import jax

# Everything XLA:CPU gives YNNPACK by default (jaxlib 0.10) except LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION.
TRAIN_STEP_CPU_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": (
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
    )
}


def _all_cpu(devices) -> bool:
    return all(d.platform == "cpu" for d in devices)


@functools.cache
def _options_supported() -> bool:
    """Whether this jaxlib accepts TRAIN_STEP_CPU_OPTIONS (a tiny probe compile)."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=TRAIN_STEP_CPU_OPTIONS).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - any rejection means "use XLA's defaults"
        return False
    return True


def train_step_compiler_options(devices, platform: str | None = None) -> dict[str, str] | None:
    """Compiler options for a step on `devices`: the CPU ones above, or None (XLA's defaults).

    `platform` ('cpu', 'cuda', 'tpu', ...) names the platform the step is compiled for when that is
    not the devices' own, e.g. a TPU step lowered on a CPU host; None = the devices' platform.
    """
    on_cpu = _all_cpu(devices) if platform is None else platform == "cpu"
    if not on_cpu:
        return None
    return dict(TRAIN_STEP_CPU_OPTIONS) if _options_supported() else None


def use_cpu_collectives(implementation: str = "gloo") -> None:
    """Cross-process collectives for CPU devices (read by the CPU client only; see item 2 above)."""
    jax.config.update("jax_cpu_collectives_implementation", implementation or "gloo")


def allocator_hint(devices, environ=None) -> str | None:
    """A one-line tip when training on CPU with glibc's default malloc, else None.

    With glibc's defaults XLA's per-step temporary buffer (2.1 GB for ResNet-50 at 384x384) is unmapped
    and page-faulted back in 4 KB pages every step; huge pages took that step from 4.63 to 4.05 s on
    2 cores (docs/scaling.md). The tunable must be set before Python starts, so this only tells.
    """
    environ = os.environ if environ is None else environ
    if not _all_cpu(devices) or not sys.platform.startswith("linux"):
        return None
    if "hugetlb" in environ.get("GLIBC_TUNABLES", "") or "malloc" in environ.get("LD_PRELOAD", ""):
        return None
    return (
        "[train] CPU tip: GLIBC_TUNABLES=glibc.malloc.hugetlb=1 before the command makes each step "
        "~13% faster (XLA's per-step buffers on huge pages; docs/scaling.md)."
    )
