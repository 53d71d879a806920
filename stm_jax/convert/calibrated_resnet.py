"""A torchvision-layout ResNet state dict whose BN statistics are calibrated on natural images.

A stand-in for ImageNet weights where none can be downloaded: torchvision's init (He-normal fan-out
convs, BN scale 1 / bias 0), then every BN's running mean/var set to the batch statistics of its
input on `natural_images` -- one forward pass with BN in train mode, as when statistics are
re-estimated on photographs. After it, activations are unit-scale after every BN, like a trained
ImageNet model's, so heads and decoders see features of the real scale.

    state = calibrated_resnet_state_dict("resnet50", image_size=224, count=16)
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, "resnet50.pth")
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from stm_jax.convert.common import leaves
from stm_jax.data.natural_images import natural_images
from stm_jax.model.backbone import BACKBONES
from stm_jax.model.config import ModelConfig
from stm_jax.model.families.stm import STM
from stm_jax.model.family import init_variables
from stm_jax.model.layers import BN_EPSILON, FrozenBatchNorm


def _train_mode_bn(stats: dict):
    """An interceptor that runs every FrozenBatchNorm on its batch statistics and records them."""

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if not isinstance(module, FrozenBatchNorm) or context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        x = args[0]
        axes = tuple(range(x.ndim - 1))
        mean, var = jnp.mean(x, axes), jnp.var(x, axes)
        stats[module.path] = (np.asarray(mean), np.asarray(var))
        scale = module.get_variable("params", "scale")
        bias = module.get_variable("params", "bias")
        return (x - mean) * jax.lax.rsqrt(var + BN_EPSILON) * scale + bias

    return interceptor


def calibrate_query_encoder(variables: dict, config: ModelConfig, images: np.ndarray) -> dict:
    """Returns Encoder_Q's batch_stats re-estimated on `images` (uint8 (N, H, W, 3))."""
    stats: dict = {}
    frames = jnp.asarray(images, jnp.float32) / 255.0
    with nn.intercept_methods(_train_mode_bn(stats)):
        STM(config).apply(variables, frames, method="encode_query")
    calibrated = jax.tree.map(np.array, variables["batch_stats"]["Encoder_Q"])
    for path, (mean, var) in stats.items():
        assert path[0] == "Encoder_Q", path
        tree = calibrated
        for part in path[1:]:
            tree = tree[part]
        tree["mean"], tree["var"] = mean, var
    return calibrated


def calibrated_resnet_state_dict(
    backbone: str = "resnet50", image_size: int = 224, count: int = 16, seed: int = 0
) -> dict[str, np.ndarray]:
    """torchvision names -> float32 arrays (OIHW convs) for conv1, bn1, layer1..layer3.

    Args:
      backbone: 'resnet50' or 'resnet18'.
      image_size: side of the calibration images.
      count: number of calibration images.
      seed: seeds the weights and the images.
    """
    config = ModelConfig(backbone=backbone)
    variables = init_variables(jax.random.key(seed), config)
    variables = {c: jax.tree.map(np.array, dict(t)) for c, t in variables.items()}
    images = natural_images(count, image_size, image_size, seed=seed + 1)
    variables["batch_stats"]["Encoder_Q"] = calibrate_query_encoder(variables, config, images)
    state = {}
    for collection, path, leaf in leaves(variables):
        name = BACKBONES.get(backbone).torchvision_name(collection, path[1:])
        if path[0] != "Encoder_Q" or name is None:
            continue
        value = np.asarray(leaf, np.float32)
        state[name] = np.transpose(value, (3, 2, 0, 1)) if value.ndim == 4 else value
        if name.endswith("running_var"):
            state[name.replace("running_var", "num_batches_tracked")] = np.array(1, np.int64)
    return state


def save_calibrated_resnet(path, backbone: str = "resnet50", **kwargs) -> dict:
    """Writes `calibrated_resnet_state_dict(...)` as a torch `.pth` (needs torch); returns it."""
    import torch

    state = calibrated_resnet_state_dict(backbone, **kwargs)
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, path)
    return state
