"""STCN's training recipe: configs/stcn_static.py and configs/stcn_main.py hold STCN's numbers (train.py
/ hyper_para.py), their tiny variants train through the train job (main.py for stage 0, stage 3 from
its workdir, then a resume), and the STCN family trains with the full softmax and remats."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax import checkpoint_io
from stm_jax.cli_errors import ConfigError
from stm_jax.data.sampling import max_skip_at_step, max_skip_stcn
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.jobs import train as train_job
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import get_family
from stm_jax.training import step as step_lib
from stm_jax.training.forward import training_memory
from stm_jax.training.init import initial_variables
from stm_jax.training.loss import bootstrap_fraction
from stm_jax.training.metric_writer import read_jsonl
from stm_jax.training.optimizer import make_schedule
from stm_jax.training.remat import remat_types
from tests.test_train_e2e import load_config, write_image_folder
from tests.train_fixtures import cache_env, random_batch

ROOT = Path(__file__).resolve().parents[1]


def _train_losses(workdir: Path) -> dict[int, float]:
    return {
        r["step"]: r["train/loss"]
        for r in read_jsonl(workdir / "metrics.jsonl")
        if "train/loss" in r
    }


@pytest.fixture(scope="module")
def stage0(tmp_path_factory):
    """configs/stcn_static.py:tiny trained for 2 steps by main.py, as a user runs it."""
    tmp = tmp_path_factory.mktemp("stcn_s0")
    images = write_image_folder(tmp / "images")
    command = [
        sys.executable,
        "main.py",
        "--config",
        "configs/stcn_static.py:tiny",
        "--workdir",
        str(tmp / "run"),
        f"--config.data.sources.images.root={images}",
    ]
    env = {**os.environ, **cache_env(), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp / "run", done.stdout + done.stderr


@pytest.mark.slow
def test_stcn_static_tiny_trains_through_main_py(stage0):
    workdir, output = stage0
    losses = _train_losses(workdir)
    assert sorted(losses) == [1, 2] and all(np.isfinite(v) for v in losses.values())
    assert "[train] done at step 2" in output
    # The health report names STCN's modules, each with a gradient.
    assert "grad norm per module: decoder" in output and "value_encoder" in output
    model_config, variables = checkpoint_io.load_trained_model(workdir, which="latest")
    assert model_config.family == "stcn" and model_config.value_backbone == "tiny"
    assert set(variables["params"]) == {
        "key_encoder",
        "key_proj",
        "key_comp",
        "value_encoder",
        "decoder",
    }


@pytest.mark.slow
def test_stcn_main_tiny_from_stage0_then_resumes(stage0, tmp_path, capsys):
    davis = write_synthetic_davis(
        tmp_path / "davis", num_train=2, num_val=1, height=32, width=48, num_frames=5
    )
    config = load_config("stcn_main")
    config.data.sources.davis.root = str(davis)
    config.eval.source.root = str(davis)
    config.init_from = str(stage0[0])
    config.train.async_checkpoint = False
    run = tmp_path / "run"
    result = train_job.run(config, str(run))
    assert result["step"] == 2 and np.isfinite(result["loss"])
    assert 0.0 <= result["eval_J&F"] <= 1.0
    assert checkpoint_io.read_meta(run, which="latest")["step"] == 2
    records = read_jsonl(run / "metrics.jsonl")
    # STCN's curriculum starts at 5; 2 steps of batch 2: step 1 has seen half the run -> 25.
    assert [r["train/max_skip"] for r in records if "train/loss" in r] == [5, 25]
    # Stage 0's weights were loaded (same family and sizes: every leaf from the source).
    out = capsys.readouterr().out
    assert f"initialised from our checkpoint {stage0[0]}; 103/103 param leaves" in out
    config.train.num_steps, config.train.eval_every = 3, 0  # (evaluation was checked above)
    # STCN's skip curriculum is by fractions of the run: more steps change the skips of those
    # already trained, so the resume must say it continues with changed settings.
    with pytest.raises(ConfigError, match="train.num_steps: 2 -> 3"):
        train_job.run(config, str(run))
    config.resume_changed = True
    resumed = train_job.run(config, str(run))  # finds step 2 in the workdir
    assert f"resumed step 2 from {run}/checkpoints" in capsys.readouterr().out
    assert resumed["step"] == 3 and np.isfinite(resumed["loss"])
    assert sorted(_train_losses(run)) == [1, 2, 3]
    assert checkpoint_io.read_meta(run, which="latest")["step"] == 3


def test_stcn_static_holds_stcn_stage0_recipe():
    c = load_config("stcn_static", "")
    assert c.model.family == "stcn" and ModelConfig.from_config(c.model).backbone == "resnet50"
    assert ModelConfig.from_config(c.model).value_backbone == "resnet18"
    d, t = c.data, c.train
    assert (d.batch_size, d.num_frames, d.crop_size, d.resize_shorter) == (16, 3, 384, 384)
    assert (d.max_train_objects, d.paste_prob) == (1, 0.0)
    assert sorted(d.sources) == ["big", "duts_te", "duts_tr", "ecssd", "fss", "hrsod"]
    assert all(s.kind == "image_folder" and s.binary for s in d.sources.values())
    assert d.sources.big.ratio == 750 and d.sources.hrsod.ratio == 5 * 2010  # BIG, HRSOD x5
    assert (t.num_steps, t.lr, t.weight_decay, t.detach_memory) == (300_000, 1e-5, 1e-7, False)
    schedule = make_schedule(t)
    lrs = [float(schedule(s)) for s in (0, 149_999, 150_000, 299_999)]
    np.testing.assert_allclose(lrs, [1e-5, 1e-5, 1e-6, 1e-6], rtol=1e-6)
    assert t.loss == "bootstrap"
    assert (t.bootstrap_start, t.bootstrap_end, t.bootstrap_final_p) == (20_000, 70_000, 0.15)


def test_stcn_main_holds_stcn_stage3_recipe():
    c = load_config("stcn_main", "")
    assert c.model.family == "stcn"
    d, t = c.data, c.train
    assert (d.batch_size, d.num_frames, d.crop_size, d.max_train_objects) == (8, 3, 384, 2)
    # DAVIS x5 (60 videos) beside 3464 YouTube-VOS videos.
    assert d.sources.davis.ratio == pytest.approx(300 / 3764)
    assert d.sources.davis.ratio + d.sources.youtube_vos.ratio == pytest.approx(1.0)
    assert (t.num_steps, t.lr, t.weight_decay, t.detach_memory) == (150_000, 1e-5, 1e-7, False)
    schedule = make_schedule(t)
    lrs = [float(schedule(s)) for s in (0, 124_999, 125_000, 149_999)]
    np.testing.assert_allclose(lrs, [1e-5, 1e-5, 1e-6, 1e-6], rtol=1e-6)
    assert t.loss == "bootstrap"
    assert (t.bootstrap_start, t.bootstrap_end, t.bootstrap_final_p) == (20_000, 70_000, 0.15)
    # STCN's BootstrappedCE: p = 0.15 + 0.85 (70k - it) / 50k between 20k and 70k.
    kept = [float(bootstrap_fraction(s, 20_000, 70_000, 0.15)) for s in (0, 20_000, 45_000, 70_000)]
    np.testing.assert_allclose(
        kept + [float(bootstrap_fraction(10**6, 20_000, 70_000, 0.15))],
        [1.0, 1.0, 0.575, 0.15, 0.15],
        rtol=1e-6,
    )
    # The skip curriculum as the trainer resolves it (total clips = 150k updates x 8 clips):
    # 5, then 10 / 15 / 20 / 25 from 10 / 20 / 30 / 40 % of the run, back to 5 from 90 %.
    data = train_job.resolved_data_config(c)
    assert data.max_skip.total_clips == 1_200_000
    steps = (0, 14_999, 15_000, 29_999, 30_000, 45_000, 60_000, 134_999, 135_000, 149_999)
    skips = [max_skip_at_step(s, d.batch_size, data.max_skip) for s in steps]
    assert skips == [5, 5, 10, 10, 15, 20, 25, 25, 5, 5]


def test_stcn_skip_schedule_by_hand():
    values, fractions = (5, 10, 15, 20, 25, 5), (0.1, 0.2, 0.3, 0.4, 0.9)
    progress = (0.0, 0.0999, 0.1, 0.15, 0.2, 0.35, 0.4, 0.8999, 0.9, 1.0)
    expected = [5, 5, 10, 10, 15, 20, 25, 25, 5, 5]
    assert [max_skip_stcn(p, values, fractions) for p in progress] == expected
    # BL30K's stage switches back at 80 % instead.
    assert max_skip_stcn(0.85, values, (0.1, 0.2, 0.3, 0.4, 0.8)) == 5


def test_stcn_trains_with_the_full_softmax_and_infers_with_top_20():
    stcn = ModelConfig(family="stcn")
    train = training_memory(stcn)
    assert (train.similarity, train.top_k) == ("l2", 0)
    inference = MemoryConfig.from_config({}, get_family(stcn).memory_defaults)
    assert (inference.similarity, inference.top_k) == ("l2", 20)
    assert training_memory(stcn, {"top_k": 5}).top_k == 5  # a run's own setting wins


@pytest.mark.slow
def test_stcn_remat_keeps_loss_and_gradients():
    config = ModelConfig(
        family="stcn",
        backbone="tiny",
        value_backbone="tiny",
        key_dim=8,
        value_dim=16,
        decoder_dim=16,
        max_objects=2,
    )
    family = get_family(config)
    assert set(remat_types("all", family)) > set(remat_types("encoders", family)) != set()
    variables, _ = initial_variables(config, "", 0)
    variables = jax.tree.map(jnp.asarray, variables)
    batch = {k: jnp.asarray(v) for k, v in random_batch(batch=1, size=16).items()}
    results = {}
    for mode in ("", "all"):
        train = load_config("stcn_main").train
        train.remat = mode
        loss = functools.partial(
            step_lib._loss_fn,
            batch_stats=variables["batch_stats"],
            batch=batch,
            step=jnp.int32(1),  # tiny bootstrap: the hardest 57.5 % of the pixels
            model_config=config,
            train_config=train,
        )
        results[mode] = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    (loss_plain, _), grads_plain = results[""]
    (loss_remat, _), grads_remat = results["all"]
    assert np.isfinite(float(loss_plain)) and float(loss_plain) > 0
    np.testing.assert_allclose(loss_remat, loss_plain, rtol=1e-5)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads_plain)) > 0
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
        grads_remat,
        grads_plain,
    )
