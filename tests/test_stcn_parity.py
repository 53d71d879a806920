"""STCN parity with the PyTorch reference (tests/torch_stcn_reference.py): random weights,
non-trivial BN and biases, the released sizes (ResNet-50 key encoder, ResNet-18 value encoder),
converted through the real `.pth` reader; encode_query / encode_memory / decode and the aggregated
frame probabilities agree within 1e-4."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from stm_jax.memory.read import read_plain
from stm_jax.model.aggregation import other_objects, soft_aggregate
from stm_jax.model.config import ModelConfig
from stm_jax.model.families.stcn import STCN
from stm_jax.model.family import get_family
from stm_jax.model.padding import Padding
from stm_jax.weights import load_weights
from tests.parity_utils import random_video
from tests.torch_stcn_reference import (
    aggregate,
    make_stcn,
    normalise_frames,
    one_hot,
    pad_divide_by,
    run_video,
    top_k_read,
    write_stcn_pth,
)

torch.set_grad_enabled(False)
HEIGHT, WIDTH, OBJECTS = 70, 90, 3  # padded to 80 x 96: pads (5, 5) and (3, 3); 5 x 6 keys


def nchw(x):
    """Our [..., H, W, C] -> PyTorch's [..., C, H, W]."""
    return np.moveaxis(np.asarray(x), -1, -3)


@pytest.fixture(scope="module")
def released_size_pair(tmp_path_factory):
    """(reference model, our config, our variables) from one random-weight STCN-layout .pth."""
    path = tmp_path_factory.mktemp("stcn") / "stcn.pth"
    model = write_stcn_pth(path, seed=0)
    weights = load_weights(path, ModelConfig.unresolved_defaults())
    assert weights.model_config == ModelConfig(family="stcn")
    return model, weights.model_config, weights.variables


def reference_frame(model, frames, labels):
    """The reference's first memory frame and its segmentation of the second frame."""
    (images,), _ = pad_divide_by([normalise_frames(frames)], 16, frames.shape[1:3])
    (masks,), _ = pad_divide_by([one_hot(labels, OBJECTS)], 16, frames.shape[1:3])
    first = aggregate(masks)[1:]  # [k, 1, Hp, Wp]: the soft masks STCN memorises for frame 0
    key0, _, f16_0, _, _ = model.encode_key(images[0:1])
    values0 = model.encode_value(images[0:1], f16_0, first)
    key1, thin1, f16_1, f8_1, f4_1 = model.encode_key(images[1:2])
    readout = top_k_read(key0.flatten(start_dim=2), values0.flatten(start_dim=2), key1, 20)
    foreground = model.decode(readout, thin1, f8_1, f4_1)
    return {
        "first_masks": first[:, 0].numpy(),
        "key0": key0,
        "values0": values0,
        "query": {"key": key1, "value": thin1, "f16": f16_1, "f8": f8_1, "f4": f4_1},
        "readout": readout,
        "foreground": foreground[:, 0],
        "probs": aggregate(foreground)[:, 0],
    }


def test_modules_and_frame_probabilities_match_the_reference(released_size_pair):
    model, config, variables = released_size_pair
    family, module = get_family(config), STCN(config)
    frames, labels = random_video(2, HEIGHT, WIDTH, OBJECTS, seed=1)
    reference = reference_frame(model, frames, labels)
    padding = Padding.for_size(HEIGHT, WIDTH)
    x = family.model_input(jnp.asarray(frames), padding)

    query0 = module.apply(variables, x[0:1], method=STCN.encode_query)
    query1 = module.apply(variables, x[1:2], method=STCN.encode_query)
    for name, expected in reference["query"].items():
        np.testing.assert_allclose(nchw(query1[name][0]), expected[0], atol=1e-4, err_msg=name)

    masks = jnp.asarray(reference["first_masks"])[None]  # [1, O, Hp, Wp]
    others = other_objects(masks, jnp.ones((1, OBJECTS), bool))
    keys, values = module.apply(variables, x[0:1], masks, others, query0, method=STCN.encode_memory)
    assert keys.shape == (1, 1, 5, 6, 64) and values.shape == (1, OBJECTS, 5, 6, 512)
    np.testing.assert_allclose(nchw(keys[0, 0]), reference["key0"][0], atol=1e-4)
    np.testing.assert_allclose(nchw(values[0]), reference["values0"], atol=1e-4)
    # Without the query (frame 0, a corrected frame) the memory frame encodes its own key.
    keys_alone, values_alone = module.apply(
        variables, x[0:1], masks, others, method=STCN.encode_memory
    )
    np.testing.assert_allclose(keys_alone, keys, atol=1e-6)
    np.testing.assert_allclose(values_alone, values, atol=1e-6)

    memory = get_family(config).memory_defaults
    readout = read_plain(
        keys.reshape(1, 1, 30, 64),
        values.reshape(1, OBJECTS, 30, 512),
        jnp.ones((1, 1, 30), bool),
        query1["key"].reshape(1, 1, 30, 64),
        similarity=memory["similarity"],
        top_k=memory["top_k"],
    ).reshape(1, OBJECTS, 5, 6, 512)
    np.testing.assert_allclose(nchw(readout[0]), reference["readout"], atol=1e-4)

    foreground = module.apply(variables, readout, query1, method=STCN.decode)
    assert foreground.shape == (1, OBJECTS, 80, 96) and foreground.dtype == jnp.float32
    np.testing.assert_allclose(foreground[0], reference["foreground"], atol=1e-4)
    spread = np.asarray(reference["foreground"])
    assert spread.std() > 0.1 and spread.min() < 0.1 and spread.max() > 0.9  # not flat
    assert np.abs(spread[0] - spread[1]).max() > 0.05  # objects differ (each wins somewhere, below)

    logits = soft_aggregate(foreground[0], jnp.ones(OBJECTS, bool), config.num_slots)
    probs = jax.nn.softmax(logits, axis=-1)[..., : OBJECTS + 1]
    np.testing.assert_allclose(np.moveaxis(np.asarray(probs), -1, 0), reference["probs"], atol=1e-4)
    assert set(np.unique(np.asarray(reference["probs"]).argmax(0))) == set(range(OBJECTS + 1))


def test_reference_loop_reads_the_published_memory_frames():
    """run_video (the protocol later whole-video tests compare against) reads frame 0 and every
    5th frame already segmented, never the previous frame, and never memorises the last frame."""
    model = make_stcn(
        seed=2, backbone="tiny", value_backbone="tiny", key_dim=8, value_dim=16, decoder_dim=8
    )
    frames, labels = random_video(12, 48, 64, 2, seed=3)
    parts = {}
    probs = run_video(model, frames, labels, 2, parts=parts)
    assert probs.shape == (12, 3, 48, 64)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    expected = [[0]] * 5 + [[0, 5]] * 5 + [[0, 5, 10]]  # frames 1..11
    assert parts["memory_frames"] == expected
    np.testing.assert_array_equal(probs[0].argmax(0), labels)
