"""STCN over whole videos against the PyTorch reference's published loop (tests/torch_stcn_reference.py
`run_video`, written from STCN's inference_core.py / eval_davis.py): a generated DAVIS video with 2
objects at a size that needs padding, random weights in an STCN-layout `.pth`; `Segmenter` gives the
reference's probabilities within 1e-4 at every frame and the segment job (configs/davis2017_val.py,
no flag but the checkpoint and the data root) writes the reference's masks."""

import numpy as np
import pytest
import torch

from configs import davis2017_val
from stm_jax import Segmenter
from stm_jax.io.images import read_label_mask
from stm_jax.jobs import segment
from tests.data_fixtures import one_video_davis
from tests.torch_stcn_reference import run_video, write_stcn_pth

torch.set_grad_enabled(False)
# 14 frames: memory frames 0, 5, 10 are read; 50 x 70 pads to 64 x 80 (pads 7/7 and 5/5).
FRAMES, HEIGHT, WIDTH = 14, 50, 70
TINY_STCN = dict(backbone="tiny", value_backbone="tiny", key_dim=16, value_dim=32, decoder_dim=16)


@pytest.fixture(scope="module")
def stcn_video(tmp_path_factory):
    """(DAVIS root, sequence name, frames as decoded from the JPEGs, first mask, .pth, reference
    probabilities [T, 3, H, W])."""
    root, name, frames, first = one_video_davis(
        tmp_path_factory.mktemp("davis"), FRAMES, HEIGHT, WIDTH
    )
    assert set(np.unique(first)) == {0, 1, 2}
    assert set(np.unique(first)) == {0, 1, 2}
    checkpoint = tmp_path_factory.mktemp("weights") / "STCN.pth"
    model = write_stcn_pth(checkpoint, seed=4, **TINY_STCN)
    reference = run_video(model, frames, first, 2)
    return root, name, frames, first, checkpoint, reference


def test_segmenter_matches_the_reference_loop(stcn_video):
    _, _, frames, first, checkpoint, reference = stcn_video
    api = Segmenter.from_checkpoint(checkpoint)
    assert api.model_config.family == "stcn"
    memory = api.memory_config
    assert (memory.similarity, memory.top_k, memory.mem_every, memory.read_previous) == (
        "l2",
        20,
        5,
        False,
    )
    api.start(frames[0], first)
    for t in range(1, FRAMES):
        probs = api.step(frames[t], return_probs=True)  # [H, W, K]
        ours = np.moveaxis(probs[..., :3], -1, 0)
        np.testing.assert_allclose(ours, reference[t], atol=1e-4, err_msg=f"frame {t}")
        np.testing.assert_array_equal(ours.argmax(0), reference[t].argmax(0), f"frame {t}")
        assert np.abs(probs[..., 3:]).max() < 1e-6  # unused object slots stay empty
    # Not flat: both objects and the background win somewhere late in the video.
    assert set(np.unique(reference[-1].argmax(0))) == {0, 1, 2}
    held = sorted(int(i) for i in np.asarray(api.state.video.bank.frame_index[0]) if i >= 0)
    assert held[:3] == [0, 5, 10]


def test_segment_job_writes_the_reference_masks(tmp_path, stcn_video):
    root, name, _, _, checkpoint, reference = stcn_video
    config = davis2017_val.get_config()
    config.checkpoint = str(checkpoint)
    config.data.root = str(root)
    segment.run(config, str(tmp_path / "out"))
    for t in range(FRAMES):
        written = read_label_mask(tmp_path / "out/predictions" / name / f"{t:05d}.png")
        np.testing.assert_array_equal(written, reference[t].argmax(0), f"frame {t}")
