"""Outputs tied to what made them: a rerun skips only the same job's outputs, refuses or redoes others."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from configs import davis2017_val
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.inference.sequence_output import StaleOutputError
from stm_jax.jobs.evaluate import evaluate_davis
from stm_jax.jobs.segment import run
from tests.model_fixtures import tiny_run_config, write_tiny_pth


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    return write_tiny_pth(folder / "a.pth", seed=0), write_tiny_pth(folder / "b.pth", seed=1)


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    return write_synthetic_davis(
        tmp_path_factory.mktemp("davis"), num_train=0, num_val=2, num_frames=5, height=32, width=48
    )


def _pngs(workdir):
    return {
        p.relative_to(workdir): np.asarray(Image.open(p))
        for p in sorted((workdir / "predictions").rglob("*.png"))
    }


def _mtimes(workdir):
    return {p: p.stat().st_mtime_ns for p in (workdir / "predictions").rglob("*.png")}


def test_other_checkpoint_is_refused_then_redone_with_overwrite(tmp_path, weights, davis_root):
    a, b = weights
    run(tiny_run_config(davis2017_val, a, root=str(davis_root)), str(tmp_path / "w"))
    before = _mtimes(tmp_path / "w")
    with pytest.raises(
        StaleOutputError,
        match=r"2 video\(s\).*checkpoint \(\S*a\.pth -> \S*b\.pth\).*overwrite=True",
    ):
        run(tiny_run_config(davis2017_val, b, root=str(davis_root)), str(tmp_path / "w"))
    assert _mtimes(tmp_path / "w") == before  # nothing touched
    config = tiny_run_config(davis2017_val, b, root=str(davis_root))
    config.overwrite = True
    run(config, str(tmp_path / "w"))
    run(tiny_run_config(davis2017_val, b, root=str(davis_root)), str(tmp_path / "fresh"))
    redone, fresh = _pngs(tmp_path / "w"), _pngs(tmp_path / "fresh")
    assert redone.keys() == fresh.keys()
    for key in fresh:
        np.testing.assert_array_equal(redone[key], fresh[key])
    recorded = json.loads(next((tmp_path / "w/predictions").glob("*/fingerprint.json")).read_text())
    assert recorded["checkpoint"]["path"] == str(b.resolve())


def test_config_or_input_change_is_refused_and_same_job_skips(
    tmp_path, weights, davis_root, capsys
):
    a, _ = weights
    workdir = str(tmp_path / "w")
    run(tiny_run_config(davis2017_val, a, root=str(davis_root)), workdir)
    before = _mtimes(tmp_path / "w")
    run(tiny_run_config(davis2017_val, a, root=str(davis_root)), workdir)
    assert "Skipping 2 video(s) already segmented by this job" in capsys.readouterr().out
    assert _mtimes(tmp_path / "w") == before
    config = tiny_run_config(davis2017_val, a, root=str(davis_root))
    config.memory.mem_every = 2
    with pytest.raises(StaleOutputError, match="memory.mem_every"):
        run(config, workdir)
    frame = next((davis_root / "JPEGImages/480p").rglob("00002.jpg"))
    stamp = frame.stat().st_mtime_ns
    os.utime(frame, ns=(stamp + 10**9, stamp + 10**9))  # the input changed since
    try:
        with pytest.raises(StaleOutputError, match=r"1 video\(s\).*inputs\.frames_sha256"):
            run(tiny_run_config(davis2017_val, a, root=str(davis_root)), workdir)
    finally:
        os.utime(frame, ns=(stamp, stamp))


def test_a_recorded_but_incomplete_folder_is_redone(tmp_path, weights, davis_root):
    a, _ = weights
    config = tiny_run_config(davis2017_val, a, root=str(davis_root))
    run(config, str(tmp_path))
    victim = sorted((tmp_path / "predictions").glob("*/00003.png"))[0]
    victim.unlink()
    run(config, str(tmp_path))
    assert victim.is_file()


def test_results_csv_names_the_checkpoint_and_fingerprint(tmp_path, weights, davis_root):
    a, _ = weights
    evaluate_davis(tiny_run_config(davis2017_val, a, root=str(davis_root)), str(tmp_path))
    header, row = (tmp_path / "global_results-val.csv").read_text().splitlines()
    columns = dict(zip(header.split(","), row.split(",")))
    assert columns["Checkpoint"] == str(a.resolve())
    job = json.loads((tmp_path / "predictions/job.json").read_text())
    assert job["checkpoint"]["path"] == str(a.resolve()) and len(columns["Fingerprint"]) == 12
    assert columns["Code"].startswith("stm_jax ")


def test_library_callers_get_the_range_checks_too(tmp_path, weights, davis_root):
    from stm_jax.cli_errors import ConfigError

    config = tiny_run_config(davis2017_val, weights[0], root=str(davis_root))
    config.memory.mem_every = 0
    with pytest.raises(ConfigError, match="memory.mem_every=0 must be >= 1"):
        run(config, str(tmp_path))
    assert not (tmp_path / "predictions").exists()
