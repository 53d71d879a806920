"""Helpers for parity tests: a seeded PyTorch reference STM and its converted stm_jax variables."""

from __future__ import annotations

import numpy as np
import torch

from stm_jax.convert.official import convert_state_dict
from stm_jax.model.config import ModelConfig
from tests.torch_stm_reference import STM as TorchSTM
from tests.torch_stm_reference import randomize_batchnorm


def make_reference(config: ModelConfig, seed: int = 0, bias_scale: float = 0.05):
    """Returns (torch model in eval mode, our variables converted through the real converter)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TorchSTM(
        config.backbone, config.key_dim, config.value_dim, config.decoder_dim, config.num_slots
    )
    randomize_batchnorm(model, generator)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * bias_scale)
    model.eval()
    _calibrate_prediction_head(model, config)
    state = {"module." + k: v.numpy() for k, v in model.state_dict().items()}
    return model, convert_state_dict(state, config, source="reference state dict")


def _calibrate_prediction_head(model, config: ModelConfig, target_std: float = 2.0) -> None:
    """Rescales `pred2` so decoder logits are O(1) on a probe video.

    With random weights and no normalisation in the decoder the logits are huge, every foreground
    probability saturates and parity would only be checked on near-constant outputs; this keeps the
    probabilities spread over (0, 1).
    """
    frames, labels = random_video(2, 48, 64, 2, seed=123)
    probs = torch.eye(config.num_slots)[torch.from_numpy(labels).long()].permute(2, 0, 1)[None]
    with torch.no_grad():
        keys, values = model.memorize(to_torch_frame(frames[0]), probs, 2)
        _, parts = model.segment(to_torch_frame(frames[1]), keys, values, 2, return_parts=True)
        logits = parts["logits"]
        difference = logits[:, 1] - logits[:, 0]
        scale = target_std / difference.std().item()
        model.Decoder.pred2.weight.mul_(scale)
        model.Decoder.pred2.bias.mul_(scale)
        model.Decoder.pred2.bias[1] -= scale * difference.mean().item()  # centre fg-vs-bg at 0


def random_video(num_frames, height, width, num_objects, seed=0):
    """uint8 frames [T, H, W, 3] with smooth structure and a first-frame label map of blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for t in range(num_frames):
        base = np.stack(
            [np.sin((xx + 3 * t) / (5 + c) + c) * np.cos((yy - 2 * t) / (7 + c)) for c in range(3)],
            -1,
        )
        noise = rng.normal(0, 0.1, (height, width, 3))
        frames.append(np.clip((base * 0.4 + 0.5 + noise) * 255, 0, 255).astype(np.uint8))
    labels = np.zeros((height, width), np.uint8)
    for obj in range(1, num_objects + 1):
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        radius = rng.integers(min(height, width) // 6, min(height, width) // 3)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = obj
    return np.stack(frames), labels


def to_torch_frame(frame: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [1, 3, H, W] in [0, 1], as the official dataset does."""
    return torch.from_numpy(frame.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
