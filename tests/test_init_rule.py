"""`init_variables` is the model training starts from, on every init path: a leaf the source fills
holds the source's value, every other leaf is exactly what `init_variables(seed)` draws (the
modules' own initialisers; nothing re-initialises afterwards)."""

import dataclasses

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import torch

from stm_jax.convert.common import leaves, to_torch, torch_name
from stm_jax.model.backbone import BACKBONES
from stm_jax.model.family import init_variables
from stm_jax.training.init import initial_variables
from tests.model_fixtures import TINY

SEED = 5


def flat(variables) -> dict:
    return {(c, p): np.asarray(leaf) for c, p, leaf in leaves(variables)}


def drawn(config, seed=SEED) -> dict:
    return flat(init_variables(jax.random.key(seed), config))


def check(variables, source: dict, config) -> int:
    """Leaves in `source` ((collection, path) -> value) equal it; all others equal the fresh draw.
    Returns how many leaves came from the source."""
    fresh, ours = drawn(config), flat(variables)
    assert ours.keys() == fresh.keys()
    from_source = 0
    for key, value in ours.items():
        if key in source:
            np.testing.assert_array_equal(value, source[key], err_msg=str(key))
            from_source += 1
        else:
            np.testing.assert_array_equal(value, fresh[key], err_msg=str(key))
    return from_source


def test_scratch_is_init_variables():
    variables, note = initial_variables(TINY, "", SEED)
    assert check(variables, {}, TINY) == 0 and "scratch" in note


def test_torchvision_fills_the_backbones_and_nothing_else(tmp_path):
    """A torchvision-layout file (names conv1, bn1, layer1..3 of the tiny ResNet, random values)."""
    donor = flat(init_variables(jax.random.key(99), TINY))
    backbone = BACKBONES.get("tiny")
    state, source = {}, {}
    for (collection, path), value in donor.items():
        if path[0] != "Encoder_Q":
            continue
        name = backbone.torchvision_name(collection, path[1:])
        if name is not None:
            state[name] = torch.from_numpy(to_torch(value))
            for encoder in ("Encoder_M", "Encoder_Q"):
                source[(collection, (encoder, *path[1:]))] = value
    state["fc.weight"] = torch.zeros(3, 32)  # not part of the model: ignored
    torch.save(state, tmp_path / "tiny_resnet.pth")
    variables, _ = initial_variables(TINY, str(tmp_path / "tiny_resnet.pth"), SEED)
    filled = check(variables, source, TINY)
    assert filled == len(source) > 0
    assert ("params", ("Encoder_M", "conv1_m", "kernel")) not in source  # a new layer: drawn


def official_state(variables) -> dict:
    state = {"module." + torch_name(c, p): torch.from_numpy(to_torch(v)) for (c, p), v in variables}
    for encoder in ("Encoder_M", "Encoder_Q"):
        state[f"module.{encoder}.mean"] = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
        state[f"module.{encoder}.std"] = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    return state


@pytest.mark.slow
def test_official_weights_of_another_width_fill_the_matching_layers(tmp_path):
    donor = flat(init_variables(jax.random.key(99), TINY))
    torch.save(official_state(donor.items()), tmp_path / "stm.pth")
    variables, _ = initial_variables(TINY, str(tmp_path / "stm.pth"), SEED)
    assert check(variables, donor, TINY) == len(donor)  # same architecture: every leaf
    wider = dataclasses.replace(TINY, key_dim=12)
    variables, note = initial_variables(wider, str(tmp_path / "stm.pth"), SEED)
    shapes = {k: v.shape for k, v in drawn(wider).items()}
    matching = {k: v for k, v in donor.items() if shapes.get(k) == v.shape}
    assert "matching layers only" in note
    assert check(variables, matching, wider) == len(matching) < len(donor)


@pytest.mark.slow
def test_our_checkpoint_with_another_config_fills_the_matching_layers(tmp_path):
    donor = init_variables(jax.random.key(99), TINY)
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        manager.save(
            7,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave({"params": donor["params"]}),
                batch_stats=ocp.args.StandardSave(donor["batch_stats"]),
                meta=ocp.args.JsonSave({"model": TINY.to_dict(), "step": 7, "score": None}),
            ),
        )
    new_heads = dataclasses.replace(TINY, value_dim=24)
    variables, note = initial_variables(new_heads, str(tmp_path / "ckpt"), SEED)
    shapes = {k: v.shape for k, v in drawn(new_heads).items()}
    matching = {k: v for k, v in flat(donor).items() if shapes.get(k) == v.shape}
    assert "other config.model" in note
    assert check(variables, matching, new_heads) == len(matching) < len(flat(donor))
