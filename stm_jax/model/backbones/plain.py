"""'plain': a VGG-style backbone (stacks of 3x3 conv + frozen BN + ReLU), registered as a worked
example of a backbone entry (docs/extending.md): one class, one registration, no other file.

A 7x7/2 stem and a 3x3/2 max-pool reach stride 4; three stages of two 3x3 convolutions (the first of
stages 2 and 3 with stride 2) give the stride-4, 8 and 16 features. There are no released weights
for it, so `torchvision_name` holds nothing and training starts from the modules' init.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from stm_jax.model.backbone import BACKBONES
from stm_jax.model.layers import FrozenBatchNorm, conv2d, max_pool_3x3_s2


class Plain:
    """VGG-style stages of `widths` channels after a `stem_width` stem."""

    def __init__(self, widths=(32, 64, 128), stem_width=16):
        self.widths, self.stem_width = tuple(widths), stem_width

    @property
    def channels(self) -> tuple[int, int, int]:
        return self.widths

    def stem(self, x, side_inputs=None, dtype=jnp.float32, side_init: str = "pytorch"):
        x = conv2d(
            self.stem_width, 7, 2, 3, use_bias=False, dtype=dtype, init="resnet", name="conv1"
        )(x)
        for name, side in (side_inputs or {}).items():  # [B, O, ...]: the object axis appears
            stem = conv2d(self.stem_width, 7, 2, 3, use_bias=False, dtype=dtype, init=side_init)
            x = (x if x.ndim == side.ndim else x[:, None]) + stem.copy(name=name)(
                side.astype(dtype)
            )
        return max_pool_3x3_s2(nn.relu(FrozenBatchNorm(dtype, name="bn1")(x)))

    def stages(self, x, dtype=jnp.float32):
        outputs = []
        for stage, width in enumerate(self.widths):
            for index in range(2):
                stride = 2 if stage > 0 and index == 0 else 1
                name = f"plain{stage + 2}_{index}"
                x = conv2d(width, 3, stride, use_bias=False, dtype=dtype, init="resnet", name=name)(
                    x
                )
                x = nn.relu(FrozenBatchNorm(dtype, name=f"{name}_bn")(x))
            outputs.append(x)
        r2, r3, r4 = outputs
        return r4, r3, r2

    def torchvision_name(self, collection: str, path: tuple[str, ...]) -> None:
        return None


BACKBONES.register("plain")(Plain())
