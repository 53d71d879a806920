"""STCN's `init_variables` draws what STCN's code draws: torchvision ResNet init in both backbones
(He-normal fan-out, zero conv biases in the value encoder, BN 1 / 0), orthogonal mask filters in the
value stem, an orthogonal `key_proj` with a zero bias, PyTorch's default init everywhere else; ImageNet
weights then fill the backbones and leave the rest as drawn. Also the family's contract: defaults,
protocol, input convention."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from stm_jax.convert.torchvision_resnet import convert_torchvision_resnet
from stm_jax.memory.config import MemoryConfig
from stm_jax.model.config import ModelConfig
from stm_jax.model.encoders import normalize
from stm_jax.model.family import get_family, init_variables
from stm_jax.model.padding import Padding
from tests.torch_stcn_reference import make_stcn
from tests.torch_stm_reference import make_resnet_layers, randomize_batchnorm

STCN = ModelConfig(family="stcn")


@pytest.fixture(scope="module")
def drawn():
    """The released-size model as `init_variables` draws it (numpy)."""
    return jax.tree.map(np.asarray, init_variables(jax.random.key(0), STCN))


@pytest.fixture(scope="module")
def params(drawn):
    return drawn["params"]


def he_fan_out_std(kernel):
    """torchvision / STCN's mod_resnet conv init: N(0, sqrt(2 / (kh * kw * out)))."""
    return math.sqrt(2.0 / (kernel.shape[0] * kernel.shape[1] * kernel.shape[-1]))


def assert_orthonormal_columns(kernel):
    """torch.nn.init.orthogonal_ of an [out, in, kh, kw] tensor: its out rows of length in*kh*kw
    are orthonormal, i.e. our HWIO kernel's columns."""
    flat = kernel.reshape(-1, kernel.shape[-1])
    np.testing.assert_allclose(flat.T @ flat, np.eye(kernel.shape[-1]), atol=1e-5)


def assert_pytorch_default(leaf, fan_in):
    """nn.Conv2d / nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
    bound = 1.0 / math.sqrt(fan_in)
    for array in (leaf["kernel"], leaf["bias"]):
        assert np.abs(array).max() <= bound + 1e-7
    kernel = leaf["kernel"]
    np.testing.assert_allclose(kernel.std(), bound / math.sqrt(3.0), rtol=0.05)


def test_key_projection_is_orthogonal_with_zero_bias(params):
    kernel = params["key_proj"]["key_proj"]["kernel"]
    assert kernel.shape == (3, 3, 1024, 64)
    assert_orthonormal_columns(kernel)
    assert not np.any(params["key_proj"]["key_proj"]["bias"])
    # The reference (torch.nn.init.orthogonal_ as STCN calls it) has the same property.
    reference = make_stcn(randomized=False).key_proj.key_proj.weight.detach().numpy()
    assert_orthonormal_columns(reference.transpose(2, 3, 1, 0))


def test_value_stem_rgb_like_a_resnet_masks_orthogonal_biases_zero(params):
    encoder = params["value_encoder"]
    kernel = encoder["conv1"]["kernel"]
    assert kernel.shape == (7, 7, 5, 64)
    np.testing.assert_allclose(kernel[:, :, :3].std(), he_fan_out_std(kernel), rtol=0.05)
    assert_orthonormal_columns(kernel[:, :, 3:])
    biases = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(encoder)
        if path[-1].key == "bias"
        and "fuser" not in str(path)
        and "bn" not in str(path[-2])
        and "downsample_1" not in str(path[-2])
    ]
    assert len(biases) == 1 + 2 * 6 + 2  # conv1, two convs per BasicBlock, two downsample convs
    assert not any(np.any(bias) for bias in biases)
    block = encoder["backbone"]["res4_1"]["conv2"]["kernel"]
    np.testing.assert_allclose(block.std(), he_fan_out_std(block), rtol=0.05)


def test_key_encoder_starts_as_torchvision(params):
    encoder = params["key_encoder"]
    for kernel in (encoder["conv1"]["kernel"], encoder["backbone"]["res3_1"]["conv2"]["kernel"]):
        np.testing.assert_allclose(kernel.std(), he_fan_out_std(kernel), rtol=0.05)
    assert "bias" not in encoder["conv1"]
    np.testing.assert_array_equal(encoder["backbone"]["res4_0"]["bn3"]["scale"], 1.0)
    np.testing.assert_array_equal(encoder["backbone"]["res4_0"]["bn3"]["bias"], 0.0)


def test_new_layers_have_pytorchs_default_init(params):
    decoder, fuser = params["decoder"], params["value_encoder"]["fuser"]
    assert_pytorch_default(params["key_comp"], 9 * 1024)
    assert_pytorch_default(decoder["compress"]["conv1"], 9 * 1024)
    assert_pytorch_default(decoder["up_16_8"]["skip_conv"], 9 * 512)
    assert_pytorch_default(decoder["up_8_4"]["out_conv"]["conv2"], 9 * 256)
    assert_pytorch_default(fuser["block1"]["downsample"], 9 * 1280)
    assert_pytorch_default(fuser["block2"]["conv1"], 9 * 512)
    gate = fuser["attention"]["ChannelGate"]
    assert gate["mlp_1"]["kernel"].shape == (512, 32) and gate["mlp_3"]["kernel"].shape == (32, 512)
    assert_pytorch_default(gate["mlp_1"], 512)
    spatial = fuser["attention"]["SpatialGate"]["spatial"]["conv"]
    assert spatial["kernel"].shape == (7, 7, 2, 1)
    assert np.abs(spatial["kernel"]).max() <= 1.0 / math.sqrt(98)
    # Same bound as the reference's own (PyTorch) initialisation of that layer.
    reference = make_stcn(randomized=False).decoder.compress.conv1.weight.detach().numpy()
    np.testing.assert_allclose(
        reference.std(), decoder["compress"]["conv1"]["kernel"].std(), rtol=0.05
    )


def torchvision_state_dict(backbone, seed=0):
    """A torchvision-layout ResNet state dict (conv1, bn1, layer1..3; no conv biases), random."""
    torch.manual_seed(seed)
    layers, stem = make_resnet_layers(backbone)
    module = torch.nn.Module()
    module.conv1 = torch.nn.Conv2d(3, stem, 7, 2, 3, bias=False)
    module.bn1 = torch.nn.BatchNorm2d(stem)
    for index, layer in enumerate(layers):
        setattr(module, f"layer{index + 1}", layer)
    randomize_batchnorm(module, torch.Generator().manual_seed(seed))
    return {k: v.numpy() for k, v in module.state_dict().items()}


def test_imagenet_weights_fill_both_backbones_and_keep_the_rest(drawn):
    """ResNet-50 weights fill the key encoder, ResNet-18 weights the value encoder (RGB filters
    only); the mask filters, the value encoder's conv biases and every other layer stay as drawn."""
    resnet50, resnet18 = (
        torchvision_state_dict("resnet50", 1),
        torchvision_state_dict("resnet18", 2),
    )
    variables, filled_50 = convert_torchvision_resnet(resnet50, STCN, variables=drawn)
    variables, filled_18 = convert_torchvision_resnet(resnet18, STCN, variables=variables)
    params = variables["params"]
    np.testing.assert_array_equal(
        params["key_encoder"]["conv1"]["kernel"], resnet50["conv1.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        variables["batch_stats"]["key_encoder"]["backbone"]["res4_5"]["bn3"]["var"],
        resnet50["layer3.5.bn3.running_var"],
    )
    value_stem = params["value_encoder"]["conv1"]["kernel"]
    np.testing.assert_array_equal(
        value_stem[:, :, :3], resnet18["conv1.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        value_stem[:, :, 3:], drawn["params"]["value_encoder"]["conv1"]["kernel"][:, :, 3:]
    )
    block = params["value_encoder"]["backbone"]["res3_0"]
    np.testing.assert_array_equal(
        block["conv1"]["kernel"], resnet18["layer2.0.conv1.weight"].transpose(2, 3, 1, 0)
    )
    assert not np.any(block["conv1"]["bias"]) and not np.any(block["downsample_0"]["bias"])
    assert all(path[0] == "key_encoder" for _, path in filled_50)
    assert all(path[0] == "value_encoder" for _, path in filled_18)
    assert ("params", ("value_encoder", "backbone", "res3_0", "conv1", "bias")) not in filled_18
    for untouched in (("decoder", "pred", "kernel"), ("key_proj", "key_proj", "kernel")):
        ours, before = params, drawn["params"]
        for part in untouched:
            ours, before = ours[part], before[part]
        np.testing.assert_array_equal(ours, before)


def test_family_contract_defaults_protocol_and_input():
    assert STCN.to_dict() == dict(
        family="stcn",
        backbone="resnet50",
        value_backbone="resnet18",
        key_dim=64,
        value_dim=512,
        decoder_dim=256,
        max_objects=10,
        dtype="float32",
    )
    family = get_family(STCN)
    assert family.shares_memory_keys and family.memory_uses_query
    assert family.memory_defaults == {
        "similarity": "l2",
        "top_k": 20,
        "mem_every": 5,
        "read_previous": False,
    }
    known = {k: v for k, v in family.memory_defaults.items() if k in MemoryConfig().to_dict()}
    MemoryConfig(**known)  # the read fields are valid memory settings
    assert family.torchvision_backbones() == {
        "key_encoder": "resnet50",
        "value_encoder": "resnet18",
    }
    frames = np.random.default_rng(0).integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    x = np.asarray(family.model_input(jnp.asarray(frames), Padding.for_size(20, 30)))
    assert x.shape == (2, 32, 32, 3)
    # Normalised, then padded: the padding is 0 in normalised space (the mean colour).
    inside = np.asarray(normalize(jnp.asarray(frames, jnp.float32) / 255.0))
    np.testing.assert_allclose(x[:, 6:26, 1:31], inside, atol=1e-6)
    assert not np.any(x[:, :6]) and not np.any(x[:, :, :1]) and not np.any(x[:, 26:])
