"""Zero padding to a multiple of 16 (spec A.1): low = floor(d / 2), high = d - low, on H and W."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Padding:
    """Pads of an (H, W) image to the next multiple of `multiple`."""

    height: int
    width: int
    top: int
    bottom: int
    left: int
    right: int

    @classmethod
    def for_size(cls, height: int, width: int, multiple: int = 16) -> Padding:
        dh = -height % multiple
        dw = -width % multiple
        return cls(height, width, dh // 2, dh - dh // 2, dw // 2, dw - dw // 2)

    @property
    def padded_shape(self) -> tuple[int, int]:
        return self.height + self.top + self.bottom, self.width + self.left + self.right

    def pad(self, x):
        """Zero-pads the H, W axes (-3, -2) of [..., H, W, C]."""
        widths = [(0, 0)] * (x.ndim - 3) + [
            (self.top, self.bottom),
            (self.left, self.right),
            (0, 0),
        ]
        return jnp.pad(x, widths)

    def crop(self, x):
        """Inverse of `pad` on [..., Hp, Wp, C]."""
        return x[..., self.top : self.top + self.height, self.left : self.left + self.width, :]

    def inside(self):
        """[Hp, Wp] float mask: 1 on the image, 0 on the padding."""
        return self.pad(jnp.ones((self.height, self.width, 1), jnp.float32))[..., 0]
