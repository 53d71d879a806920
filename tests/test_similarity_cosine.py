"""Worked example of a new memory read (docs/extending.md): the cosine similarity, one function in
stm_jax/memory/similarity.py, selected by `memory.similarity` in training and in the segment job.
Copy this file for your own read."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.io.images import read_label_mask, write_palette_png, write_rgb
from stm_jax.jobs import segment as segment_job
from stm_jax.jobs import train as train_job
from stm_jax.jobs.config_base import segment_config
from stm_jax.memory.read import read_chunked, read_plain
from stm_jax.memory.similarity import affinity
from tests.test_train_e2e import load_config


def test_cosine_affinity_hand_computed():
    mk = jnp.array([[3.0, 4.0], [0.0, -2.0]])  # N=2, D=2
    qk = jnp.array([[1.0, 0.0]])  # M=1
    expected = np.array([[3.0 / 5.0], [0.0]]) * np.sqrt(2)
    np.testing.assert_allclose(affinity(mk, qk, "cosine"), expected, rtol=1e-5, atol=1e-6)
    # Only directions matter: scaling a memory key changes nothing.
    np.testing.assert_allclose(affinity(mk * 10, qk, "cosine"), expected, rtol=1e-5, atol=1e-6)


def test_cosine_streaming_read_equals_plain_read_over_valid_frames():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    keys = jax.random.normal(k1, (2, 6, 4, 8))  # 2 objects, 6 frames (3 chunks of 2), 4 positions
    values = jax.random.normal(k2, (2, 6, 4, 5))
    query = jax.random.normal(k3, (1, 7, 8))
    valid = jnp.arange(6) < 3
    ours = read_chunked(keys, values, valid, query, 2, "cosine")
    plain = read_plain(
        keys[:, :3].reshape(2, 12, 8),
        values[:, :3].reshape(2, 12, 5),
        jnp.ones((2, 12), bool),
        jnp.broadcast_to(query, (2, 7, 8)),
        "cosine",
    )
    np.testing.assert_allclose(ours, plain, atol=1e-5)
    assert not np.allclose(ours, read_chunked(keys, values, valid, query, 2, "dot"), atol=1e-3)


@pytest.mark.slow
def test_train_and_segment_with_the_cosine_read(tmp_path, capsys):
    """A tiny synthetic_cpu run trains with the read, the segment job runs with it, and running a
    cosine-trained checkpoint with another read is pointed out."""
    config = load_config("synthetic_cpu")
    config.memory.similarity = "cosine"
    train_job.run(config, str(tmp_path / "run"))
    video = make_synthetic_video(5, num_frames=4, height=32, width=48, num_objects=2)
    for t, frame in enumerate(video.frames):
        write_rgb(tmp_path / "frames" / f"{t:05d}.jpg", frame)
    write_palette_png(tmp_path / "first.png", video.labels[0])
    for similarity in ("cosine", "dot"):
        run = segment_config()
        run.job = "segment"
        run.checkpoint = str(tmp_path / "run")
        run.memory.similarity = similarity
        run.data.update(
            layout="folder", frames=str(tmp_path / "frames"), first_mask=str(tmp_path / "first.png")
        )
        capsys.readouterr()
        segment_job.run(run, str(tmp_path / similarity))
        warned = "trained with memory.similarity='cosine'" in capsys.readouterr().out
        assert warned == (similarity == "dot")
        written = sorted((tmp_path / similarity / "predictions" / "frames").glob("*.png"))
        assert len(written) == 4
        np.testing.assert_array_equal(read_label_mask(written[0]), video.labels[0])
