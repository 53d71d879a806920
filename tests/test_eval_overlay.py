"""Overlay GIF and contact sheet: files are written, read back with the right size, right colours."""

import imageio.v3 as iio
import numpy as np
import pytest

from stm_jax.evaluation.overlay import (
    PALETTE,
    contact_sheet,
    has_ffmpeg,
    overlay,
    write_animation,
    write_davis_overlays,
    write_sequence_overlay,
)
from stm_jax.io.images import read_rgb, write_palette_png, write_rgb

T, H, W = 5, 40, 64


def _scene():
    frames = np.full((T, H, W, 3), 128, np.uint8)
    labels = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        frames[t, :, :, 0] = 20 * t  # frames differ, so the GIF keeps all of them
        labels[t, 10:30, 5 + 4 * t : 25 + 4 * t] = 1
        labels[t, 2:8, 40:60] = 2
    return frames, labels


def test_overlay_colours():
    frames, labels = _scene()
    out = overlay(frames[0], labels[0], alpha=0.5)
    red, green = PALETTE[1], PALETTE[2]
    assert red.tolist() == [128, 0, 0] and green.tolist() == [0, 128, 0]
    np.testing.assert_array_equal(out[10, 10], red)  # contour: full object colour
    np.testing.assert_array_equal(out[5, 40], green)
    expected_inside = np.rint(0.5 * frames[0, 20, 15] + 0.5 * red)
    np.testing.assert_array_equal(out[20, 15], expected_inside)  # interior: blend
    np.testing.assert_array_equal(out[35, 35], frames[0, 35, 35])  # background untouched


def test_gif_and_sheet_written_and_read_back(tmp_path):
    frames, labels = _scene()
    gif, sheet = write_sequence_overlay(tmp_path, "seq", frames, labels)
    assert gif.suffix == ".gif"
    animation = iio.imread(gif, index=None)
    assert animation.shape[:3] == (T, H, W)
    # GIF quantisation may move colours a little; the contour pixel must stay near the palette red.
    assert np.abs(animation[2, 10, 13, :3].astype(int) - PALETTE[1]).max() <= 8
    image = read_rgb(sheet)
    tile_h = round(H * 320 / W)
    assert image.shape == (2 * tile_h, 4 * 320, 3)  # 5 tiles on a 4-column grid


def test_contact_sheet_samples_first_and_last():
    images = np.stack([np.full((10, 20, 3), 5 * i, np.uint8) for i in range(30)])
    sheet = contact_sheet(images, columns=3, max_tiles=6, tile_width=20)
    assert sheet.shape == (20, 60, 3)
    assert sheet[0, 0, 0] == 0 and sheet[15, 45, 0] == 5 * 29  # first and last frame


def test_mp4_needs_ffmpeg(tmp_path):
    frames, _ = _scene()
    if has_ffmpeg():
        path = write_animation(tmp_path / "a.mp4", frames)
        assert path.stat().st_size > 0
    else:
        with pytest.raises(RuntimeError, match="imageio-ffmpeg"):
            write_animation(tmp_path / "a.mp4", frames)


def test_davis_overlays_from_tree(tmp_path):
    frames, labels = _scene()
    for t in range(T):
        write_rgb(tmp_path / "DAVIS/JPEGImages/480p/cat" / f"{t:05d}.jpg", frames[t])
        write_palette_png(tmp_path / "pred/cat" / f"{t:05d}.png", labels[t])
    (path,) = write_davis_overlays(tmp_path / "DAVIS", tmp_path / "pred", ["cat"], tmp_path / "o")
    assert path.name == "cat.gif" and iio.imread(path, index=None).shape[0] == T
    assert (tmp_path / "o" / "cat_sheet.png").is_file()
