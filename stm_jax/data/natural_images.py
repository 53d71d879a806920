"""Images with natural-image statistics, for checks that need "real-scale" features without photos.

Natural photographs have a power spectrum close to 1/f^2 (amplitude 1/f), strongly correlated colour
channels and ImageNet-like per-channel mean/std. `natural_images` draws such images from random
phases: smooth fields with edges at every scale, plus a few flat-coloured occluding shapes (object
boundaries). They calibrate BN statistics (`stm_jax.convert.calibrated_resnet`) and feed the health
tests and the training rehearsal.
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406])
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225])


def pink_field(rng: np.random.Generator, height: int, width: int, exponent: float = 1.0):
    """A zero-mean, unit-std random field with amplitude spectrum 1/f**exponent."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    amplitude = 1.0 / f**exponent
    amplitude[0, 0] = 0.0
    phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
    field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width))
    return (field - field.mean()) / max(field.std(), 1e-12)


def natural_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """One uint8 (H, W, 3) image: correlated-colour 1/f texture + a few flat occluders."""
    luminance = pink_field(rng, height, width)
    chroma = [pink_field(rng, height, width, 1.3) for _ in range(2)]
    mix = np.stack(
        [luminance + 0.3 * chroma[0], luminance - 0.2 * chroma[1], luminance - 0.3 * chroma[0]],
        -1,
    )
    image = IMAGENET_MEAN_RGB + IMAGENET_STD_RGB * mix / mix.std(axis=(0, 1))
    yy, xx = np.mgrid[:height, :width]
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.3) * height, rng.uniform(0.05, 0.3) * width
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        colour = IMAGENET_MEAN_RGB + IMAGENET_STD_RGB * rng.normal(size=3)
        image[inside] = colour + 0.05 * mix[inside]
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def natural_images(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """`count` images, uint8 (count, H, W, 3), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    return np.stack([natural_image(rng, height, width) for _ in range(count)])
