"""The 'least_used' memory policy (a worked example of a policy): the victim by hand, and the segment
job equal to the Python API with it."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from configs import davis2017_val
from stm_jax import Segmenter
from stm_jax.data.synthetic import write_synthetic_davis
from stm_jax.io.images import read_label_mask, read_rgb
from stm_jax.jobs import segment
from stm_jax.memory.bank import commit_temporary, init_bank, write_temporary
from stm_jax.memory.config import MemoryConfig

SHIPPED = Path(__file__).resolve().parents[1] / "stm_jax" / "assets" / "synthetic_cpu"


def test_a_full_bank_drops_the_working_frame_with_the_least_attention_per_read():
    config = MemoryConfig(capacity=5, chunk_frames=5, eviction="least_used", permanent_slots=2)
    bank = init_bank(config, 1, 1, 2, 1, 1)
    for t in range(5):  # frames 0..3 kept (0 and 1 pinned), 4 temporary: full
        bank = write_temporary(bank, jnp.full((1, 2, 1), t), jnp.full((1, 2, 1), t), t)
        if t < 4:
            bank = commit_temporary(bank, config)
    bank = bank._replace(num_pinned=jnp.int32(2))
    # Attention per read: slot 0 (pinned) 0.0, slot 1 (pinned) 0.1, slot 2: 6/3 = 2.0, slot 3: 1/1.
    usage = jnp.array([[0.0, 0.0], [0.1, 0.0], [3.0, 3.0], [0.5, 0.5], [0.0, 0.0]])[None]
    bank = bank._replace(usage=usage, reads=jnp.array([3, 3, 3, 1, 0]))
    bank = commit_temporary(bank, config)
    np.testing.assert_array_equal(bank.frame_index, [0, 1, 2, 4, -1])  # frame 3 (1.0/read) goes
    np.testing.assert_array_equal(bank.keys[0, :4, 0, 0], [0, 1, 2, 4])
    np.testing.assert_array_equal(bank.reads[:4], [3, 3, 3, 0])  # counters move with their slots


@pytest.mark.slow
def test_segment_job_equals_segmenter_with_least_used(tmp_path):
    root = write_synthetic_davis(
        tmp_path / "davis", num_train=0, num_val=1, num_frames=20, height=64, width=96, seed=3
    )
    memory = dict(eviction="least_used", capacity=4, mem_every=1, chunk_frames=2)
    config = davis2017_val.get_config()
    config.update(checkpoint=str(SHIPPED))
    config.memory.update(memory)
    config.data.root = str(root)
    segment.run(config, str(tmp_path / "out"))
    (name,) = (root / "ImageSets/2017/val.txt").read_text().split()
    frames = sorted((root / "JPEGImages/480p" / name).glob("*.jpg"))
    api = Segmenter.from_checkpoint(SHIPPED, **memory)
    labels = [
        api.start(
            read_rgb(frames[0]), read_label_mask(root / "Annotations/480p" / name / "00000.png")
        )
    ]
    labels += [api.step(read_rgb(p)) for p in frames[1:]]
    for t, path in enumerate(frames):
        job = read_label_mask(tmp_path / "out/predictions" / name / f"{path.stem}.png")
        np.testing.assert_array_equal(job, labels[t], err_msg=f"frame {t}")
    held = np.asarray(api.state.video.bank.frame_index[0])
    assert held[0] == 0 and (held >= 0).sum() == 4 and held[-1] in (-1, 19)
