"""model.dtype='auto': the preset chosen from the backend, CPU flags and jaxlib, said once; an
explicit dtype wins silently; jobs and the Segmenter resolve it before anything records it."""

import json

import pytest

from configs import davis2017_val
from stm_jax.cli_errors import ConfigError
from stm_jax.config_checks import check_config
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.inference import dtype_preset
from stm_jax.inference.dtype_preset import Preset, choose, read_cpu_flags, resolve_dtype
from stm_jax.inference.model_loading import load_model
from stm_jax.inference.sequence_output import StaleOutputError
from stm_jax.jobs import config_base
from stm_jax.jobs.demo import SHIPPED_CHECKPOINT
from stm_jax.jobs.segment import run
from stm_jax.segmenter import Segmenter
from tests.model_fixtures import tiny_run_config, write_tiny_pth

SAPPHIRE_RAPIDS = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"})
ZEN4 = frozenset({"avx512f", "avx512_bf16"})
OLD_XEON = frozenset({"avx2", "avx512f"})


@pytest.fixture(autouse=True)
def fresh_announcements():
    dtype_preset._ANNOUNCED.clear()
    yield
    dtype_preset._ANNOUNCED.clear()


@pytest.mark.parametrize(
    "flags, jaxlib, expected, reason",
    [
        (
            SAPPHIRE_RAPIDS,
            "0.10.2",
            "float32",
            "CPU has amx_bf16, but XLA:CPU in jaxlib 0.10.2 runs bf16 convolutions slower than "
            "float32 here; set model.dtype to override",
        ),
        (
            ZEN4,
            "0.10.2",
            "float32",
            "CPU has avx512_bf16, but XLA:CPU in jaxlib 0.10.2 runs bf16 convolutions slower than "
            "float32 here; set model.dtype to override",
        ),
        (
            OLD_XEON,
            "0.10.2",
            "float32",
            "the CPU has no bfloat16 unit (amx_bf16, avx512_bf16); set model.dtype to override",
        ),
        (
            SAPPHIRE_RAPIDS,
            "0.11.0",
            "float32",
            "CPU has amx_bf16; bfloat16 speed with jaxlib 0.11.0 is not measured "
            "(benchmarks/cpu_matrix_units.py --whole-step); set model.dtype to override",
        ),
        (
            None,
            "0.10.2",
            "float32",
            "the CPU's features could not be read; set model.dtype to override",
        ),
    ],
)
def test_cpu_presets_follow_the_measured_table(flags, jaxlib, expected, reason):
    assert choose("cpu", flags, jaxlib) == Preset(expected, reason)


def test_a_measured_speed_up_makes_bfloat16_the_preset(monkeypatch):
    table = {("9.0.0", "amx_bf16"): 1.5, ("9.0.0", "avx512_bf16"): 0.8}
    monkeypatch.setattr(dtype_preset, "CPU_BF16_SPEEDUP", table)
    assert choose("cpu", SAPPHIRE_RAPIDS, "9.0.0").dtype == "bfloat16"
    assert "1.50x faster" in choose("cpu", SAPPHIRE_RAPIDS, "9.0.0").reason
    assert choose("cpu", ZEN4, "9.0.0").dtype == "float32"  # measured, but slower there


@pytest.mark.parametrize("backend", ["gpu", "tpu"])
def test_other_backends_keep_float32_until_measured(backend):
    preset = choose(backend, SAPPHIRE_RAPIDS, "0.10.2")
    assert preset.dtype == "float32"
    assert preset.reason.startswith(f"bfloat16 speed on {backend} is not measured yet")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16\nbugs\t\t: spectre\n")
    assert read_cpu_flags(info) == frozenset({"fpu", "avx512f", "amx_bf16"})
    info.write_text("processor\t: 0\nmodel name\t: some ARM\n")
    assert read_cpu_flags(info) is None  # no flags line
    assert read_cpu_flags(tmp_path / "absent") is None


def test_auto_is_said_once_and_an_explicit_dtype_says_nothing():
    said = []
    kwargs = dict(backend="cpu", cpu_flags=ZEN4, jaxlib="0.10.2", say=said.append)
    assert resolve_dtype("auto", **kwargs) == "float32"
    assert resolve_dtype("auto", **kwargs) == "float32"
    assert said == [
        "compute dtype: float32 (CPU has avx512_bf16, but XLA:CPU in jaxlib 0.10.2 runs bf16 "
        "convolutions slower than float32 here; set model.dtype to override)"
    ]
    assert resolve_dtype("bfloat16", **kwargs) == "bfloat16"
    assert resolve_dtype("float32", **kwargs) == "float32"
    assert len(said) == 1


@pytest.fixture
def prefers_bfloat16(monkeypatch):
    """This machine's preset, replaced by one that picks bfloat16 (so 'auto' != 'float32')."""
    monkeypatch.setattr(dtype_preset, "choose", lambda *a: Preset("bfloat16", "test preset"))


def _shipped(dtype):
    config = config_base.segment_config()
    config.checkpoint = str(SHIPPED_CHECKPOINT)
    if dtype is not None:
        config.model.dtype = dtype
    return config


def test_inference_jobs_and_the_segmenter_default_to_auto(prefers_bfloat16, capsys):
    assert config_base.segment_config().model.dtype == "auto"
    assert config_base.demo_config().model.dtype == "auto"
    assert config_base.train_config().model.dtype == "float32"  # training keeps its own
    assert load_model(_shipped(None))[0].dtype == "bfloat16"
    assert Segmenter.from_checkpoint(SHIPPED_CHECKPOINT).model_config.dtype == "bfloat16"
    assert capsys.readouterr().out.count("compute dtype: bfloat16 (test preset)") == 1


def test_an_explicit_dtype_wins_over_the_preset(prefers_bfloat16, capsys):
    assert load_model(_shipped("float32"))[0].dtype == "float32"
    seg = Segmenter.from_checkpoint(SHIPPED_CHECKPOINT, dtype="float32")
    assert seg.model_config.dtype == "float32"
    config = _shipped("auto")
    config.inference.preset = "accelerator"
    assert load_model(config)[0].dtype == "bfloat16"
    assert "compute dtype" not in capsys.readouterr().out


def test_auto_is_a_choice_of_inference_jobs_only():
    check_config(config_base.segment_config())
    train = config_base.train_config()
    train.model.dtype = "auto"
    with pytest.raises(ConfigError, match="model.dtype='auto' must be one of"):
        check_config(train)


def test_the_fingerprint_records_the_resolved_dtype(tmp_path, monkeypatch):
    """'auto' and the explicit dtype it resolves to are one job: a rerun skips its videos; when
    'auto' resolves to another dtype the outputs are another job's and are refused."""
    root = write_synthetic_davis(
        tmp_path / "davis", num_train=0, num_val=1, num_frames=3, height=32, width=48
    )
    pth = write_tiny_pth(tmp_path / "tiny.pth")
    workdir = tmp_path / "out"
    monkeypatch.setattr(dtype_preset, "choose", lambda *a: Preset("float32", "test preset"))
    auto = tiny_run_config(davis2017_val, pth, root=str(root))
    assert auto.model.dtype == "auto"
    run(auto, str(workdir))
    job = json.loads((workdir / "predictions" / "job.json").read_text())
    assert job["model"]["dtype"] == "float32"
    explicit = tiny_run_config(davis2017_val, pth, root=str(root))
    explicit.model.dtype = "float32"
    before = {p: p.stat().st_mtime_ns for p in (workdir / "predictions").rglob("*.png")}
    run(explicit, str(workdir))
    after = {p: p.stat().st_mtime_ns for p in (workdir / "predictions").rglob("*.png")}
    assert before and before == after  # skipped: the same job
    monkeypatch.setattr(dtype_preset, "choose", lambda *a: Preset("bfloat16", "test preset"))
    with pytest.raises(StaleOutputError, match="model.dtype"):
        run(tiny_run_config(davis2017_val, pth, root=str(root)), str(workdir))
