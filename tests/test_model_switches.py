"""Config switches of the model: backbones, dims, max objects, similarity, top-k, bfloat16; resize."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.aggregation import soft_aggregate
from stm_jax.model.config import ModelConfig
from stm_jax.model.family import init_variables
from stm_jax.model.layers import resize_bilinear
from tests.model_fixtures import TINY, tiny_variables
from tests.parity_utils import random_video


def param_count(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def test_official_parameter_counts_and_backbone_presets():
    shapes = jax.eval_shape(lambda: init_variables(jax.random.key(0), ModelConfig()))["params"]
    counts = {name: param_count(tree) for name, tree in shapes.items()}
    assert counts == {
        "Encoder_M": 8_549_568,
        "Encoder_Q": 8_543_296,
        "KV_M_r4": 5_898_880,
        "KV_Q_r4": 5_898_880,
        "Decoder": 10_034_946,
    }
    r18 = jax.eval_shape(
        lambda: init_variables(jax.random.key(0), ModelConfig(backbone="resnet18"))
    )
    assert r18["params"]["KV_M_r4"]["Key"]["kernel"].shape == (3, 3, 256, 128)
    assert r18["params"]["Decoder"]["RF3"]["convFS"]["kernel"].shape == (3, 3, 128, 256)
    dims = jax.eval_shape(
        lambda: init_variables(jax.random.key(0), ModelConfig(key_dim=64, value_dim=256))
    )
    assert dims["params"]["KV_Q_r4"]["Value"]["kernel"].shape == (3, 3, 1024, 256)
    assert dims["params"]["Decoder"]["convFM"]["kernel"].shape == (3, 3, 512, 256)
    with pytest.raises(ValueError, match="backbone"):
        init_variables(jax.random.key(0), ModelConfig(backbone="vgg"))
    with pytest.raises(ValueError, match="similarity"):
        MemoryConfig(similarity="nearest")


def test_max_objects_sets_the_aggregation_slots():
    probs = jnp.array([[[0.9]], [[0.2]]])  # 2 objects, 1x1 image
    logits = soft_aggregate(probs, jnp.array([True, False]), num_slots=6)
    assert logits.shape == (1, 1, 6)
    em = np.clip([0.1, 0.9, 0.0, 0.0, 0.0, 0.0], 1e-7, 1 - 1e-7)  # the invalid object contributes 0
    np.testing.assert_allclose(logits[0, 0], np.log(em / (1 - em)), rtol=1e-5)
    with pytest.raises(ValueError, match="slots"):
        soft_aggregate(jnp.zeros((6, 1, 1)), jnp.ones(6, bool), num_slots=6)
    config = dataclasses.replace(TINY, max_objects=2)
    stream = VideoStream(Stepper(config, MemoryConfig(capacity=3)), tiny_variables(config))
    frames, labels = random_video(2, 32, 32, 2)
    stream.start(frames[0], labels, 2)
    assert stream.step(frames[1]).shape == (32, 32, 3)


def run_two_frames(config, variables=None, num_objects=2, **memory):
    variables = variables or tiny_variables(config)
    memory = MemoryConfig(capacity=4, chunk_frames=2, **memory)
    stream = VideoStream(Stepper(config, memory), variables)
    frames, labels = random_video(3, 32, 48, num_objects, seed=5)
    stream.start(frames[0], labels, num_objects)
    stream.step(frames[1])
    return np.asarray(stream.step(frames[2]))


@pytest.mark.slow
def test_similarity_top_k_and_dtype_switches_change_the_computation_sensibly():
    variables = tiny_variables()
    base = run_two_frames(TINY, variables)
    np.testing.assert_allclose(base.sum(-1), 1.0, rtol=1e-5)
    l2 = run_two_frames(TINY, variables, similarity="l2")
    top = run_two_frames(TINY, variables, top_k=3)
    bf16 = run_two_frames(dataclasses.replace(TINY, dtype="bfloat16"), variables)
    assert not np.allclose(base, l2, atol=1e-4)
    assert not np.allclose(base, top, atol=1e-4)
    assert bf16.dtype == np.float32
    assert np.abs(bf16 - base).max() < 0.1  # bfloat16 convs, float32 affinity/softmax
    assert not np.array_equal(bf16, base)


@pytest.mark.parametrize("size,factor", [((3, 5), 2), ((4, 7), 4), ((1, 2), 4)])
def test_resize_matches_pytorch_bilinear_including_borders(size, factor):
    x = np.random.default_rng(0).normal(size=(2, *size, 3)).astype(np.float32)
    ours = resize_bilinear(jnp.asarray(x), (size[0] * factor, size[1] * factor))
    theirs = F.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2),
        scale_factor=factor,
        mode="bilinear",
        align_corners=False,
    ).permute(0, 2, 3, 1)
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-6)


def test_unused_object_slots_are_masked_out():
    """A 2-object video run with a third, unused slot equals the run with exactly 2 slots."""
    variables = tiny_variables()
    stream = VideoStream(Stepper(TINY, MemoryConfig(capacity=4, chunk_frames=2)), variables)
    frames, labels = random_video(3, 32, 48, 2, seed=6)
    results = []
    for slots in (2, 3):  # the third slot holds no object: not valid
        stream.start(frames[0], labels, slots)
        stream.step(frames[1])
        results.append(np.asarray(stream.step(frames[2])))
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)  # batch-shape rounding only
    assert results[1][..., 3:].max() < 1e-6  # the unused slot gets (almost) no probability
