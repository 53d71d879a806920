"""The modules' own initialisers (stm_jax/model/layers.py) on every init path, with real-scale
features.

Features come from a ResNet whose BN statistics are calibrated on natural-statistics images
(`stm_jax.convert.calibrated_resnet`), the stand-in for ImageNet weights. On each path: fewer than 5 %
of the foreground (pixel, object) pairs sit past soft aggregation's clamp, and every parameter leaf
gets a non-zero gradient at step 0. Before the rule, the torchvision path put ~85 % past the clamp.
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import torch

from stm_jax.convert.calibrated_resnet import save_calibrated_resnet
from stm_jax.convert.common import leaves, torch_name
from stm_jax.data.natural_images import natural_images
from stm_jax.model.config import ModelConfig
from stm_jax.training.defaults import default_train_config
from stm_jax.training.health import saturated_fraction
from stm_jax.training.init import initial_variables, param_paths
from stm_jax.training.step import _loss_fn

SIZE = 64
R18 = ModelConfig(backbone="resnet18", max_objects=3)


@pytest.fixture(scope="module")
def resnet18_pth(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    save_calibrated_resnet(path, "resnet18", image_size=SIZE, count=4)
    return path


@pytest.fixture(scope="module")
def torchvision_r18(resnet18_pth):
    """R18 initialised from the calibrated torchvision file: the source of the other paths' tests
    (read-only; built once)."""
    return initial_variables(R18, str(resnet18_pth), 0)


def natural_batch(objects=2, max_objects=3):
    frames = natural_images(6, SIZE, SIZE, seed=5).reshape(2, 3, SIZE, SIZE, 3)
    labels = np.zeros((2, 3, SIZE, SIZE), np.int32)
    labels[:, :, 16:32, 16:36] = 1
    labels[:, :, 36:, 30:] = 2
    return {
        "frames": frames,
        "labels": labels,
        "void": np.zeros(labels.shape, bool),
        "masks": (labels[..., None] == np.arange(max_objects + 1)).astype(np.float32),
        "object_valid": np.arange(max_objects)[None].repeat(2, 0) < objects,
    }


TRAIN = default_train_config()


@functools.partial(jax.jit, static_argnums=3)
def loss_and_grads(params, batch_stats, batch, config: ModelConfig):
    """Step 0's loss and gradients; jitted once per model config (the weights and the batch are
    arguments, not constants), so the init paths of one config share one compiled program."""

    def loss(params):
        return _loss_fn(params, batch_stats, batch, 0, config, TRAIN)

    return jax.value_and_grad(loss, has_aux=True)(params)


def check_healthy(config: ModelConfig, variables: dict) -> None:
    batch = natural_batch(max_objects=config.max_objects)
    (value, aux), grads = loss_and_grads(
        variables["params"], variables["batch_stats"], batch, config
    )
    fraction = float(aux["saturated"] / aux["fg_pixels"])
    assert fraction < 0.05, fraction
    # Two frames of CE near the uninformative prediction's (~1.7 each on this batch): over 30 draws
    # of the init the loss ranged 2.0-6.6; with He init on the heads (saturated logits) it is 39-47.
    assert math.isfinite(float(value)) and float(value) < 10.0
    for path, grad in jax.tree_util.tree_flatten_with_path(grads)[0]:
        assert float(np.abs(grad).max()) > 0, jax.tree_util.keystr(path)


def check_pytorch_default(variables: dict, paths) -> None:
    """Every listed kernel is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (and so is its bias)."""
    for path in paths:
        tree = variables["params"]
        for part in path[:-1]:
            tree = tree[part]
        kernel = tree["kernel"]
        bound = 1 / math.sqrt(np.prod(kernel.shape[:-1]))
        assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9 * bound, path
        if kernel.size > 1000:  # uniform: std = bound / sqrt(3)
            assert abs(kernel.std() - bound / math.sqrt(3)) < 0.05 * bound, path
        if "bias" in tree:
            assert np.abs(tree["bias"]).max() <= bound and np.abs(tree["bias"]).max() > 0, path


def is_backbone_leaf(path: tuple[str, ...]) -> bool:
    """Leaves of either encoder's ResNet (stem conv1/bn1, res2..res4): torchvision's init."""
    return path[0] in ("Encoder_M", "Encoder_Q") and path[1] in ("conv1", "bn1", "backbone")


def new_layer_kernels(variables):
    return [
        p for p in param_paths(variables["params"]) if p[-1] == "kernel" and not is_backbone_leaf(p)
    ]


def test_saturated_fraction_hand_made():
    logits = np.zeros((1, 1, 2, 2, 4), np.float32)
    logits[0, 0, 0, 0, 1] = 16.118  # clamp at p = 1e-7 ... 1 - 1e-7
    logits[0, 0, 0, 1, 2] = -16.118
    logits[0, 0, 1, 1, 1] = 15.0  # not at the clamp
    logits[0, 0, 1, 0, 2] = 30.0  # slot 2 invalid in clip 0: not counted
    object_valid = np.array([[True, False, False]])
    valid = np.ones((1, 1, 2, 2), bool)
    valid[0, 0, 1, 1] = True
    saturated, total = saturated_fraction(logits, object_valid, valid)
    assert (float(saturated), float(total)) == (1.0, 4.0)
    object_valid = np.array([[True, True, False]])
    valid[0, 0, 0, 0] = False  # void pixel: not counted
    saturated, total = saturated_fraction(logits, object_valid, valid)
    assert (float(saturated), float(total)) == (2.0, 6.0)


@pytest.mark.slow
def test_scratch(resnet18_pth):
    variables, note = initial_variables(R18, "", 0)
    assert "scratch" in note
    check_pytorch_default(variables, new_layer_kernels(variables))
    check_healthy(R18, variables)


@pytest.mark.slow
def test_torchvision_resnet(resnet18_pth, torchvision_r18):
    variables, note = torchvision_r18
    state = torch.load(resnet18_pth)
    np.testing.assert_array_equal(
        variables["batch_stats"]["Encoder_M"]["backbone"]["res4_1"]["bn2"]["var"],
        state["layer3.1.bn2.running_var"].numpy(),
    )
    kernels = new_layer_kernels(variables)
    assert ("Encoder_M", "conv1_m", "kernel") in kernels
    assert ("Decoder", "pred2", "kernel") in kernels
    check_pytorch_default(variables, kernels)
    check_healthy(R18, variables)


def official_pth(variables, path):
    """Writes variables as an official-layout STM state dict (what the official release holds)."""
    state = {}
    for collection, leaf_path, leaf in leaves(variables):
        value = np.asarray(leaf, np.float32)
        state["module." + torch_name(collection, leaf_path)] = torch.from_numpy(
            np.ascontiguousarray(np.transpose(value, (3, 2, 0, 1)) if value.ndim == 4 else value)
        )
    for encoder in ("Encoder_M", "Encoder_Q"):
        state[f"module.{encoder}.mean"] = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
        state[f"module.{encoder}.std"] = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    torch.save(state, path)


@pytest.mark.slow
def test_official_with_other_max_objects_or_backbone(torchvision_r18, tmp_path):
    source, _ = torchvision_r18
    official_pth(source, tmp_path / "stm.pth")
    other_k = ModelConfig(backbone="resnet18", max_objects=5)
    variables, note = initial_variables(other_k, str(tmp_path / "stm.pth"), 1)
    np.testing.assert_array_equal(
        variables["params"]["Decoder"]["pred2"]["kernel"],
        source["params"]["Decoder"]["pred2"]["kernel"],
    )
    check_healthy(other_k, variables)
    narrow = ModelConfig(backbone="resnet18", key_dim=64, max_objects=3)
    variables, note = initial_variables(narrow, str(tmp_path / "stm.pth"), 1)
    assert "matching layers only" in note
    np.testing.assert_array_equal(
        variables["params"]["KV_M_r4"]["Value"]["kernel"],
        source["params"]["KV_M_r4"]["Value"]["kernel"],
    )
    check_pytorch_default(variables, [("KV_M_r4", "Key", "kernel"), ("KV_Q_r4", "Key", "kernel")])
    check_healthy(narrow, variables)


@pytest.mark.slow
def test_our_checkpoint_with_new_heads(torchvision_r18, tmp_path):
    source, _ = torchvision_r18
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        manager.save(
            7,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave({"params": source["params"]}),
                batch_stats=ocp.args.StandardSave(source["batch_stats"]),
                meta=ocp.args.JsonSave({"model": R18.to_dict(), "step": 7, "score": None}),
            ),
        )
    new_heads = ModelConfig(backbone="resnet18", key_dim=32, value_dim=256, max_objects=3)
    variables, note = initial_variables(new_heads, str(tmp_path / "ckpt"), 3)
    assert "other config.model" in note
    np.testing.assert_array_equal(
        variables["params"]["Encoder_Q"]["backbone"]["res3_0"]["conv1"]["kernel"],
        source["params"]["Encoder_Q"]["backbone"]["res3_0"]["conv1"]["kernel"],
    )
    check_pytorch_default(variables, [("KV_M_r4", "Key", "kernel"), ("KV_Q_r4", "Value", "kernel")])
    check_healthy(new_heads, variables)
