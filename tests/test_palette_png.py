"""Written masks: DAVIS palette colours, the exact ids back for every reader, any id range."""

import numpy as np
import pytest
from PIL import Image

from stm_jax.io.images import DAVIS_PALETTE, read_label_mask, write_palette_png


@pytest.mark.parametrize("ids", [[0], [0, 1], [0, 1, 2, 3], [0, 2, 5, 17], [0, 1, 255]])
@pytest.mark.parametrize("atomic", [True, False])
def test_ids_and_colours_round_trip(tmp_path, ids, atomic):
    rng = np.random.default_rng(len(ids))
    labels = np.asarray(ids, np.uint8)[rng.integers(0, len(ids), (37, 53))]
    path = tmp_path / "00000.png"
    write_palette_png(path, labels, atomic=atomic)
    assert np.array_equal(read_label_mask(path), labels)
    with Image.open(path) as image:  # how the DAVIS toolkit and vos-benchmark read masks
        assert image.mode == "P"
        assert np.array_equal(np.array(image), labels)
        rgb = np.array(image.convert("RGB"))
    palette = np.asarray(DAVIS_PALETTE, np.uint8).reshape(256, 3)
    assert np.array_equal(rgb, palette[labels])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.png"]  # no temp file left


def test_few_ids_are_stored_with_few_bits(tmp_path):
    labels = np.zeros((480, 854), np.uint8)
    labels[100:300, 200:500] = 1
    labels[250:400, 400:700] = 2
    write_palette_png(tmp_path / "small.png", labels)
    write_palette_png(tmp_path / "wide.png", np.where(labels == 2, 200, labels).astype(np.uint8))
    with Image.open(tmp_path / "small.png") as image:
        assert len(image.getpalette()) == 3 * 3  # colours of ids 0..2 only
    assert (tmp_path / "small.png").stat().st_size < (tmp_path / "wide.png").stat().st_size


def test_bad_labels_are_refused(tmp_path):
    with pytest.raises(ValueError, match="must be \\(H, W\\)"):
        write_palette_png(tmp_path / "a.png", np.zeros((2, 3, 1), np.uint8))
    with pytest.raises(ValueError, match="0..255"):
        write_palette_png(tmp_path / "a.png", np.full((2, 3), 256, np.int32))
