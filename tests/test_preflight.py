"""Inputs checked before work: one list of every problem, and no output from a video that fails."""

import numpy as np
import pytest

from configs import davis2017_val
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.inference.input_videos import VideoInputError
from stm_jax.io.images import ImageFileError, write_palette_png
from stm_jax.jobs.segment import run
from tests.model_fixtures import tiny_run_config, write_tiny_pth


@pytest.fixture(scope="module")
def tiny_pth(tmp_path_factory):
    return write_tiny_pth(tmp_path_factory.mktemp("weights") / "tiny.pth")


def _davis(tmp_path, num_val):
    root = write_synthetic_davis(
        tmp_path / "davis", num_train=0, num_val=num_val, num_frames=5, height=32, width=48
    )
    names = (root / "ImageSets/2017/val.txt").read_text().split()
    return root, names


def test_all_problems_of_a_davis_tree_are_reported_before_any_png(tmp_path, tiny_pth):
    root, names = _davis(tmp_path, 4)
    jpegs, masks = root / "JPEGImages/480p", root / "Annotations/480p"
    void_only = np.zeros((32, 48), np.uint8)
    void_only[5:15, 5:15] = 255
    write_palette_png(masks / names[0] / "00000.png", void_only)  # 0/255 mask
    (jpegs / names[1] / "00003.jpg").unlink()  # missing JPEG (its annotation exists)
    (jpegs / names[2] / "00001.jpg").write_bytes(b"not a jpeg")  # unreadable header
    write_palette_png(masks / names[3] / "00000.png", np.ones((30, 48), np.uint8))  # last: size
    config = tiny_run_config(davis2017_val, tiny_pth, root=str(root))
    with pytest.raises(VideoInputError) as error:
        run(config, str(tmp_path / "out"))
    message = str(error.value)
    assert message.startswith("4 input problems; nothing was segmented:")
    assert f"{masks / names[0] / '00000.png'}: the mask holds only 0 and 255" in message
    assert "one object with id 255, which is void" in message and "use ids 1..N" in message
    assert (
        f"{jpegs / names[1]}: input frame(s) missing from video '{names[1]}': 00003.jpg" in message
    )
    assert f"{jpegs / names[2] / '00001.jpg'}: cannot be read as an image" in message
    assert (
        f"{masks / names[3] / '00000.png'}: mask is 48x30 but frame 00000.jpg is 48x32" in message
    )
    assert not list((tmp_path / "out").rglob("*.png"))


def test_truncated_jpeg_mid_video_leaves_no_png_of_that_video(tmp_path, tiny_pth):
    root, names = _davis(tmp_path, 1)
    frame = root / "JPEGImages/480p" / names[0] / "00003.jpg"
    data = frame.read_bytes()
    frame.write_bytes(data[: len(data) // 2])  # the header reads, the pixels do not
    config = tiny_run_config(davis2017_val, tiny_pth, root=str(root))
    with pytest.raises(ImageFileError, match="00003.jpg: cannot be read as an image"):
        run(config, str(tmp_path / "out"))
    predictions = tmp_path / "out/predictions"
    assert not list(predictions.rglob("*.png"))
    assert not list(predictions.iterdir())  # no partial folder left either
