"""The STCN family through the one per-frame step: a tiny random STCN (STCN-layout `.pth`) on a
generated DAVIS video that needs padding; the step traces once per shape over whole videos, and the
segment job's PNGs equal `Segmenter`'s labels exactly while the memory evicts ('oldest' and
'long_term'), and bfloat16 and 'least_used' runs stay finite and close to float32."""

import numpy as np
import pytest
import torch

from configs import davis2017_val
from stm_jax import Segmenter
from stm_jax.inference import stepper as step_module
from stm_jax.io.images import read_label_mask
from stm_jax.jobs import segment
from tests.data_fixtures import one_video_davis
from tests.torch_stcn_reference import write_stcn_pth

torch.set_grad_enabled(False)
# 50 x 70 pads to 64 x 80: 4 x 5 = 20 key positions a frame, as many as STCN's top-k of 20.
FRAMES, HEIGHT, WIDTH = 16, 50, 70
TINY_STCN = dict(backbone="tiny", value_backbone="tiny", key_dim=16, value_dim=32, decoder_dim=16)
# Two slots, a frame kept every 2nd: full after frame 2, then each kept frame evicts one.
SMALL_MEMORY = dict(
    capacity=2, mem_every=2, chunk_frames=1, long_term_size=8, long_term_prototypes=4
)
POLICIES = {
    "oldest": dict(eviction="oldest"),
    "long_term": dict(eviction="long_term"),
}


@pytest.fixture(scope="module")
def stcn_video(tmp_path_factory):
    """(DAVIS root, sequence name, frames as decoded from the JPEGs, first mask, STCN .pth)."""
    root, name, frames, first = one_video_davis(
        tmp_path_factory.mktemp("davis"), FRAMES, HEIGHT, WIDTH
    )
    checkpoint = tmp_path_factory.mktemp("weights") / "STCN.pth"
    write_stcn_pth(checkpoint, seed=4, **TINY_STCN)
    return root, name, frames, first, checkpoint


def run_segmenter(api, frames, first, return_probs=False):
    out = [api.start(frames[0], first)]
    return out + [api.step(f, return_probs=return_probs) for f in frames[1:]]


def test_the_stcn_step_traces_once_per_shape(stcn_video):
    _, _, frames, first, checkpoint = stcn_video
    api = Segmenter.from_checkpoint(checkpoint, **SMALL_MEMORY, **POLICIES["oldest"])
    assert api.model_config.family == "stcn"
    before = dict(step_module.TRACE_COUNTS)
    labels = run_segmenter(api, frames, first)
    assert len(labels) == FRAMES and labels[-1].shape == (HEIGHT, WIDTH)
    assert step_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert step_module.TRACE_COUNTS["reset_slot"] - before["reset_slot"] == 1
    # The same video reversed (same shape and objects): no new trace at all.
    run_segmenter(api, frames[::-1], first)
    assert step_module.TRACE_COUNTS["step"] - before["step"] == 1
    assert step_module.TRACE_COUNTS["reset_slot"] - before["reset_slot"] == 1


@pytest.mark.slow  # a whole segment job and a Segmenter run: ~20 s on 2 cores
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_stcn_segment_job_equals_the_segmenter(tmp_path, stcn_video, policy):
    root, name, frames, first, checkpoint = stcn_video
    memory = {**SMALL_MEMORY, **POLICIES[policy]}
    config = davis2017_val.get_config()
    config.checkpoint = str(checkpoint)
    config.memory.update(memory)
    config.data.root = str(root)
    segment.run(config, str(tmp_path / "out"))
    job = [
        read_label_mask(tmp_path / "out/predictions" / name / f"{t:05d}.png") for t in range(FRAMES)
    ]

    api = Segmenter.from_checkpoint(checkpoint, **memory)
    ours = run_segmenter(api, frames, first)
    assert len(np.unique(ours[-1])) > 1  # not flat
    for t, (a, b) in enumerate(zip(job, ours)):
        np.testing.assert_array_equal(a, b, err_msg=f"{policy}: frame {t}")
    bank = api.state.video.bank
    held = np.asarray(bank.frame_index)
    assert int(np.sum(held >= 0)) == memory["capacity"]  # it was full
    assert int(held.max()) >= 10  # and it evicted: a late frame is in it


@pytest.mark.slow  # two whole-video runs, one compiling bfloat16: ~16-26 s on 2 cores
def test_stcn_bfloat16_least_used_is_finite_and_agrees_with_float32(stcn_video):
    _, _, frames, first, checkpoint = stcn_video
    memory = {**SMALL_MEMORY, "eviction": "least_used"}
    runs = {}
    for dtype in ("float32", "bfloat16"):
        api = Segmenter.from_checkpoint(checkpoint, dtype=dtype, **memory)
        assert api.model_config.dtype == dtype
        runs[dtype] = np.stack(run_segmenter(api, frames, first, return_probs=True)[1:])
        assert int(np.asarray(api.state.video.bank.frame_index).max()) >= 10  # it evicted
    assert np.isfinite(runs["bfloat16"]).all()
    labels32, labels16 = (runs[d][..., :3].argmax(-1) for d in ("float32", "bfloat16"))
    assert len(np.unique(labels32[-1])) > 1  # not flat
    # Random weights leave many pixels near a tie, where bfloat16 rounding may flip the winner:
    # report overall agreement, require it where float32's winner leads by at least 0.1.
    top2 = np.sort(runs["float32"][..., :3], axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] >= 0.1
    agreement = float(np.mean(labels32 == labels16))
    clear_agreement = float(np.mean((labels32 == labels16)[clear]))
    print(
        f"agreement {agreement:.4f}, where clear ({clear.mean():.2%} of pixels) {clear_agreement:.4f}"
    )
    assert clear.mean() >= 0.5 and agreement >= 0.9, agreement
    assert clear_agreement >= 0.99, clear_agreement
    assert np.abs(runs["bfloat16"] - runs["float32"]).max() > 0  # bfloat16 did run
