"""J and F cross-checked against vos-benchmark (a port of the official toolkit), generated data."""

import numpy as np
import pytest

from stm_jax.evaluation.boundary import seg2bmap
from stm_jax.evaluation.davis import score_sequence_arrays
from stm_jax.evaluation.synthetic import blob_sequence, perturb

evaluator = pytest.importorskip("vos_benchmark.evaluator")
vos_utils = pytest.importorskip("vos_benchmark.utils")


def test_seg2bmap_matches_official_port():
    rng = np.random.default_rng(1)
    for shape in [(1, 1), (1, 9), (9, 1), (17, 23), (64, 48)]:
        for density in (0.1, 0.5, 0.9):
            seg = rng.random(shape) < density
            np.testing.assert_array_equal(seg2bmap(seg), vos_utils._seg2bmap(seg.copy()))


@pytest.mark.parametrize(
    "seed,shape,frames,objects",
    [(0, (120, 214), 6, 3), (1, (97, 131), 5, 4), (2, (240, 427), 4, 2)],
)
def test_per_frame_and_mean_j_f_match_vos_benchmark(seed, shape, frames, objects):
    rng = np.random.default_rng(seed)
    gt = blob_sequence(rng, frames, *shape, objects)
    pred = perturb(rng, gt)
    pred[2] = 0  # a frame where every object is lost (F edge cases)
    ours = score_sequence_arrays(f"seq{seed}", gt, pred)

    reference = evaluator.Evaluator(name=f"seq{seed}")
    for t in range(1, frames - 1):  # both skip the first and last frame
        reference.feed_frame(pred[t], gt[t])
    means_j, means_f = reference.conclude()  # x100 and only for ids seen in the GT

    assert [o.object_id for o in ours] == list(range(1, objects + 1))
    for scores in ours:
        k = scores.object_id
        np.testing.assert_allclose(scores.j, reference.object_iou[k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(scores.f, reference.boundary_f[k], rtol=0, atol=1e-12)
        assert scores.j_statistics()[0] == pytest.approx(means_j[k] / 100, abs=1e-6)
        assert scores.f_statistics()[0] == pytest.approx(means_f[k] / 100, abs=1e-6)
