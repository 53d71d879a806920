"""Frames read as a person means them: natural order, hidden files ignored, masks refused, EXIF."""

import numpy as np
import pytest
from PIL import Image

from stm_jax.inference.input_videos import VideoInputError, list_frames
from stm_jax.io.frames_folder import frame_files, natural_key, numbering_gaps
from stm_jax.io.images import image_size, read_rgb, write_palette_png, write_rgb


def _frames(folder, names, size=(8, 12)):
    for name in names:
        write_rgb(folder / name, np.full((*size, 3), 50, np.uint8))
    return folder


def test_natural_order_puts_2_before_10(tmp_path):
    folder = _frames(tmp_path, [f"{i}.jpg" for i in range(1, 13)])
    names = [p.name for p in list_frames(folder)]
    assert names == [f"{i}.jpg" for i in range(1, 13)]
    assert sorted(["img10.png", "img2.png", "img1.png"], key=natural_key) == [
        "img1.png",
        "img2.png",
        "img10.png",
    ]


def test_macos_resource_forks_and_hidden_files_are_ignored(tmp_path):
    folder = _frames(tmp_path, ["00000.jpg", "00001.jpg"])
    (folder / "._00000.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".DS_Store").write_bytes(b"junk")
    assert [p.name for p in list_frames(folder)] == ["00000.jpg", "00001.jpg"]


def test_mask_png_beside_jpegs_is_refused_naming_it(tmp_path):
    folder = _frames(tmp_path, ["00000.jpg", "00001.jpg", "00002.jpg"])
    write_palette_png(folder / "00000.png", np.ones((8, 12), np.uint8))
    with pytest.raises(
        VideoInputError, match=r"both JPEG \(3\) and PNG \(1\).*look like masks.*00000\.png"
    ):
        list_frames(folder)


def test_palette_png_among_png_frames_is_refused(tmp_path):
    folder = tmp_path
    for i in range(3):
        Image.fromarray(np.full((8, 12, 3), 9, np.uint8)).save(folder / f"{i:05d}.png")
    write_palette_png(folder / "mask.png", np.ones((8, 12), np.uint8))
    frames, problems = frame_files(folder)
    assert len(problems) == 1 and "mask.png" in problems[0] and "look like masks" in problems[0]


def test_first_mask_inside_the_frames_folder_is_refused(tmp_path):
    folder = tmp_path
    for i in range(3):
        Image.fromarray(np.full((8, 12, 3), 9, np.uint8)).save(folder / f"{i:05d}.png")
    Image.fromarray(np.ones((8, 12), np.uint8) * 1, "L").save(folder / "first.png")
    with pytest.raises(VideoInputError, match="first-frame mask is inside the frames folder"):
        list_frames(folder, folder / "first.png")


def test_same_name_with_two_suffixes_is_refused(tmp_path):
    folder = _frames(tmp_path, ["00000.jpg", "00000.jpeg", "00001.jpg"])
    with pytest.raises(VideoInputError, match="share a name"):
        list_frames(folder)


def test_numbering_gaps_respect_the_step():
    assert numbering_gaps(["00000", "00001", "00003"]) == ["00002"]
    assert numbering_gaps(["00000", "00005", "00010"]) == []  # every 5th frame, as YouTube-VOS
    assert numbering_gaps(["00000", "00005", "00015"]) == ["00010"]
    assert numbering_gaps(["a", "b"]) == []


def test_exif_orientation_is_applied_to_frames_and_sizes(tmp_path):
    pixels = np.zeros((8, 12, 3), np.uint8)
    pixels[0, :, 0] = 255  # a red top row in the stored (landscape) image
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the viewer shows a 12x8 portrait
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif.tobytes(), quality=100)
    frame = read_rgb(path)
    assert frame.shape == (12, 8, 3)
    assert image_size(path) == (12, 8)
    assert frame[:, -1, 0].mean() > 120 and frame[:, 0, 0].mean() < 60  # top row -> right column
