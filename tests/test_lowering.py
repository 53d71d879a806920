"""The steps lower for TPU and GPU from this CPU (`jax.export`), and a planted CPU-only construct fails.

Exported for ("tpu",) and for ("cuda",): the inference step of one video and of a bucket of videos,
in float32 and with the bfloat16 preset (`step`, `step_given`, `reset_slot`), and the data-parallel
train step on a mesh of 4 fake CPU devices without and with remat and accumulation (in a
subprocess: fake devices need XLA_FLAGS before jax starts). A host callback planted in the step, and
XLA:CPU compiler options planted on a step built for TPU, make the export fail.
"""

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

import stm_jax.core as core_module
from stm_jax.inference.lowering import LoweringError, compiler_options, export_for
from stm_jax.inference.settings import with_preset
from stm_jax.inference.stepper import Stepper
from stm_jax.memory.config import MemoryConfig
from stm_jax.training import step as step_lib
from stm_jax.training.cpu_compile import TRAIN_STEP_CPU_OPTIONS
from stm_jax.training.defaults import default_train_config
from tests.model_fixtures import TINY, tiny_variables
from tests.test_train_parallel import ROOT, _subprocess_env
from tests.train_fixtures import random_batch

HEIGHT, WIDTH, OBJECTS = 40, 56, 2  # not multiples of 16: the padding is lowered too
ACCELERATORS = ("tpu", "cuda")


@pytest.fixture(scope="module")
def variables():
    return tiny_variables()


def step_inputs(stepper, variables, videos):
    """Abstract (frames, state, active) and the extra inputs of step_given and reset_slot."""
    frames = jax.ShapeDtypeStruct((videos, HEIGHT, WIDTH, 3), jnp.uint8)
    state = stepper.state_shape(variables, videos, HEIGHT, WIDTH, OBJECTS)
    active = jax.ShapeDtypeStruct((videos,), jnp.bool_)
    given = (
        jax.ShapeDtypeStruct((videos, HEIGHT, WIDTH), jnp.uint8),
        jax.ShapeDtypeStruct((videos, OBJECTS), jnp.bool_),
    )
    reset = (
        jax.ShapeDtypeStruct((), jnp.int32),
        jax.ShapeDtypeStruct((HEIGHT, WIDTH, 3), jnp.uint8),
        jax.ShapeDtypeStruct((HEIGHT, WIDTH), jnp.uint8),
        jax.ShapeDtypeStruct((OBJECTS,), jnp.bool_),
    )
    return frames, state, active, given, reset


def export_inference(stepper, variables, videos, platform):
    frames, state, active, given, reset = step_inputs(stepper, variables, videos)
    platforms = (platform,)
    return {
        "step": export_for(stepper.step, variables, frames, state, active, platforms=platforms),
        "step_given": export_for(
            stepper.step_given, variables, frames, state, active, *given, platforms=platforms
        ),
        "reset_slot": export_for(stepper.reset_slot, variables, state, *reset, platforms=platforms),
    }


@pytest.mark.parametrize("preset", ["default", "accelerator"])
@pytest.mark.parametrize("videos", [1, 3])
def test_inference_step_lowers_for_tpu_and_cuda(variables, preset, videos):
    model_config = with_preset(TINY, preset)
    stepper = Stepper(model_config, MemoryConfig(capacity=4))
    for platform in ACCELERATORS:
        exported = export_inference(stepper, variables, videos, platform)
        for name, fn in exported.items():
            assert fn.platforms == (platform,), name
            assert fn.nr_devices == 1
        labels, probs = exported["step"].out_avals[:2]
        assert labels.shape == (videos, HEIGHT, WIDTH) and labels.dtype == jnp.uint8
        assert probs.shape == (videos, HEIGHT, WIDTH, TINY.num_slots)
        assert probs.dtype == jnp.float32  # affinity, softmax and aggregation stay float32
        module = exported["step"].mlir_module()
        # The preset reaches the accelerator program: bf16 convolutions only with 'accelerator'.
        assert ("bf16" in module) == (preset == "accelerator")
        assert "stablehlo.convolution" in module and "stablehlo.while" in module  # chunked read


def test_long_term_memory_step_lowers_for_tpu_and_cuda(variables):
    memory = MemoryConfig(capacity=4, eviction="long_term", long_term_size=32, permanent_slots=2)
    stepper = Stepper(TINY, memory)
    for platform in ACCELERATORS:
        exported = export_inference(stepper, variables, 2, platform)
        assert all(fn.platforms == (platform,) for fn in exported.values())


def _plant_host_callback(monkeypatch):
    """A host callback inside the step's aggregation (what a debugging print would leave behind)."""
    original = core_module.soft_aggregate

    def with_callback(*args):
        out = original(*args)
        shape = jax.ShapeDtypeStruct(out.shape, out.dtype)
        return jax.pure_callback(lambda x: np.asarray(x), shape, out)

    monkeypatch.setattr(core_module, "soft_aggregate", with_callback)


def test_a_planted_host_callback_fails_the_lowering(variables, monkeypatch):
    _plant_host_callback(monkeypatch)
    stepper = Stepper(TINY, MemoryConfig(capacity=4))
    frames, state, active, _, _ = step_inputs(stepper, variables, 1)
    # The planted step still lowers and runs with this host's own CPU backend (a CPU-only construct) ...
    stepper.step.lower(variables, frames, state, active)
    # ... but not for an accelerator, alone or beside the CPU.
    for platforms in (("tpu",), ("cuda",), ("cpu", "cuda", "tpu")):
        with pytest.raises(LoweringError, match="does not lower"):
            export_for(stepper.step, variables, frames, state, active, platforms=platforms)


def _abstract_train_inputs(mesh, variables, train, batch):
    replicated = NamedSharding(mesh, PartitionSpec())
    data = NamedSharding(mesh, PartitionSpec("data"))

    def spec(x, sharding):
        x = jnp.asarray(x)
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    state = step_lib.init_train_state(variables["params"], train, 0)
    return (
        jax.tree.map(lambda x: spec(x, replicated), state),
        jax.tree.map(lambda x: spec(x, replicated), variables["batch_stats"]),
        jax.tree.map(lambda x: spec(x, data), batch),
    )


@pytest.mark.slow
def test_cpu_compiler_options_stay_on_cpu_and_a_planted_one_fails(variables, monkeypatch):
    mesh = step_lib.make_mesh(jax.devices()[:1])
    train = default_train_config()
    args = _abstract_train_inputs(mesh, variables, train, random_batch(batch=2))
    on_cpu = step_lib.make_train_step(mesh, TINY, train)
    # The reader sees the options of a jit built with them (so an empty answer below means none).
    assert compiler_options(on_cpu, *args) == TRAIN_STEP_CPU_OPTIONS
    for_tpu = step_lib.make_train_step(mesh, TINY, train, platform="tpu")
    assert compiler_options(for_tpu, *args) == {}
    assert export_for(for_tpu, *args, platforms=("tpu",)).platforms == ("tpu",)
    # Planted: a step that applies the CPU options whatever it is compiled for.
    monkeypatch.setattr(
        step_lib,
        "train_step_compiler_options",
        lambda devices, platform=None: TRAIN_STEP_CPU_OPTIONS,
    )
    planted = step_lib.make_train_step(mesh, TINY, train, platform="tpu")
    with pytest.raises(LoweringError, match="XLA:CPU compiler options"):
        export_for(planted, *args, platforms=("tpu",))
    export_for(planted, *args, platforms=("cpu",))  # where they belong, they are fine


def test_unknown_platform_is_refused(variables):
    stepper = Stepper(TINY, MemoryConfig(capacity=4))
    frames, state, active, _, _ = step_inputs(stepper, variables, 1)
    for platforms in (("gpu",), (), ("tpu", "tpu")):
        with pytest.raises(LoweringError, match="distinct names"):
            export_for(stepper.step, variables, frames, state, active, platforms=platforms)


_EXPORT_TRAIN_STEPS = textwrap.dedent(
    """
    import dataclasses, json, sys
    import jax
    from stm_jax.inference.lowering import export_for
    from stm_jax.training import step as step_lib
    from stm_jax.training.defaults import default_train_config
    from stm_jax.training.init import initial_variables
    from tests.model_fixtures import TINY
    from tests.test_lowering import _abstract_train_inputs
    from tests.train_fixtures import random_batch

    mesh = step_lib.make_mesh()
    variables, _ = initial_variables(TINY, "", 0)
    results = []
    # Without remat and accumulation (float32); with both (remat of encoders and decoder, 2
    # micro-batches, bfloat16).
    for remat, accumulate, dtype in (("", 1, "float32"), ("all", 2, "bfloat16")):
        train = default_train_config()
        train.remat, train.accumulate = remat, accumulate
        model = dataclasses.replace(TINY, dtype=dtype)
        args = _abstract_train_inputs(mesh, variables, train, random_batch(batch=8))
        for platform in ("tpu", "cuda"):
            fn = step_lib.make_train_step(mesh, model, train, platform=platform)
            exported = export_for(fn, *args, platforms=(platform,))
            text = exported.mlir_module()
            # None: an input the step does not read (XLA drops it).
            specs = [str(s and s.spec) for s in exported.in_shardings_jax(mesh)]
            batch_leaves = len(jax.tree.leaves(args[2]))
            results.append({
                "remat": remat, "accumulate": accumulate, "platform": platform,
                "platforms": list(exported.platforms), "devices": exported.nr_devices,
                "mesh": '"data"=4' in text, "loop": "stablehlo.while" in text,
                "batch_specs": sorted(set(specs[-batch_leaves:])),
                "other_specs": sorted(set(specs[:-batch_leaves])),
            })
    json.dump({"device_count": jax.device_count(), "results": results}, open(sys.argv[1], "w"))
    """
)


@pytest.mark.slow
def test_data_parallel_train_step_lowers_for_tpu_and_cuda(tmp_path):
    out = tmp_path / "exported.json"
    subprocess.run(
        [sys.executable, "-c", _EXPORT_TRAIN_STEPS, str(out)],
        cwd=ROOT,
        env=_subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
        check=True,
        timeout=300,
    )
    report = json.loads(out.read_text())
    assert report["device_count"] == 4
    combos = {(r["remat"], r["accumulate"], r["platform"]) for r in report["results"]}
    assert combos == {(m, a, p) for m, a in (("", 1), ("all", 2)) for p in ("tpu", "cuda")}
    for r in report["results"]:
        assert r["platforms"] == [r["platform"]] and r["devices"] == 4, r
        # Data parallel on the 4-device mesh: the batch split over 'data', the state replicated
        # (the partitioner inserts the gradient all-reduce when the platform compiles it).
        assert r["mesh"] and "P('data',)" in r["batch_specs"], r
        assert set(r["batch_specs"]) <= {"P('data',)", "None"}, r
        assert "P()" in r["other_specs"] and set(r["other_specs"]) <= {"P()", "None"}, r
        # The accumulation scan (and the read's loop) stay loops in the accelerator program.
        assert r["loop"], r
