"""One per-frame core: the training forward and the inference step compute the same frames."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stm_jax.inference.stepper import Stepper
from stm_jax.inference.stream import VideoStream
from stm_jax.memory.config import MemoryConfig
from stm_jax.training.forward import clip_logits
from tests.model_fixtures import TINY, tiny_variables
from tests.train_fixtures import random_batch


@pytest.mark.parametrize(
    "memory",
    [
        MemoryConfig(),
        pytest.param(MemoryConfig(similarity="cosine", top_k=5), marks=pytest.mark.slow),
    ],
)
def test_training_forward_equals_the_inference_step(memory):
    """Frames 2 and 3 of each clip: the (jitted) training forward's probabilities equal those of the
    jitted inference step run on the same frames with the same first mask, within 1e-5. A clip is
    compared alone (batch 1) and inside a batch of two, where only the convolutions' rounding for
    another batch shape differs (random tiny weights amplify it to ~1e-4)."""
    variables = tiny_variables(seed=3)
    batch = random_batch(batch=2, frames=3, size=48, objects=3, seed=1)
    batch["object_valid"][1, 2] = False  # the second clip has 2 objects in 3 slots
    batch["masks"][1, ..., 3] = 0.0
    batch["masks"][1, ..., 0] = 1.0 - batch["masks"][1, ..., 1:3].sum(-1)
    forward = jax.jit(lambda v, clips: clip_logits(TINY, v, clips, True, memory))
    both = np.asarray(jax.nn.softmax(forward(variables, batch), axis=-1))  # [B, 2, H, W, K]
    stream = VideoStream(Stepper(TINY, memory), variables)
    for b in range(2):
        alone = jax.tree.map(lambda x, b=b: x[b : b + 1], batch)
        training = np.asarray(jax.nn.softmax(forward(variables, alone), axis=-1))[0]
        np.testing.assert_allclose(both[b], training, atol=1e-3)
        first = np.argmax(batch["masks"][b, 0], axis=-1)  # one-hot masks: the labels they hold
        stream.start(batch["frames"][b, 0], first, num_objects=3)
        np.testing.assert_array_equal(
            np.asarray(stream.state.video.object_valid[0]), batch["object_valid"][b]
        )
        for t in (1, 2):
            probs = stream.step(batch["frames"][b, t])
            np.testing.assert_allclose(training[t - 1], probs, atol=1e-5, err_msg=f"{b} {t}")
    # The probabilities are not trivially uniform: the check above compares real predictions.
    assert both.max() > 0.6 and both[..., 1:4].std() > 0.01


def test_training_read_has_gradients_and_matches_its_memory_config():
    """Gradients flow through the read into the memory encoder, and the similarity the config names
    is the one training uses (a different similarity changes the logits)."""
    variables = tiny_variables(seed=4)
    batch = jax.tree.map(jnp.asarray, random_batch(batch=1, frames=3, size=32, objects=2, seed=2))

    # Jitted (one program each, as the trainer runs them): op by op, the backward pass alone
    # dispatched and compiled every primitive separately for about a minute.
    def logits(params, memory):
        return clip_logits(TINY, {**variables, "params": params}, batch, True, memory)

    def loss(params, memory):
        return jnp.mean(logits(params, memory)[..., 1] ** 2)

    grads = jax.jit(jax.grad(loss), static_argnums=1)(variables["params"], MemoryConfig())
    assert float(jnp.abs(grads["KV_M_r4"]["Key"]["kernel"]).max()) > 0
    assert float(jnp.abs(grads["Encoder_M"]["conv1_m"]["kernel"]).max()) > 0
    forward = jax.jit(logits, static_argnums=1)
    dot = forward(variables["params"], MemoryConfig())
    l2 = forward(variables["params"], MemoryConfig(similarity="l2"))
    assert not np.allclose(dot, l2, atol=1e-4)


def test_memory_config_range_checks():
    for bad in (dict(mem_every=0), dict(capacity=1), dict(chunk_frames=0), dict(top_k=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MemoryConfig(**bad)
    with pytest.raises(ValueError, match="eviction"):
        MemoryConfig(eviction="random")
    clip = MemoryConfig(similarity="l2", capacity=40).for_training_clip(3)
    assert (clip.capacity, clip.mem_every, clip.similarity) == (2, 1, "l2")
