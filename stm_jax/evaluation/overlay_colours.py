"""Overlay colours that stand out from the scene they are drawn on.

The masks' own palette (DAVIS: dark red, green, olive, ...) is a poor overlay: a red object under a
red tint looks like the raw frame, and a blue one under olive turns grey. Overlays instead use vivid,
mutually distinct colours (`VIVID`, after Trubetskoy's list of 20 distinct colours), and
`choose_colours` gives each object of a sequence the one that differs most from that object's own
pixels and from the scene around it, so every object changes visibly where it is overlaid.
Distances are CIE L*a*b* (OpenCV's 8-bit encoding), where equal steps look about equally different.
"""

from __future__ import annotations

import cv2
import numpy as np

# Saturated colours first; each is far from the others in hue or lightness.
VIVID = np.array(
    [
        (255, 225, 25),  # yellow
        (0, 130, 200),  # blue
        (230, 25, 75),  # red
        (60, 180, 75),  # green
        (240, 50, 230),  # magenta
        (70, 240, 240),  # cyan
        (245, 130, 48),  # orange
        (145, 30, 180),  # purple
        (210, 245, 60),  # lime
        (250, 190, 212),  # pink
        (0, 128, 128),  # teal
        (170, 110, 40),  # brown
    ],
    dtype=np.uint8,
)
VOID = 255  # annotation id of "unknown" pixels: never coloured
# Beyond this L*a*b* distance (about twice a clearly visible difference) a colour counts as
# different enough, so a pixel far from every candidate does not dominate the choice.
_FAR = 60.0
_SAMPLES = 4096  # pixels per object (and of the scene) that decide, evenly strided


def default_colours() -> np.ndarray:
    """(256, 3) uint8: id k > 0 gets VIVID[(k - 1) % len(VIVID)]; 0 and VOID are black (unused)."""
    table = np.zeros((256, 3), np.uint8)
    ids = np.arange(1, VOID)
    table[ids] = VIVID[(ids - 1) % len(VIVID)]
    return table


def _lab(rgb: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(1, -1, 3)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[0].astype(np.float32)


def _strided(pixels: np.ndarray) -> np.ndarray:
    step = max(1, len(pixels) // _SAMPLES)
    return pixels[::step][:_SAMPLES]


def _closeness(candidates_lab: np.ndarray, pixels_lab: np.ndarray) -> np.ndarray:
    """[C]: how close each candidate is to the pixels: mean of (_FAR - distance) clipped at 0."""
    if len(pixels_lab) == 0:
        return np.zeros(len(candidates_lab), np.float32)
    distance = np.linalg.norm(candidates_lab[:, None] - pixels_lab[None], axis=-1)
    return np.maximum(_FAR - distance, 0.0).mean(axis=1)


def choose_colours(frames: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One vivid colour per object id, chosen against the object's pixels and the scene.

    Objects are served in order of id; each takes the unused `VIVID` colour least close to its own
    pixels (weight 2) and to the background pixels (weight 1). Deterministic.

    Args:
      frames: (T, H, W, 3) or (H, W, 3) uint8 RGB.
      labels: (T, H, W) or (H, W) ids of the same frames (0 = background).

    Returns:
      (256, 3) uint8 colour table indexed by id (`default_colours` for ids not present).
    """
    frames = np.asarray(frames, np.uint8).reshape(-1, 3)
    labels = np.asarray(labels).reshape(-1)
    if len(frames) != len(labels):
        raise ValueError(f"{len(frames)} frame pixels but {len(labels)} labels")
    table = default_colours()
    candidates = _lab(VIVID)
    scene = _closeness(candidates, _lab(_strided(frames[labels == 0])))
    free = np.ones(len(VIVID), bool)
    for object_id in (int(i) for i in np.unique(labels) if 0 < i < VOID):
        own = _closeness(candidates, _lab(_strided(frames[labels == object_id])))
        cost = np.where(free, 2.0 * own + scene, np.inf)
        best = int(np.argmin(cost))
        table[object_id] = VIVID[best]
        free[best] = False
        if not free.any():
            free[:] = True  # more objects than colours: reuse, still scene-aware
    return table
