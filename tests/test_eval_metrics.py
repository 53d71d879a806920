"""J, F and the per-object statistics on hand-made masks whose answers are worked out by hand."""

import numpy as np
import pytest

from stm_jax.evaluation.boundary import boundary_radius, disk, seg2bmap
from stm_jax.evaluation.davis import score_sequence_arrays
from stm_jax.evaluation.metrics import db_statistics, decay_bins, frame_scores


def _square(top, left, size, shape=(40, 40), label=1):
    labels = np.zeros(shape, np.uint8)
    labels[top : top + size, left : left + size] = label
    return labels


def _jf(gt, pred):
    j, f = frame_scores(gt, pred, 1)
    return j[0], f[0]


def test_radius_matches_official_examples():
    assert boundary_radius((480, 854)) == 8
    assert boundary_radius((480, 910)) == 9
    assert boundary_radius((1080, 1920)) == 18
    assert boundary_radius((40, 40)) == 1  # ceil(0.008 * 56.6)
    assert boundary_radius((40, 40), bound_th=3) == 3  # >= 1 means pixels


def test_disk_is_skimage_disk():
    morphology = pytest.importorskip("skimage.morphology")
    for radius in range(0, 21):
        np.testing.assert_array_equal(disk(radius), morphology.disk(radius))
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def test_seg2bmap_square_and_image_border():
    # Square rows/cols 10..19: boundary = row 9 (x 9..19), col 9 (y 10..19), col 19 and row 19.
    bmap = seg2bmap(_square(10, 10, 10))
    assert bmap.sum() == 11 + 10 + 19
    assert bmap[9, 9:20].all() and bmap[10:20, 9].all()
    assert bmap[10:19, 10:19].sum() == 0
    # Left half of the image: no boundary on the image border, only the column before the edge,
    # including the last row (which compares with its east neighbour only).
    half = np.zeros((40, 40), bool)
    half[:, :20] = True
    bmap = seg2bmap(half)
    assert bmap.sum() == 40 and bmap[:, 19].all()
    # A full or empty image has no boundary at all.
    assert seg2bmap(np.ones((5, 7))).sum() == 0
    assert seg2bmap(np.zeros((5, 7))).sum() == 0


def test_empty_and_full():
    empty, full = np.zeros((40, 40), np.uint8), np.ones((40, 40), np.uint8)
    assert _jf(empty, empty) == (1.0, 1.0)  # absent from both
    assert _jf(full, full) == (1.0, 1.0)
    # Full GT vs empty prediction: J = 0, but neither has a boundary, so (officially) F = 1.
    assert _jf(full, empty) == (0.0, 1.0)
    # A GT object but an empty prediction: P = 1, R = 0 -> F = 0; and the converse.
    assert _jf(_square(10, 10, 10), empty) == (0.0, 0.0)
    assert _jf(empty, _square(10, 10, 10)) == (0.0, 0.0)


def test_one_pixel_shift_is_within_tolerance():
    gt = _square(10, 10, 10)
    j, f = _jf(gt, _square(10, 11, 10))
    assert j == pytest.approx(90 / 110)
    assert f == 1.0  # every boundary pixel has a partner within r = 1


def test_three_pixel_shift_hand_computed():
    # Pred cols 13..22 vs GT cols 10..19: overlap 70 of union 130. Of the 40 predicted boundary
    # pixels, 20 lie within the cross (r = 1) of a GT boundary pixel (row 9 x 12..20, col 12 y
    # 10/18/19, row 19 x 13..20), and symmetrically 20 of the 40 GT ones: P = R = F = 0.5.
    j, f = _jf(_square(10, 10, 10), _square(10, 13, 10))
    assert j == pytest.approx(7 / 13)
    assert f == pytest.approx(0.5)


def test_thin_structure():
    gt = np.zeros((40, 40), np.uint8)
    gt[5:31, 20] = 1
    assert _jf(gt, gt) == (1.0, 1.0)
    shifted = np.roll(gt, 1, axis=1)
    # No overlap at all, yet the 2-px-wide boundaries of the two lines are within 1 px of each
    # other.
    assert _jf(gt, shifted) == (0.0, 1.0)
    far = np.roll(gt, 3, axis=1)
    assert _jf(gt, far) == (0.0, 0.0)


def test_boundary_at_image_border():
    gt = np.zeros((40, 40), np.uint8)
    gt[:, :20] = 1
    near = np.zeros_like(gt)
    near[:, :19] = 1
    assert _jf(gt, near) == (pytest.approx(19 / 20), 1.0)
    far = np.zeros_like(gt)
    far[:, :18] = 1
    # Boundaries are only the columns 19 vs 17, 2 px apart > r = 1; the image edge adds none.
    assert _jf(gt, far) == (pytest.approx(18 / 20), 0.0)


def test_multi_object_frame_and_ignored_ids():
    gt = _square(2, 2, 10) + _square(20, 20, 10, label=2)
    gt[35:, 35:] = 3  # id above num_objects: ignored, as official
    pred = _square(2, 2, 10) + _square(20, 21, 10, label=2)
    j, f = frame_scores(gt, pred, 2)
    np.testing.assert_allclose(j, [1.0, 90 / 110])
    np.testing.assert_allclose(f, [1.0, 1.0])


def test_void_is_background():
    frames = np.zeros((3, 40, 40), np.uint8)
    frames[:, 10:20, 10:20] = 1
    frames[:, 10:20, 20:30] = 255  # void region next to the object
    pred = frames.copy()
    pred[pred == 255] = 1  # predicting the void region as object is a false positive
    (scores,) = score_sequence_arrays("seq", frames, pred)
    assert scores.object_id == 1 and scores.j.shape == (1,)  # only the middle frame is evaluated
    assert scores.j[0] == pytest.approx(100 / 200)
    exact = score_sequence_arrays("seq", frames, np.where(frames == 255, 0, frames))
    assert exact[0].j[0] == 1.0 and exact[0].f[0] == 1.0


def test_first_and_last_frame_excluded():
    gt = np.zeros((5, 40, 40), np.uint8)
    gt[:, 5:15, 5:15] = 1
    pred = gt.copy()
    pred[0] = 0  # wrong first and last frames do not count
    pred[-1] = 0
    (scores,) = score_sequence_arrays("seq", gt, pred)
    np.testing.assert_array_equal(scores.j, [1, 1, 1])


def test_statistics_hand_computed():
    values = np.linspace(1.0, 0.1, 10)  # 1.0, 0.9, ..., 0.1
    # ids = round(linspace(1, 10, 5) + 1e-10) - 1 = [0, 2, 5, 7, 9]
    assert decay_bins(10) == [(0, 3), (2, 6), (5, 8), (7, 10)]
    mean, recall, decay = db_statistics(values)
    assert mean == pytest.approx(0.55)
    assert recall == pytest.approx(0.5)  # 1.0 .. 0.6 are > 0.5; 0.5 itself is not
    assert decay == pytest.approx((1.0 + 0.9 + 0.8) / 3 - (0.3 + 0.2 + 0.1) / 3)


def test_decay_rounds_halves_up_like_official():
    # linspace(1, 7, 5) = 1, 2.5, 4, 5.5, 7: the official +1e-10 rounds 2.5 to 3 (numpy alone gives
    # 2).
    assert decay_bins(7) == [(0, 3), (2, 4), (3, 6), (5, 7)]
    values = np.array([1.0, 1.0, 0.1, 0.2, 0.2, 0.4, 0.6])
    assert db_statistics(values)[2] == pytest.approx(0.7 - 0.5)  # numpy's rounding would give 0.5
    assert db_statistics([0.7]) == pytest.approx((0.7, 1.0, 0.0))
    assert all(np.isnan(db_statistics([])))


def test_decay_without_uint8_overflow():
    n = 300  # official ids wrap at 256: its last bin would be values[224:44], i.e. empty -> NaN
    values = np.zeros(n)
    values[:75] = 1.0
    assert decay_bins(n) == [(0, 76), (75, 151), (150, 225), (224, 300)]
    assert db_statistics(values)[2] == pytest.approx(75 / 76)
