"""Overlays, their colours and the side-by-side sheets: pixel values by the documented rules, files
written and read back at the documented sizes."""

import imageio.v3 as iio
import numpy as np
import pytest

from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.evaluation.overlay import (
    caption,
    display_size,
    has_ffmpeg,
    outlines,
    overlay,
    write_animation,
    write_davis_overlays,
    write_sequence_overlay,
)
from stm_jax.evaluation.overlay_colours import VIVID, _lab, choose_colours, default_colours
from stm_jax.evaluation.side_by_side import GAP, sampled_rows, side_by_side
from stm_jax.io.images import DAVIS_PALETTE, read_rgb, write_palette_png, write_rgb

T, H, W = 5, 40, 64
LUMA = np.array([0.299, 0.587, 0.114])


def _scene():
    frames = np.full((T, H, W, 3), 128, np.uint8)
    labels = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        frames[t, :, :, 0] = 20 * t  # frames differ, so the GIF keeps all of them
        labels[t, 10:30, 5 + 4 * t : 25 + 4 * t] = 1
        labels[t, 2:8, 40:60] = 2
    return frames, labels


def test_overlay_fill_outline_halo_and_untouched_pixels():
    frames, labels = _scene()
    labels = labels[0].copy()
    labels[32:36, 50:54] = 255  # void
    colours = default_colours()
    out = overlay(frames[0], labels, colours, alpha=0.5)
    yellow, blue = VIVID[0], VIVID[1]
    np.testing.assert_array_equal(colours[1], yellow)
    np.testing.assert_array_equal(out[10, 10], yellow)  # outline: the object's colour
    np.testing.assert_array_equal(out[2, 45], blue)
    grey = frames[0, 20, 15] @ LUMA
    np.testing.assert_array_equal(out[20, 15], np.rint(0.5 * grey + 0.5 * yellow))  # fill
    np.testing.assert_array_equal(out[9, 10], [0, 0, 0])  # halo just outside the object
    np.testing.assert_array_equal(out[38, 35], frames[0, 38, 35])  # background untouched
    np.testing.assert_array_equal(out[33, 51], frames[0, 33, 51])  # void untouched


def test_outline_thickness():
    labels = np.zeros((20, 20), np.uint8)
    labels[5:15, 5:15] = 3
    edge, halo = outlines(labels, thickness=2)
    assert edge[5:15, 5:15].sum() == 100 - 36  # a 2-pixel ring inside the 10x10 square
    assert halo.sum() == 12 * 12 - 100 and not (edge & halo).any()


def test_colours_differ_from_the_objects_they_cover():
    """The demo's synthetic objects are drawn in hues the DAVIS palette shares (red, green, ...):
    each overlay colour must be far from its object's own colour and differ from the palette's."""
    video = make_synthetic_video(7 * 100_003, num_frames=12, height=64, width=96, num_objects=3)
    colours = choose_colours(video.frames, video.labels)
    palette = np.array(DAVIS_PALETTE, np.uint8).reshape(256, 3)
    chosen = [tuple(colours[k]) for k in (1, 2, 3)]
    assert len(set(chosen)) == 3 and all(c in map(tuple, VIVID) for c in chosen)
    for k in (1, 2, 3):
        own = np.median(_lab(video.frames[video.labels == k]), axis=0)
        assert np.linalg.norm(_lab(colours[k]) - own) > 60, k  # far from the object's colour
        assert tuple(colours[k]) != tuple(palette[k])
    # A red object gets a colour other than red, whatever its id.
    frame = np.full((1, 8, 8, 3), 90, np.uint8)
    frame[0, 2:6, 2:6] = (230, 25, 75)
    labels = np.zeros((1, 8, 8), np.uint8)
    labels[0, 2:6, 2:6] = 3
    assert tuple(choose_colours(frame, labels)[3]) != (230, 25, 75)


def test_display_size():
    assert display_size(64, 96) == (256, 384)  # whole factor 4 reaches 320
    assert display_size(480, 854) == (480, 854)
    assert display_size(480, 854, max_width=320) == (180, 320)
    assert display_size(32, 48, min_width=192) == (128, 192)


def test_side_by_side_layout_and_frame_numbers():
    frames, labels = _scene()
    truth = np.zeros_like(labels)
    truth[:, 10:30, 5:25] = 1
    sheet = side_by_side(frames, labels, truth, rows=3, min_width=128, title="seq")
    tile_h, tile_w = 80, 128  # 40 x 64 enlarged by 2
    assert list(sampled_rows(T, 3)) == [0, 2, 4]
    header = sheet.shape[0] - (3 * tile_h + 2 * GAP)
    assert sheet.shape == (header + 3 * tile_h + 2 * GAP, 3 * tile_w + 2 * GAP, 3)
    row1 = sheet[header + tile_h + GAP : header + 2 * tile_h + GAP]
    colours = choose_colours(frames, truth)
    plain = np.repeat(np.repeat(frames[2], 2, 0), 2, 1)  # the frame itself (linear 2x of a flat)
    # Column 1 is the frame with its number in the corner; below the caption it is the frame.
    np.testing.assert_array_equal(row1[40:, :tile_w], plain[40:])
    assert np.any(row1[:16, :60] != plain[:16, :60])  # "frame 2" drawn
    np.testing.assert_array_equal(row1[:16, :60], caption(plain, "frame 2")[:16, :60])
    # Columns 2 and 3: the prediction and the ground truth overlaid, same colours.
    big = lambda m: np.repeat(np.repeat(m, 2, 0), 2, 1)  # noqa: E731
    expected_pred = overlay(plain, big(labels[2]), colours, thickness=1)
    expected_true = overlay(plain, big(truth[2]), colours, thickness=1)
    np.testing.assert_array_equal(row1[:, tile_w + GAP : 2 * tile_w + GAP], expected_pred)
    np.testing.assert_array_equal(row1[:, 2 * (tile_w + GAP) :], expected_true)
    # Without ground truth: two columns.
    assert side_by_side(frames, labels, rows=3, min_width=128).shape[1] == 2 * tile_w + GAP


def test_gif_and_sheet_written_and_read_back(tmp_path):
    frames, labels = _scene()
    gif, sheet = write_sequence_overlay(tmp_path, "seq", frames, labels, labels)
    assert gif.suffix == ".gif"
    animation = iio.imread(gif, index=None)
    assert animation.shape[:3] == (T, 5 * H, 5 * W)  # enlarged 5x for viewing
    colours = choose_colours(frames, labels)
    # GIF quantisation may move colours a little; an outline pixel stays near its colour.
    assert np.abs(animation[2, 5 * 10 + 1, 5 * 13, :3].astype(int) - colours[1]).max() <= 12
    image = read_rgb(sheet)
    assert image.shape[1] == 3 * 320 + 2 * GAP  # frame | prediction | ground truth


def test_caption_is_drawn_in_white_on_dark():
    image = np.full((60, 200, 3), 200, np.uint8)
    out = caption(image, "frame 12")
    box = out[:20, :80]
    assert box.min() < 100 and box.max() == 255  # darkened box, white text
    np.testing.assert_array_equal(out[40:], image[40:])


def test_mp4_needs_ffmpeg(tmp_path):
    frames, _ = _scene()
    if has_ffmpeg():
        path = write_animation(tmp_path / "a.mp4", frames)
        assert path.stat().st_size > 0
    else:
        with pytest.raises(RuntimeError, match="imageio-ffmpeg"):
            write_animation(tmp_path / "a.mp4", frames)


def test_davis_overlays_from_tree_with_ground_truth(tmp_path):
    frames, labels = _scene()
    for t in range(T):
        write_rgb(tmp_path / "DAVIS/JPEGImages/480p/cat" / f"{t:05d}.jpg", frames[t])
        write_palette_png(tmp_path / "DAVIS/Annotations/480p/cat" / f"{t:05d}.png", labels[t])
        write_palette_png(tmp_path / "pred/cat" / f"{t:05d}.png", labels[t])
    (path,) = write_davis_overlays(tmp_path / "DAVIS", tmp_path / "pred", ["cat"], tmp_path / "o")
    assert path.name == "cat.gif" and iio.imread(path, index=None).shape[0] == T
    sheet = read_rgb(tmp_path / "o" / "cat_sheet.png")
    assert sheet.shape[1] == 3 * 320 + 2 * GAP  # the annotations give a ground-truth column
