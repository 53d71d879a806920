"""ResNet backbones cut after layer3 (res2 / res3 / res4), torchvision v1.5 layout, frozen BN.

Submodule names follow torchvision / the official STM checkpoint (`conv1`, `bn1`, `res2_0.conv1`,
`res2_0.downsample_0`, ...) so converted weights map one-to-one.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.layers import FrozenBatchNorm, conv2d


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """Block type, blocks per stage (res2, res3, res4) and stage widths of a backbone preset."""

    block: str  # 'bottleneck' or 'basic'
    stage_blocks: tuple[int, int, int]
    widths: tuple[int, int, int]
    stem_width: int = 64

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def channels(self) -> tuple[int, int, int]:
        """Output channels of res2, res3, res4."""
        return tuple(w * self.expansion for w in self.widths)


BACKBONES = {
    "resnet50": BackboneSpec("bottleneck", (3, 4, 6), (64, 128, 256)),
    "resnet18": BackboneSpec("basic", (2, 2, 2), (64, 128, 256)),
    # For tests and CPU training only: same topology (strides, stems, skips), a fraction of the width.
    "tiny": BackboneSpec("basic", (1, 1, 1), (8, 16, 32), stem_width=8),
}


def get_backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"Unknown backbone {name!r}; choose one of {sorted(BACKBONES)}.")
    return BACKBONES[name]


class Bottleneck(nn.Module):
    """torchvision Bottleneck v1.5: the stride sits on the 3x3 conv."""

    width: int
    stride: int
    downsample: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        out = conv2d(self.width, 1, use_bias=False, dtype=self.dtype, name="conv1")(x)
        out = nn.relu(FrozenBatchNorm(self.dtype, name="bn1")(out))
        out = conv2d(self.width, 3, self.stride, use_bias=False, dtype=self.dtype, name="conv2")(
            out
        )
        out = nn.relu(FrozenBatchNorm(self.dtype, name="bn2")(out))
        out = conv2d(self.width * 4, 1, use_bias=False, dtype=self.dtype, name="conv3")(out)
        out = FrozenBatchNorm(self.dtype, name="bn3")(out)
        if self.downsample:
            x = conv2d(
                self.width * 4,
                1,
                self.stride,
                use_bias=False,
                dtype=self.dtype,
                name="downsample_0",
            )(x)
            x = FrozenBatchNorm(self.dtype, name="downsample_1")(x)
        return nn.relu(out + x)


class BasicBlock(nn.Module):
    """torchvision BasicBlock (ResNet-18/34)."""

    width: int
    stride: int
    downsample: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        out = conv2d(self.width, 3, self.stride, use_bias=False, dtype=self.dtype, name="conv1")(x)
        out = nn.relu(FrozenBatchNorm(self.dtype, name="bn1")(out))
        out = conv2d(self.width, 3, use_bias=False, dtype=self.dtype, name="conv2")(out)
        out = FrozenBatchNorm(self.dtype, name="bn2")(out)
        if self.downsample:
            x = conv2d(
                self.width, 1, self.stride, use_bias=False, dtype=self.dtype, name="downsample_0"
            )(x)
            x = FrozenBatchNorm(self.dtype, name="downsample_1")(x)
        return nn.relu(out + x)


class ResidualStages(nn.Module):
    """res2, res3, res4 (torchvision layer1..layer3) applied after the stem and max-pool.

    Returns (r4, r3, r2) at strides 16, 8, 4.
    """

    spec: BackboneSpec
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        block_cls = Bottleneck if self.spec.block == "bottleneck" else BasicBlock
        outputs = []
        in_channels = x.shape[-1]
        for stage, (blocks, width) in enumerate(zip(self.spec.stage_blocks, self.spec.widths)):
            stage_stride = 1 if stage == 0 else 2
            for index in range(blocks):
                stride = stage_stride if index == 0 else 1
                out_channels = width * self.spec.expansion
                downsample = index == 0 and (stride != 1 or in_channels != out_channels)
                x = block_cls(
                    width, stride, downsample, self.dtype, name=f"res{stage + 2}_{index}"
                )(x)
                in_channels = out_channels
            outputs.append(x)
        r2, r3, r4 = outputs
        return r4, r3, r2
