"""End-to-end 2-step training of each config's tiny variant (what CI runs), on tiny data trees the
tests write: a generic images/ + masks/ folder (stage 1), the DAVIS layout (stage 2, initialised from
stage 1's workdir), synthetic videos (CPU config). Also: logs, TensorBoard files, self-describing
checkpoints, release export."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from stm_jax import checkpoint_io
from stm_jax.data.synthetic import make_synthetic_video, write_synthetic_davis
from stm_jax.io.images import write_palette_png, write_rgb
from stm_jax.jobs import train as train_job
from stm_jax.training.metric_writer import read_jsonl
from tests.train_fixtures import read_tensorboard_scalars  # (+ persistent compilation cache)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def load_config(name: str, arg: str = "tiny"):
    spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def write_image_folder(root: Path, count: int = 3) -> Path:
    for i in range(count):
        video = make_synthetic_video(i, num_frames=1, height=40, width=48, num_objects=2)
        write_rgb(root / "images" / f"img{i}.jpg", video.frames[0])
        write_palette_png(root / "masks" / f"img{i}.png", video.labels[0])
    return root


def _check_logs(workdir: Path, steps: int):
    records = read_jsonl(workdir / "metrics.jsonl")
    train = [r for r in records if "train/loss" in r]
    assert [r["step"] for r in train] == list(range(1, steps + 1))
    for key in ("train/lr", "train/grad_norm", "train/clips_per_s", "train/max_skip"):
        assert key in train[0]
    (events_file,) = (workdir / "tensorboard").iterdir()
    assert events_file.name.startswith("events.out.tfevents.")
    losses = read_tensorboard_scalars(workdir / "tensorboard")["train/loss"]
    assert [s for s, _ in losses] == [r["step"] for r in train]
    np.testing.assert_allclose([v for _, v in losses], [r["train/loss"] for r in train], rtol=1e-6)
    assert (workdir / "config.json").is_file()


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stage1")
    config = load_config("pretrain_static")
    config.data.sources.images.root = str(write_image_folder(tmp / "images"))
    result = train_job.run(config, str(tmp / "run"))
    return tmp / "run", result


@pytest.mark.slow
def test_pretrain_static_tiny(stage1):
    workdir, result = stage1
    assert result["step"] == 2 and np.isfinite(result["loss"])
    _check_logs(workdir, 2)
    model_config, variables = checkpoint_io.load_trained_model(workdir)
    assert model_config.backbone == "tiny" and model_config.max_objects == 3
    np.testing.assert_array_equal(
        variables["params"]["Decoder"]["pred2"]["kernel"],
        result["variables"]["params"]["Decoder"]["pred2"]["kernel"],
    )


@pytest.mark.slow
def test_main_davis_tiny_from_stage1(stage1, tmp_path):
    davis = write_synthetic_davis(
        tmp_path / "davis", num_train=2, num_val=1, height=32, width=48, num_frames=5
    )
    config = load_config("main_davis_ytvos")
    config.data.sources.davis.root = str(davis)
    config.eval.source.root = str(davis)
    config.init_from = str(stage1[0])
    result = train_job.run(config, str(tmp_path / "run"))
    assert result["step"] == 2 and 0.0 <= result["eval_J&F"] <= 1.0
    _check_logs(tmp_path / "run", 2)
    meta = checkpoint_io.read_meta(tmp_path / "run")  # the best step, with its score
    assert meta["step"] == 2 and meta["score"] == pytest.approx(result["eval_J&F"])


@pytest.mark.slow
def test_synthetic_cpu_tiny_and_release_export(tmp_path):
    config = load_config("synthetic_cpu")
    result = train_job.run(config, str(tmp_path / "run"))
    assert result["step"] == 2 and "eval_J&F" in result
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert any("eval/baseline_J&F" in r for r in records)
    out = checkpoint_io.export_for_release(tmp_path / "run", tmp_path / "export")
    assert out.is_dir()
    config_a, variables_a = checkpoint_io.load_trained_model(tmp_path / "export")
    config_b, variables_b = checkpoint_io.load_trained_model(tmp_path / "run")
    assert config_a == config_b
    np.testing.assert_array_equal(
        variables_a["params"]["Decoder"]["pred2"]["kernel"],
        variables_b["params"]["Decoder"]["pred2"]["kernel"],
    )
    size = sum(p.stat().st_size for p in (tmp_path / "export").rglob("*") if p.is_file())
    assert size < 20e6
