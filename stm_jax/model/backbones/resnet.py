"""ResNet backbones cut after layer3 (res2 / res3 / res4), torchvision v1.5 layout, frozen BN.

Registered as 'resnet18', 'resnet34', 'resnet50', 'resnet101' and 'tiny' (tests and CPU training: the
ResNet topology at a fraction of the width). Submodule names follow torchvision / the official STM
checkpoint (`conv1`, `bn1`, `res2_0.conv1`, `res2_0.downsample_0`, ...) so converted weights map
one-to-one. Every layer starts as torchvision's `resnet*(weights=None)` does: convolutions He-normal
fan-out, BN scale 1 / bias 0, running mean 0 / var 1. `use_bias=True` gives every convolution a bias
(starting at 0), as in STCN's value encoder; torchvision's files hold no conv biases, so ImageNet
weights leave them at 0.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.backbone import BACKBONES
from stm_jax.model.layers import FrozenBatchNorm, conv2d, max_pool_3x3_s2
from stm_jax.model.torch_names import torch_name


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


class Bottleneck(nn.Module):
    """torchvision Bottleneck v1.5: the stride sits on the 3x3 conv."""

    width: int
    stride: int
    downsample: bool
    dtype: jnp.dtype = jnp.float32
    use_bias: bool = False

    @nn.compact
    def __call__(self, x):
        out = conv2d(
            self.width, 1, use_bias=self.use_bias, dtype=self.dtype, init="resnet", name="conv1"
        )(x)
        out = nn.relu(FrozenBatchNorm(self.dtype, name="bn1")(out))
        out = conv2d(
            self.width,
            3,
            self.stride,
            use_bias=self.use_bias,
            dtype=self.dtype,
            init="resnet",
            name="conv2",
        )(out)
        out = nn.relu(FrozenBatchNorm(self.dtype, name="bn2")(out))
        out = conv2d(
            self.width * 4, 1, use_bias=self.use_bias, dtype=self.dtype, init="resnet", name="conv3"
        )(out)
        out = FrozenBatchNorm(self.dtype, name="bn3")(out)
        if self.downsample:
            x = conv2d(
                self.width * 4,
                1,
                self.stride,
                use_bias=self.use_bias,
                dtype=self.dtype,
                init="resnet",
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
    use_bias: bool = False

    @nn.compact
    def __call__(self, x):
        out = conv2d(
            self.width,
            3,
            self.stride,
            use_bias=self.use_bias,
            dtype=self.dtype,
            init="resnet",
            name="conv1",
        )(x)
        out = nn.relu(FrozenBatchNorm(self.dtype, name="bn1")(out))
        out = conv2d(
            self.width, 3, use_bias=self.use_bias, dtype=self.dtype, init="resnet", name="conv2"
        )(out)
        out = FrozenBatchNorm(self.dtype, name="bn2")(out)
        if self.downsample:
            x = conv2d(
                self.width,
                1,
                self.stride,
                use_bias=self.use_bias,
                dtype=self.dtype,
                init="resnet",
                name="downsample_0",
            )(x)
            x = FrozenBatchNorm(self.dtype, name="downsample_1")(x)
        return nn.relu(out + x)


class ResidualStages(nn.Module):
    """res2, res3, res4 (torchvision layer1..layer3) applied after the stem and max-pool.

    Returns (r4, r3, r2) at strides 16, 8, 4.
    """

    spec: BackboneSpec
    dtype: jnp.dtype = jnp.float32
    use_bias: bool = False

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
                    width,
                    stride,
                    downsample,
                    self.dtype,
                    self.use_bias,
                    name=f"res{stage + 2}_{index}",
                )(x)
                in_channels = out_channels
            outputs.append(x)
        r2, r3, r4 = outputs
        return r4, r3, r2


class ResNet:
    """A ResNet cut after layer3 as a backbone entry (see `stm_jax.model.backbone`)."""

    def __init__(self, spec: BackboneSpec):
        self.spec = spec

    @property
    def channels(self) -> tuple[int, int, int]:
        return self.spec.channels

    def stem(
        self,
        x,
        side_inputs=None,
        dtype=jnp.float32,
        side_init: str = "pytorch",
        use_bias: bool = False,
        conv1_init="resnet",
    ):
        """7x7/2 conv `conv1` (+ one 7x7/2 conv per side input, summed before `bn1`), BN, ReLU,
        3x3/2 max-pool: stride-4 features. The image's conv is computed once and broadcast over the
        object axis of the side inputs. `use_bias`: `conv1` has a bias; `conv1_init`: how its kernel
        starts (`stm_jax.model.layers.CONV_INITS`; a `ChannelSplitInit` for an input wider than
        RGB)."""
        width = self.spec.stem_width
        x = conv2d(width, 7, 2, 3, use_bias=use_bias, dtype=dtype, init=conv1_init, name="conv1")(x)
        if side_inputs:
            x = x[:, None]
            for name, side in side_inputs.items():
                x = x + conv2d(
                    width, 7, 2, 3, use_bias=False, dtype=dtype, init=side_init, name=name
                )(side.astype(dtype))
        x = nn.relu(FrozenBatchNorm(dtype, name="bn1")(x))
        return max_pool_3x3_s2(x)

    def stages(self, x, dtype=jnp.float32, use_bias: bool = False):
        """(r4, r3, r2) at strides 16, 8, 4 from the stem's output (`use_bias`: every conv has a
        bias)."""
        return ResidualStages(self.spec, dtype, use_bias, name="backbone")(x)

    def torchvision_name(self, collection: str, path: tuple[str, ...]) -> str | None:
        """'conv1'/'bn1'/'backbone/resK_i/...' -> torchvision 'conv1'/'bn1'/'layer{K-1}.i...';
        None for anything else (side-input stems are new layers; torchvision's convs have no bias)."""
        if path[0] not in ("conv1", "bn1", "backbone"):
            return None
        if path[-1] == "bias" and path[-2].startswith(("conv", "downsample_0")):
            return None
        name = torch_name(collection, path)
        for stage in (2, 3, 4):
            name = name.replace(f"res{stage}.", f"layer{stage - 1}.")
        return name


for _name, _spec in {
    "resnet18": BackboneSpec("basic", (2, 2, 2), (64, 128, 256)),
    "resnet34": BackboneSpec("basic", (3, 4, 6), (64, 128, 256)),
    "resnet50": BackboneSpec("bottleneck", (3, 4, 6), (64, 128, 256)),
    "resnet101": BackboneSpec("bottleneck", (3, 4, 23), (64, 128, 256)),
    # For tests and CPU training only: same topology (strides, stems, skips), a fraction of the width.
    "tiny": BackboneSpec("basic", (1, 1, 1), (8, 16, 32), stem_width=8),
}.items():
    BACKBONES.register(_name)(ResNet(_spec))
