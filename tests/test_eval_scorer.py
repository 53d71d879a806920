"""The DAVIS scorer end to end on a generated DAVIS tree: CSVs, errors, 2016 mode, merging."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stm_jax.evaluation.davis import ScoringError, score_davis
from stm_jax.evaluation.metrics import db_statistics, frame_scores
from stm_jax.evaluation.results import (
    GLOBAL_COLUMNS,
    load_results,
    merge_results,
    read_results_csv,
    save_results,
    write_results_csv,
)
from stm_jax.evaluation.synthetic import blob_sequence, perturb
from stm_jax.io.images import read_label_mask, write_palette_png

REPO = Path(__file__).resolve().parents[1]
SEQUENCES = {"bear": (5, 2), "camel": (6, 3), "dogs": (4, 1)}  # name: (frames, objects)
SHAPE = (48, 80)


def _write_sequence(root: Path, labels: np.ndarray) -> None:
    for t, frame in enumerate(labels):
        write_palette_png(root / f"{t:05d}.png", frame)


@pytest.fixture(scope="module")
def davis_tree(tmp_path_factory):
    """A tiny DAVIS root (Annotations/480p, ImageSets/2017 and 2016) and perturbed predictions."""
    base = tmp_path_factory.mktemp("davis")
    gt_root, pred_root = base / "DAVIS", base / "pred"
    rng = np.random.default_rng(7)
    arrays = {}
    for name, (frames, objects) in SEQUENCES.items():
        gt = blob_sequence(rng, frames, *SHAPE, objects)
        pred = perturb(rng, gt, max_shift=2)
        _write_sequence(gt_root / "Annotations" / "480p" / name, gt)
        _write_sequence(pred_root / name, pred)
        arrays[name] = (gt, pred)
    for year in ("2017", "2016"):
        (gt_root / "ImageSets" / year).mkdir(parents=True)
        (gt_root / "ImageSets" / year / "val.txt").write_text("\n".join(SEQUENCES) + "\n")
    return gt_root, pred_root, arrays


def _direct(arrays):
    """Per-object (J-Mean, F-Mean) and global numbers straight from the metric functions."""
    rows, stats = {}, []
    for name, (gt, pred) in arrays.items():
        objects = int(gt[0].max())
        per_frame = [frame_scores(gt[t], pred[t], objects) for t in range(1, len(gt) - 1)]
        j = np.array([p[0] for p in per_frame]).T
        f = np.array([p[1] for p in per_frame]).T
        for k in range(objects):
            js, fs = db_statistics(j[k]), db_statistics(f[k])
            rows[f"{name}_{k + 1}"] = (js[0], fs[0])
            stats.append(js + fs)
    stats = np.array(stats).mean(axis=0)
    j_m, j_r, j_d, f_m, f_r, f_d = stats
    values = ((j_m + f_m) / 2, j_m, j_r, j_d, f_m, f_r, f_d)
    return rows, dict(zip(GLOBAL_COLUMNS, values, strict=True))


def test_scorer_matches_metric_functions_and_csv_roundtrip(davis_tree, tmp_path):
    gt_root, pred_root, arrays = davis_tree
    results = score_davis(gt_root, pred_root, progress=False)
    rows, expected = _direct(arrays)
    assert [o.name for o in results.objects] == list(rows)
    for obj in results.objects:
        assert obj.j_statistics()[0] == pytest.approx(rows[obj.name][0], abs=1e-12)
        assert obj.f_statistics()[0] == pytest.approx(rows[obj.name][1], abs=1e-12)
    scores = results.global_scores()
    for column in GLOBAL_COLUMNS:
        assert scores[column] == pytest.approx(expected[column], abs=1e-12)
    assert 0.2 < scores["J-Mean"] < 0.99  # the perturbation makes the test non-trivial

    global_csv, sequence_csv = write_results_csv(results, tmp_path, "val")
    lines = global_csv.read_text().split("\n")
    assert lines[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert lines[1] == ",".join(f"{expected[c]:.3f}" for c in GLOBAL_COLUMNS) and lines[2] == ""
    seq_lines = sequence_csv.read_text().splitlines()
    assert seq_lines[0] == "Sequence,J-Mean,F-Mean"
    assert seq_lines[1] == f"bear_1,{rows['bear_1'][0]:.3f},{rows['bear_1'][1]:.3f}"
    read_global, read_rows = read_results_csv(tmp_path, "val")
    for column in GLOBAL_COLUMNS:
        assert read_global[column] == pytest.approx(expected[column], abs=5e-4)
    assert read_rows.keys() == rows.keys()
    for name, (j_mean, f_mean) in rows.items():
        assert read_rows[name] == pytest.approx((j_mean, f_mean), abs=5e-4)


def test_merge_of_halves_equals_whole(davis_tree, tmp_path):
    gt_root, pred_root, _ = davis_tree
    whole = score_davis(gt_root, pred_root, progress=False, num_threads=1)
    first = score_davis(gt_root, pred_root, ["camel"], progress=False)
    second = score_davis(gt_root, pred_root, ["dogs", "bear"], progress=False)
    # As two processes would: each saves its partial results, one process merges them.
    first = load_results(save_results(first, tmp_path / "process0.json"))
    second = load_results(save_results(second, tmp_path / "process1.json"))
    merged = merge_results([first, second], order=list(SEQUENCES))
    assert merged.global_scores() == whole.global_scores()  # exactly, not approximately
    assert merged.per_object_means() == whole.per_object_means()
    with pytest.raises(ValueError, match="camel"):
        merge_results([first, first])


def test_year_2016_merges_objects(davis_tree):
    gt_root, pred_root, arrays = davis_tree
    results = score_davis(gt_root, pred_root, year=2016, progress=False)
    assert [o.name for o in results.objects] == [f"{n}_1" for n in SEQUENCES]
    gt, pred = arrays["camel"]
    j, f = frame_scores((gt[2] > 0).astype(np.uint8), (pred[2] > 0).astype(np.uint8), 1)
    camel = results.objects[1]
    assert camel.j[1] == j[0] and camel.f[1] == f[0]


def test_errors_name_the_file(davis_tree, tmp_path):
    gt_root, _, arrays = davis_tree
    gt, pred = arrays["bear"]

    def fresh(name):
        root = tmp_path / name
        _write_sequence(root / "bear", pred)
        return root, root / "bear" / "00002.png"

    root, victim = fresh("missing")
    victim.unlink()
    with pytest.raises(ScoringError, match=r"00002\.png: missing prediction"):
        score_davis(gt_root, root, ["bear"], progress=False)

    root, victim = fresh("size")
    write_palette_png(victim, np.zeros((SHAPE[0], SHAPE[1] + 2), np.uint8))
    with pytest.raises(ScoringError, match=r"00002\.png: prediction size 82x48 differs"):
        score_davis(gt_root, root, ["bear"], progress=False)

    root, victim = fresh("ids")
    bad = read_label_mask(victim).copy()
    bad[0, 0] = 3  # bear has 2 objects
    write_palette_png(victim, bad)
    with pytest.raises(ScoringError, match=r"00002\.png: contains object id 3 but .* only 2"):
        score_davis(gt_root, root, ["bear"], progress=False)

    with pytest.raises(ScoringError, match="no prediction folder"):
        score_davis(gt_root, tmp_path / "nothing", ["bear"], progress=False)


def test_score_job_via_main(davis_tree, tmp_path):
    gt_root, pred_root, arrays = davis_tree
    out = tmp_path / "out"
    command = [
        sys.executable,
        "main.py",
        "--config",
        "configs/score.py",
        "--workdir",
        str(out),
        f"--config.gt={gt_root}",
        f"--config.pred={pred_root}",
        "--config.sequences=camel,dogs",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Global results for val" in done.stdout and "camel_3" in done.stdout
    read_global, read_rows = read_results_csv(out, "val")
    assert list(read_rows) == ["camel_1", "camel_2", "camel_3", "dogs_1"]
    rows, _ = _direct({k: arrays[k] for k in ("camel", "dogs")})
    for name, value in rows.items():
        assert read_rows[name] == pytest.approx(value, abs=5e-4)
