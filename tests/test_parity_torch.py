"""Parity with a PyTorch reference STM (random weights, non-trivial BN) through the real converter."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.inference.whole_video import labels_to_probs
from stm_jax.memory.config import MemoryConfig
from stm_jax.memory.read import read_plain
from stm_jax.model.aggregation import soft_aggregate
from stm_jax.model.config import ModelConfig
from stm_jax.model.families.stm import STM
from stm_jax.model.padding import Padding
from tests.parity_utils import make_reference, random_video, to_torch_frame

torch.set_grad_enabled(False)
RESNET50 = ModelConfig(backbone="resnet50")


def nchw(x):
    return np.asarray(x).transpose(0, 3, 1, 2)


@pytest.fixture(scope="module")
def resnet50_pair():
    return make_reference(RESNET50, seed=0)


def test_single_frame_parity_three_objects(resnet50_pair):
    """Encoder, key/value, read, decoder and aggregated probabilities agree within 1e-4."""
    torch_model, variables = resnet50_pair
    config, model = RESNET50, STM(RESNET50)
    height, width, num_objects = 50, 70, 3  # not multiples of 16: pads (7, 7) and (5, 5)
    frames, labels = random_video(2, height, width, num_objects, seed=1)
    probs0 = labels_to_probs(labels, config.num_slots)

    keys_t, values_t = torch_model.memorize(
        to_torch_frame(frames[0]), torch.from_numpy(probs0).permute(2, 0, 1)[None], num_objects
    )
    logit_t, parts = torch_model.segment(
        to_torch_frame(frames[1]), keys_t, values_t, num_objects, return_parts=True
    )

    padding = Padding.for_size(height, width)
    masks = jnp.moveaxis(padding.pad(jnp.asarray(probs0))[..., 1 : num_objects + 1], -1, 0)
    others = jnp.clip(masks.sum(0, keepdims=True) - masks, 0, 1)
    frame0 = padding.pad(jnp.asarray(frames[0], jnp.float32) / 255.0)[None]
    keys, values = model.apply(
        variables, frame0, masks[None], others[None], None, method=STM.encode_memory
    )
    np.testing.assert_allclose(
        np.asarray(keys[0]).transpose(0, 3, 1, 2), keys_t[0, 1 : num_objects + 1, :, 0], atol=1e-4
    )
    np.testing.assert_allclose(
        np.asarray(values[0]).transpose(0, 3, 1, 2),
        values_t[0, 1 : num_objects + 1, :, 0],
        atol=1e-4,
    )

    frame1 = padding.pad(jnp.asarray(frames[1], jnp.float32) / 255.0)[None]
    query = model.apply(variables, frame1, method=STM.encode_query)
    q_key, q_value, r3, r2 = query["key"], query["value"], query["r3"], query["r2"]
    np.testing.assert_allclose(nchw(q_key), parts["k4"], atol=1e-4)
    np.testing.assert_allclose(nchw(q_value), parts["v4"], atol=1e-4)
    np.testing.assert_allclose(nchw(r3), parts["r3"], atol=1e-4)
    np.testing.assert_allclose(nchw(r2), parts["r2"], atol=1e-4)

    h, w = q_key.shape[1:3]
    readout = read_plain(
        keys.reshape(1, num_objects, h * w, -1),
        values.reshape(1, num_objects, h * w, -1),
        jnp.ones((1, num_objects, h * w), bool),
        q_key.reshape(1, 1, h * w, -1),
    ).reshape(1, num_objects, h, w, -1)
    np.testing.assert_allclose(
        np.asarray(readout[0]).transpose(0, 3, 1, 2), parts["m4"][:, : config.value_dim], atol=1e-4
    )
    logits = model.apply(variables, readout, query, method=STM.decode_logits)
    np.testing.assert_allclose(nchw(logits[0]), parts["logits"], atol=1e-4)

    foreground = model.apply(variables, readout, query, method=STM.decode)[0]
    np.testing.assert_allclose(foreground, jax.nn.softmax(logits, -1)[0, ..., 1], atol=1e-6)
    aggregated = padding.crop(soft_aggregate(foreground, jnp.ones(num_objects, bool), 11))
    probs = np.asarray(jax.nn.softmax(aggregated, -1))
    probs_t = F.softmax(logit_t, dim=1)[0].permute(1, 2, 0).numpy()
    assert probs.shape == (height, width, 11)
    np.testing.assert_allclose(probs, probs_t, atol=1e-4)

    # The packaged frame step (padding, chunked read, cropping) gives the same probabilities.
    stream = VideoStream(Stepper(config, MemoryConfig(capacity=4, chunk_frames=2)), variables)
    stream.start(frames[0], labels, num_objects)
    np.testing.assert_allclose(np.asarray(stream.step(frames[1])), probs_t, atol=1e-4)


def torch_protocol_step(model, frames, probs, t, keys, values, num_objects, mem_every=5):
    """Official eval_DAVIS Run_video loop body for frame t, memorising reference probabilities."""
    prev_key, prev_value = model.memorize(to_torch_frame(frames[t - 1]), probs[t - 1], num_objects)
    if t - 1 == 0:
        this_keys, this_values = prev_key, prev_value
    else:
        this_keys = torch.cat([keys, prev_key], dim=3)
        this_values = torch.cat([values, prev_value], dim=3)
    logit = model.segment(to_torch_frame(frames[t]), this_keys, this_values, num_objects)
    if (t - 1) % mem_every == 0:
        keys, values = this_keys, this_values
    return F.softmax(logit, dim=1), keys, values


def test_ten_frame_protocol_parity_step_by_step():
    """Over 10 frames of the official protocol, with the reference's probabilities memorised by both,
    every frame's probabilities agree within 1e-3 (free-running labels would be chaotic)."""
    config = ModelConfig(backbone="resnet18", key_dim=64, value_dim=128, decoder_dim=64)
    torch_model, variables = make_reference(config, seed=3)
    num_objects, height, width = 2, 40, 56
    frames, labels = random_video(10, height, width, num_objects, seed=4)
    probs_t = [torch.from_numpy(labels_to_probs(labels, 11)).permute(2, 0, 1)[None]]
    # capacity 3 with chunk 2 also exercises eviction and a partially valid chunk
    stepper = Stepper(config, MemoryConfig(mem_every=5, capacity=8, chunk_frames=2))
    stream = VideoStream(stepper, variables)
    stream.start(frames[0], labels, num_objects)
    keys = values = None
    worst = 0.0
    for t in range(1, 10):
        reference, keys, values = torch_protocol_step(
            torch_model, frames, probs_t, t, keys, values, num_objects
        )
        ours = np.asarray(stream.step(frames[t]))
        reference_hwk = reference[0].permute(1, 2, 0).numpy()
        worst = max(worst, float(np.abs(ours - reference_hwk).max()))
        np.testing.assert_allclose(ours, reference_hwk, atol=1e-3, err_msg=f"frame {t}")
        stream.rememorize(reference_hwk)  # teacher forcing: memorise the reference's output
        probs_t.append(reference)
    state = stream.state.video
    assert int(state.next_frame[0]) == 10
    # frames 0 and 5 committed, 9 temporary
    assert list(np.asarray(state.bank.frame_index[0])[:3]) == [0, 5, 9]
