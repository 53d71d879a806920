"""The 'plain' backbone (a worked example of a backbone): features at every stride, and a tiny
training run with it whose checkpoint the segment job runs."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import segment as segment_config
from stm_jax.data.synthetic import make_synthetic_video
from stm_jax.io.images import read_label_mask, write_palette_png, write_rgb
from stm_jax.jobs import segment
from stm_jax.jobs import train as train_job
from stm_jax.model.backbone import BACKBONES
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables


class _Probe(nn.Module):
    @nn.compact
    def __call__(self, x, masks):
        backbone = BACKBONES.get("plain")
        stem = backbone.stem(x, {"side": masks}, jnp.float32)
        return stem, backbone.stages(stem)


def test_strides_channels_and_side_inputs():
    x = jnp.ones((1, 64, 96, 3))
    masks = jnp.ones((1, 2, 64, 96, 1))  # two objects: the object axis appears after the stem
    # Shapes only: evaluated abstractly (nothing compiles); the training test below runs it.
    (stem, (r4, r3, r2)), _ = jax.eval_shape(_Probe().init_with_output, jax.random.key(0), x, masks)
    assert stem.shape == (1, 2, 16, 24, 16)
    assert (r2.shape, r3.shape, r4.shape) == (
        (1, 2, 16, 24, 32),
        (1, 2, 8, 12, 64),
        (1, 2, 4, 6, 128),
    )
    plain = ModelConfig(backbone="plain", max_objects=2)
    variables = jax.eval_shape(lambda: init_variables(jax.random.key(0), plain))
    assert variables["params"]["KV_M_r4"]["Key"]["kernel"].shape == (3, 3, 128, 128)
    assert "plain4_1" in variables["params"]["Encoder_Q"]


@pytest.mark.slow
def test_train_with_the_backbone_then_segment(tmp_path):
    from tests.train_fixtures import tiny_config

    config = tiny_config(num_steps=2)
    config.model.backbone = "plain"
    config.train.checkpoint_every = 2
    train_job.run(config, str(tmp_path / "run"))
    video = make_synthetic_video(2, num_frames=5, height=32, width=48, num_objects=2)
    for t, frame in enumerate(video.frames):
        write_rgb(tmp_path / "video/frames" / f"{t:05d}.jpg", frame)
    write_palette_png(tmp_path / "video/mask.png", video.labels[0])
    run = segment_config.get_config()
    run.checkpoint = str(tmp_path / "run")
    run.data.update(
        frames=str(tmp_path / "video/frames"), first_mask=str(tmp_path / "video/mask.png")
    )
    segment.run(run, str(tmp_path / "out"))
    pngs = sorted((tmp_path / "out/predictions/frames").glob("*.png"))
    assert len(pngs) == 5 and read_label_mask(pngs[-1]).shape == (32, 48)
    np.testing.assert_array_equal(read_label_mask(pngs[0]), video.labels[0])
