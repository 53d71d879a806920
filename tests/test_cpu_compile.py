"""The training step's XLA:CPU options: applied on CPU only, and convolutions leave YNNPACK."""

import dataclasses
import re

import jax
import jax.numpy as jnp

from stm_jax.training.cpu_compile import (
    TRAIN_STEP_CPU_OPTIONS,
    allocator_hint,
    train_step_compiler_options,
)


@dataclasses.dataclass
class _FakeDevice:
    platform: str


def test_options_only_for_cpu_devices():
    assert train_step_compiler_options(jax.devices()) == TRAIN_STEP_CPU_OPTIONS
    assert train_step_compiler_options([_FakeDevice("cpu"), _FakeDevice("gpu")]) is None
    assert train_step_compiler_options([_FakeDevice("tpu")]) is None


def _ynn_convolutions(hlo_text: str) -> int:
    """How many fused computations handed to YNNPACK contain a convolution."""
    called = re.findall(r"calls=%([\w.\-]+)[^\n]*__ynn_fusion", hlo_text)
    bodies = {
        m.group(1): m.group(2) for m in re.finditer(r"\n%([\w.\-]+) \((.*?)\n}", hlo_text, re.S)
    }
    return sum(" convolution(" in bodies.get(name, "") for name in called)


def test_kernel_gradient_convolution_is_not_given_to_ynnpack():
    # Big enough that XLA:CPU's defaults give this convolution to YNNPACK (checked below).
    x = jnp.ones((1, 24, 24, 32))
    dy = jnp.ones((1, 24, 24, 32))

    def kernel_grad(x, dy):
        conv = lambda k: jax.lax.conv_general_dilated(  # noqa: E731
            x, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jax.vjp(conv, jnp.zeros((3, 3, 32, 32)))[1](dy)[0]

    options = train_step_compiler_options(jax.devices())
    ours = jax.jit(kernel_grad, compiler_options=options).lower(x, dy).compile().as_text()
    default = jax.jit(kernel_grad).lower(x, dy).compile().as_text()
    assert " convolution(" in ours
    assert _ynn_convolutions(ours) == 0
    assert _ynn_convolutions(default) >= 1, (
        "XLA's defaults changed: re-measure cpu_compile's choice"
    )


def test_allocator_hint_only_for_cpu_with_default_malloc():
    cpu = [_FakeDevice("cpu")]
    assert "glibc.malloc.hugetlb=1" in allocator_hint(cpu, {})
    assert allocator_hint(cpu, {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}) is None
    assert allocator_hint(cpu, {"LD_PRELOAD": "/usr/lib/libtcmalloc_minimal.so.4"}) is None
    assert allocator_hint([_FakeDevice("gpu")], {}) is None
