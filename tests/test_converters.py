"""Official-checkpoint and torchvision converters: strict key/shape checks, real .pth round trips."""

from pathlib import Path

import jax
import numpy as np
import pytest
import torch

from stm_jax.convert.official import convert_state_dict, load_official_checkpoint
from stm_jax.convert.torchvision_resnet import load_torchvision_resnet
from stm_jax.model.config import ModelConfig
from stm_jax.model.encoders import IMAGENET_MEAN, IMAGENET_STD

KEY_LIST = Path(__file__).parent / "data" / "official_state_dict_keys.txt"


def official_shapes(key_list: Path = KEY_LIST):
    """{name: shape} of a released state dict's key list (one 'name [d0, d1, ...]' per line)."""
    shapes = {}
    for line in key_list.read_text().splitlines():
        name, shape = line.split(" ", 1)
        shapes[name] = tuple(int(s) for s in shape.strip("[] ").split(",") if s.strip())
    return shapes


def synthetic_official_state_dict(with_batches_tracked=True, seed=0):
    """Every key and shape of STM_weights.pth with random values (ImageNet mean/std buffers)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in official_shapes().items():
        if name.endswith("num_batches_tracked"):
            if with_batches_tracked:
                state[name] = np.array(7)
        elif name.endswith(".mean"):
            state[name] = np.asarray(IMAGENET_MEAN, np.float32).reshape(shape)
        elif name.endswith(".std"):
            state[name] = np.asarray(IMAGENET_STD, np.float32).reshape(shape)
        else:
            state[name] = rng.normal(size=shape).astype(np.float32)
    return state


def test_key_list_is_the_documented_558_keys():
    shapes = official_shapes()
    assert len(shapes) == 558
    assert sum(name.endswith("num_batches_tracked") for name in shapes) == 86


@pytest.mark.parametrize("with_batches_tracked", [True, False])
def test_official_checkpoint_round_trip_through_a_real_pth(tmp_path, with_batches_tracked):
    state = synthetic_official_state_dict(with_batches_tracked)
    path = tmp_path / "STM_weights.pth"
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, path)
    variables = load_official_checkpoint(path, ModelConfig())
    params, stats = variables["params"], variables["batch_stats"]
    np.testing.assert_array_equal(
        params["Encoder_M"]["conv1_m"]["kernel"],
        state["module.Encoder_M.conv1_m.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        params["Encoder_Q"]["backbone"]["res4_5"]["bn3"]["scale"],
        state["module.Encoder_Q.res4.5.bn3.weight"],
    )
    np.testing.assert_array_equal(
        stats["Encoder_M"]["backbone"]["res3_0"]["downsample_1"]["var"],
        state["module.Encoder_M.res3.0.downsample.1.running_var"],
    )
    np.testing.assert_array_equal(
        params["Decoder"]["RF2"]["ResMM"]["conv2"]["bias"],
        state["module.Decoder.RF2.ResMM.conv2.bias"],
    )
    template = jax.eval_shape(
        lambda: __import__("stm_jax.model.family", fromlist=["x"]).init_variables(
            jax.random.key(0), ModelConfig()
        )
    )
    assert jax.tree.map(lambda a: a.shape, template) == jax.tree.map(lambda a: a.shape, variables)


def test_missing_unexpected_and_misshaped_keys_are_all_listed():
    state = synthetic_official_state_dict()
    del state["module.Decoder.pred2.bias"]
    state["module.Decoder.extra.weight"] = np.zeros(3)
    state["module.KV_M_r4.Key.weight"] = np.zeros((64, 1024, 3, 3), np.float32)
    with pytest.raises(ValueError) as error:
        convert_state_dict(state, ModelConfig(), source="bad.pth")
    message = str(error.value)
    assert "bad.pth" in message
    assert "Decoder.pred2.bias" in message and "missing (1)" in message
    assert "Decoder.extra.weight" in message and "unexpected (1)" in message
    assert "KV_M_r4.Key.weight" in message and "wrong shape (1)" in message


def test_wrong_normalisation_buffers_and_wrong_config_are_refused():
    state = synthetic_official_state_dict()
    state["module.Encoder_Q.std"] = np.ones((1, 3, 1, 1), np.float32)
    with pytest.raises(ValueError, match="Encoder_Q.std"):
        convert_state_dict(state, ModelConfig())
    with pytest.raises(ValueError, match="wrong shape"):
        convert_state_dict(synthetic_official_state_dict(), ModelConfig(key_dim=64))


def test_unreadable_pth_names_the_file(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pth"):
        load_official_checkpoint(path, ModelConfig())
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_official_checkpoint(tmp_path / "missing.pth", ModelConfig())


def torchvision_like_state_dict(seed=0):
    """torchvision resnet50 names (conv1, bn1, layer1..4, fc) from the official Encoder_Q keys."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in official_shapes().items():
        if not name.startswith("module.Encoder_Q.") or name.endswith((".mean", ".std")):
            continue
        short = name[len("module.Encoder_Q.") :]
        for stage in (2, 3, 4):
            short = short.replace(f"res{stage}.", f"layer{stage - 1}.")
        state[short] = np.array(3) if not shape else rng.normal(size=shape).astype(np.float32)
    state["layer4.0.conv1.weight"] = rng.normal(size=(512, 1024, 1, 1)).astype(np.float32)
    state["fc.weight"] = rng.normal(size=(1000, 2048)).astype(np.float32)
    state["fc.bias"] = np.zeros(1000, np.float32)
    return state


@pytest.mark.slow
def test_torchvision_resnet_fills_both_backbones_and_keeps_new_layers_random(tmp_path):
    state = torchvision_like_state_dict()
    path = tmp_path / "resnet50.pth"
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, path)
    variables = load_torchvision_resnet(path, ModelConfig())
    for encoder in ("Encoder_M", "Encoder_Q"):
        np.testing.assert_array_equal(
            variables["params"][encoder]["conv1"]["kernel"],
            state["conv1.weight"].transpose(2, 3, 1, 0),
        )
        np.testing.assert_array_equal(
            variables["batch_stats"][encoder]["backbone"]["res3_2"]["bn2"]["mean"],
            state["layer2.2.bn2.running_mean"],
        )
    mask_stem = variables["params"]["Encoder_M"]["conv1_m"]["kernel"]
    assert mask_stem.shape == (7, 7, 1, 64) and 0.01 < float(np.std(mask_stem)) < 1.0
    del state["layer3.5.conv3.weight"]
    state["extra.weight"] = np.zeros(2, np.float32)
    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, path)
    with pytest.raises(ValueError, match=r"layer3\.5\.conv3\.weight[\s\S]*extra\.weight"):
        load_torchvision_resnet(path, ModelConfig())
