"""Seeded synthetic videos of textured moving shapes, in memory or written in the DAVIS layout.

Each object has its own colour (evenly spaced hues) and texture (stripes, checks or dots) over a
muted background, so objects are learnable from appearance. Objects translate, scale and rotate,
pass in front of each other (fixed depth order), one may leave the frame and come back, and the
camera pans over a larger background. Frame 0 always shows every object. Identical arguments give
identical videos.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from stm_jax.data.registry import DATASETS
from stm_jax.data.video import ArrayVideo
from stm_jax.io.images import write_palette_png, write_rgb

_MIN_FIRST_FRAME_PIXELS = 12


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    hsv = np.array([[[h * 179.0, s * 255.0, v * 255.0]]], dtype=np.float32).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    coarse = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = _hsv_to_rgb(rng.random(), 0.15, 0.45)
    noise = _smooth_noise(rng, h, w, 6)[..., None] - 0.5
    fine = _smooth_noise(rng, h, w, 40)[..., None] - 0.5
    return np.clip(base + 90.0 * noise + 40.0 * fine, 0, 255).astype(np.float32)


def _texture(rng: np.random.Generator, size: int, hue: float) -> np.ndarray:
    """A size x size RGB texture in the object's own coordinates (it moves with the object)."""
    a = _hsv_to_rgb(hue, 0.9, 0.95)
    b = _hsv_to_rgb(hue, 0.9, 0.45)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = max(3.0, size / rng.uniform(3, 6))
    kind = rng.integers(3)
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        pattern = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0
    elif kind == 1:
        pattern = ((xx // (period / 2)) + (yy // (period / 2))) % 2 == 0
    else:
        pattern = (np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period)) > 0.3
    return np.where(pattern[..., None], a, b).astype(np.float32)


def _shape(rng: np.random.Generator) -> np.ndarray:
    """Polygon vertices (N, 2) in unit-radius object coordinates."""
    kind = rng.integers(4)
    if kind == 0:  # ellipse
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        return np.stack([np.cos(t), rng.uniform(0.5, 1.0) * np.sin(t)], -1)
    if kind == 1:  # rectangle
        a = rng.uniform(0.5, 1.0)
        return np.array([[-1, -a], [1, -a], [1, a], [-1, a]], dtype=np.float64)
    if kind == 2:  # star
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False)
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(t), r * np.sin(t)], -1)
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)  # blob
    r = 1.0 + 0.25 * np.sin(3 * t + rng.uniform(0, 6)) + 0.1 * rng.standard_normal(16)
    return np.stack([r * np.cos(t), r * np.sin(t)], -1)


def _object_plan(
    rng: np.random.Generator, k: int, n: int, h: int, w: int, t_max: int, leaves: bool
):
    radius = rng.uniform(0.13, 0.22) * min(h, w)
    start = np.array([rng.uniform(radius, w - radius), rng.uniform(radius, h - radius)])
    # Aim at another point of the frame so that paths cross and objects occlude each other.
    end = np.array([rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)])
    exit_dir = np.sign(rng.standard_normal()) or 1.0
    return {
        "polygon": _shape(rng),
        "texture": _texture(rng, int(2 * radius * 1.6) + 4, (k / n + rng.uniform(0, 0.05)) % 1.0),
        "radius": radius,
        "start": start,
        "end": end,
        # Leaving object: an excursion of about a frame width out and back within the video.
        "excursion": exit_dir * 1.1 * w if leaves else 0.0,
        "scale_amp": rng.uniform(0.1, 0.3),
        "angle0": rng.uniform(0, 360),
        "spin": rng.uniform(-15, 15),
        "t_max": t_max,
    }


def _pose(plan: dict, t: int) -> tuple[np.ndarray, float, float]:
    u = t / max(plan["t_max"] - 1, 1)
    centre = plan["start"] + (plan["end"] - plan["start"]) * u
    centre = centre + np.array([plan["excursion"] * np.sin(np.pi * u) ** 2, 0.0])
    scale = plan["radius"] * (1.0 + plan["scale_amp"] * np.sin(2 * np.pi * u))
    return centre, scale, plan["angle0"] + plan["spin"] * t


def _render_object(plan: dict, t: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return draw_object(plan, *_pose(plan, t), h, w)


def draw_object(
    plan: dict, centre, scale: float, angle: float, h: int, w: int, texture=None
) -> tuple[np.ndarray, np.ndarray]:
    """(mask [h, w] bool, colour [h, w, 3] float32) of an object plan at a pose; `texture`
    replaces the plan's own (same size)."""
    theta = np.deg2rad(angle)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) * scale
    points = plan["polygon"] @ rot.T + centre
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    tex = plan["texture"] if texture is None else texture
    half = tex.shape[0] / 2.0
    # Texture pixel (x, y) sits at rot/radius-normalised offset from the centre (moves with the
    # object).
    m = (rot / plan["radius"] * 0.8) @ np.eye(2)
    affine = np.concatenate([m, (centre - m @ np.array([half, half]))[:, None]], axis=1)
    colour = cv2.warpAffine(
        tex, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return mask.astype(bool), colour


def make_synthetic_video(
    seed: int,
    num_frames: int = 12,
    height: int = 64,
    width: int = 96,
    num_objects: int | tuple[int, int] = 3,
    name: str | None = None,
) -> ArrayVideo:
    """Generates one video deterministically.

    Args:
      seed: the video's seed.
      num_frames: T.
      height, width: frame size.
      num_objects: a count, or an inclusive (min, max) range drawn per video.
      name: sequence name (default 'synth<seed>').

    Returns:
      An `ArrayVideo` with frames uint8 (T, H, W, 3) and labels uint8 (T, H, W), ids 1..n, all
      present in frame 0.
    """
    rng = np.random.default_rng(seed)
    if isinstance(num_objects, tuple | list):
        num_objects = int(rng.integers(num_objects[0], num_objects[1] + 1))
    margin_y, margin_x = height // 4, width // 4
    world = _background(rng, height + 2 * margin_y, width + 2 * margin_x)
    cam_start = rng.uniform([0, 0], [2 * margin_x, 2 * margin_y])
    cam_end = rng.uniform([0, 0], [2 * margin_x, 2 * margin_y])
    leaver = int(rng.integers(num_objects)) if num_objects > 1 else -1
    for _ in range(50):  # redraw until every object is visible in frame 0
        plans = [
            _object_plan(rng, k, num_objects, height, width, num_frames, k == leaver)
            for k in range(num_objects)
        ]
        order = rng.permutation(num_objects)
        first = np.zeros((height, width), np.uint8)
        for k in order:
            first[_render_object(plans[k], 0, height, width)[0]] = k + 1
        counts = np.bincount(first.ravel(), minlength=num_objects + 1)[1:]
        if counts.min() >= _MIN_FIRST_FRAME_PIXELS:
            break
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        u = t / max(num_frames - 1, 1)
        cx, cy = np.round(cam_start + (cam_end - cam_start) * u).astype(int)
        frame = world[cy : cy + height, cx : cx + width].copy()
        for k in order:
            mask, colour = _render_object(plans[k], t, height, width)
            frame[mask] = colour[mask]
            labels[t][mask] = k + 1
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return ArrayVideo(name or f"synth{seed}", frames, labels)


@DATASETS.register("synthetic")
class SyntheticVideoSource:
    """In-memory source of synthetic videos (grain-compatible, picklable, generated on access).

    Args:
      num_videos: length of the source.
      seed: base seed; video i uses seed * 100_003 + i.
      **video_kwargs: forwarded to `make_synthetic_video` (num_frames, height, width, num_objects).
    """

    def __init__(self, num_videos: int = 8, seed: int = 0, **video_kwargs) -> None:
        self.num_videos = num_videos
        self.seed = seed
        self.video_kwargs = video_kwargs

    def __len__(self) -> int:
        return self.num_videos

    def __getitem__(self, index: int) -> ArrayVideo:
        if not 0 <= index < self.num_videos:
            raise IndexError(index)
        return make_synthetic_video(
            self.seed * 100_003 + index, name=f"synth{index:03d}", **self.video_kwargs
        )


def write_synthetic_davis(
    root: str | os.PathLike,
    num_train: int = 3,
    num_val: int = 2,
    seed: int = 0,
    resolution: str = "480p",
    **video_kwargs,
) -> Path:
    """Writes synthetic videos in the DAVIS 2017 layout.

    Writes JPEGImages/<resolution>/<seq>/00000.jpg..., Annotations/<resolution>/<seq>/00000.png...
    (palette PNGs for every frame) and ImageSets/2017/{train,val}.txt.

    Args:
      root: output folder.
      num_train, num_val: number of sequences per split.
      seed: base seed.
      resolution: the resolution folder name.
      **video_kwargs: forwarded to `make_synthetic_video`.

    Returns:
      The root path.
    """
    root = Path(root)
    source = SyntheticVideoSource(num_train + num_val, seed, **video_kwargs)
    names = []
    for i in range(len(source)):
        video = source[i]
        names.append(video.name)
        for t in range(len(video)):
            write_rgb(
                root / "JPEGImages" / resolution / video.name / f"{t:05d}.jpg", video.frames[t]
            )
            write_palette_png(
                root / "Annotations" / resolution / video.name / f"{t:05d}.png", video.labels[t]
            )
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "train.txt").write_text("".join(f"{n}\n" for n in names[:num_train]))
    (sets / "val.txt").write_text("".join(f"{n}\n" for n in names[num_train:]))
    return root
