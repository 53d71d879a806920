"""Seeded long synthetic videos (1,000+ frames) for long-term memory: objects leave the frame and
come back many times and slowly change appearance (their texture blends into another pattern and
back), over the same kind of background as `stm_jax.data.synthetic`.

Each object follows a Lissajous path around the frame centre whose horizontal amplitude exceeds the
half width, so it exits on one side and re-enters every period; its texture blends between two
patterns of its hue with a period of its own. Frame 0 shows every object.
"""

from __future__ import annotations

import numpy as np

from stm_jax.data.synthetic import _background, _object_plan, _texture, draw_object
from stm_jax.data.video import ArrayVideo


def make_long_video(
    seed: int,
    num_frames: int = 1200,
    height: int = 64,
    width: int = 96,
    num_objects: int = 2,
    period: int = 240,
    name: str | None = None,
) -> ArrayVideo:
    """Generates one long video deterministically.

    Args:
      seed: the video's seed. num_frames: T. height, width: frame size.
      num_objects: objects (ids 1..n). period: mean frames between two exits of an object.
    Returns:
      An `ArrayVideo`: frames uint8 (T, H, W, 3), labels uint8 (T, H, W).
    """
    rng = np.random.default_rng(seed)
    world = _background(rng, height, width)
    objects = []
    for k in range(num_objects):
        plan = _object_plan(rng, k, num_objects, height, width, num_frames, False)
        plan["radius"] = rng.uniform(0.16, 0.22) * min(height, width)
        hue = (k / num_objects + rng.uniform(0, 0.05)) % 1.0
        size = plan["texture"].shape[0]
        other = _texture(rng, size, (hue + 0.06) % 1.0)
        other = other[:size, :size] * rng.uniform(0.6, 0.8)  # another pattern, darker
        objects.append(
            {
                "plan": plan,
                "other": other.astype(np.float32),
                "period_x": period * rng.uniform(0.8, 1.25),
                "period_y": period * rng.uniform(0.35, 0.6),
                "phase_x": rng.uniform(-0.25, 0.25) + np.pi * (k % 2),
                "phase_y": rng.uniform(0, 2 * np.pi),
                "home": np.array([width * (k + 1) / (num_objects + 1), height / 2]),
                "change": period * rng.uniform(1.5, 2.5),
            }
        )
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        frame = world.copy()
        for k, obj in enumerate(objects):
            plan = obj["plan"]
            sx = np.sin(2 * np.pi * t / obj["period_x"] + obj["phase_x"])
            centre = obj["home"] + np.array(
                [
                    0.7 * width * sx,
                    0.25 * height * np.sin(2 * np.pi * t / obj["period_y"] + obj["phase_y"]),
                ]
            )
            scale = plan["radius"] * (1.0 + plan["scale_amp"] * np.sin(2 * np.pi * t / 97.0))
            blend = 0.5 - 0.5 * np.cos(2 * np.pi * t / obj["change"])
            texture = (1 - blend) * plan["texture"] + blend * obj["other"]
            mask, colour = draw_object(
                plan, centre, scale, plan["angle0"] + 0.5 * plan["spin"] * t, height, width, texture
            )
            frame[mask] = colour[mask]
            labels[t][mask] = k + 1
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return ArrayVideo(name or f"long{seed}", frames, labels)
