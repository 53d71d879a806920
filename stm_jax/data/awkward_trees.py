"""DAVIS / YouTube-VOS / saliency-folder train trees in the real layouts, with real-data awkwardness.

For the training rehearsal (`benchmarks/rehearse_training.py`) and the data-policy tests. Frames are
natural-statistics images (`natural_images`) with flat-coloured textured ellipses moving over them.
Per video, a `kind` from `VIDEO_KINDS`:

* 'normal'   -- two objects, visible in every frame;
* 'tiny'     -- one object of a few pixels in every frame (never usable: under min_object_pixels);
* 'late'     -- a normal object, plus one that appears halfway through (listed in meta.json);
* 'unlisted' -- a normal object, plus an id painted in the PNGs that meta.json does not list
                (YouTube-VOS); for DAVIS an id absent from frame 0;
* 'holes'    -- a normal video whose annotation PNG is missing for some frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stm_jax.data.natural_images import natural_image
from stm_jax.io.images import write_palette_png, write_rgb

VIDEO_KINDS = ("normal", "tiny", "late", "unlisted", "holes")
UNLISTED_ID = 9


def _objects(kind: str, rng: np.random.Generator, height: int, width: int, num_frames: int):
    """[(id, first frame, (cy, cx), (vy, vx) per frame, (ry, rx), colour)] for one video."""

    def obj(object_id, first=0, scale=(0.12, 0.25)):
        ry, rx = rng.uniform(*scale) * height, rng.uniform(*scale) * width
        centre = rng.uniform(0.3, 0.7, 2) * (height, width)
        velocity = rng.uniform(-0.02, 0.02, 2) * (height, width)
        return object_id, first, centre, velocity, (ry, rx), rng.uniform(0, 255, 3)

    if kind == "tiny":
        ry = rx = max(2.5 * height / 480, 1.2)  # ~20 px at 480p: under 100 px after any crop
        return [
            (1, 0, rng.uniform(0.3, 0.7, 2) * (height, width), np.zeros(2), (ry, rx), (250, 30, 30))
        ]
    out = [obj(1)]
    if kind == "normal" or kind == "holes":
        out.append(obj(2))
    elif kind == "late":
        out.append(obj(2, first=num_frames // 2))
    elif kind == "unlisted":
        out.append(obj(UNLISTED_ID, scale=(0.05, 0.1)))
    return out


def render_video(kind: str, seed: int, num_frames: int, height: int, width: int):
    """frames uint8 (T, H, W, 3), labels uint8 (T, H, W)."""
    rng = np.random.default_rng(seed)
    background = natural_image(rng, height, width)
    objects = _objects(kind, rng, height, width, num_frames)
    yy, xx = np.mgrid[:height, :width]
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    labels = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        frame = np.roll(background, (3 * t, 5 * t), axis=(0, 1)).astype(np.float32)
        for object_id, first, centre, velocity, (ry, rx), colour in objects:
            if t < first:
                continue
            cy, cx = centre + velocity * t
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            frame[inside] = 0.7 * np.asarray(colour) + 0.3 * frame[inside]
            labels[t][inside] = object_id
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames, labels


def _kinds(num_videos: int, kinds) -> list[str]:
    return [kinds[i % len(kinds)] for i in range(num_videos)]


def write_youtube_vos_train(
    root, num_videos=8, num_frames=10, height=720, width=1280, kinds=VIDEO_KINDS, seed=0
) -> dict:
    """<root>/train/{JPEGImages,Annotations}/<vid>/00000.jpg|png, 00005, ... + meta.json.

    Returns:
      {video name: kind}.
    """
    split = Path(root) / "train"
    meta, plan = {"videos": {}}, {}
    for v, kind in enumerate(_kinds(num_videos, kinds)):
        name = f"{kind}{v:03d}"
        plan[name] = kind
        frames, labels = render_video(kind, seed * 1000 + v, num_frames, height, width)
        objects: dict = {}
        for t in range(num_frames):
            stem = f"{5 * t:05d}"
            write_rgb(split / "JPEGImages" / name / f"{stem}.jpg", frames[t])
            if kind == "holes" and t in (2, num_frames - 3):
                continue  # no PNG for these frames
            write_palette_png(split / "Annotations" / name / f"{stem}.png", labels[t])
            for object_id in np.unique(labels[t]).tolist():
                if object_id in (0, UNLISTED_ID):
                    continue  # the unlisted id is never in meta.json
                entry = objects.setdefault(str(object_id), {"category": "thing", "frames": []})
                entry["frames"].append(stem)
        meta["videos"][name] = {"objects": objects}
    (split / "meta.json").write_text(json.dumps(meta))
    return plan


def write_davis_train(
    root, num_videos=5, num_frames=10, height=480, width=854, kinds=VIDEO_KINDS, seed=1
) -> dict:
    """<root>/{JPEGImages,Annotations}/480p/<seq>/00000.jpg|png + ImageSets/2017/train.txt."""
    root = Path(root)
    plan = {}
    for v, kind in enumerate(_kinds(num_videos, kinds)):
        name = f"{kind}-{v:02d}"
        plan[name] = kind
        frames, labels = render_video(kind, seed * 1000 + v, num_frames, height, width)
        for t in range(num_frames):
            write_rgb(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", frames[t])
            if kind == "holes" and t in (2, num_frames - 3):
                continue
            write_palette_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", labels[t])
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("\n".join(plan) + "\n")
    return plan


def write_saliency_folder(root, count=8, height=480, width=640, seed=2) -> Path:
    """MSRA10K-style images/*.jpg + masks/*.png (0/255); every 4th image holds only a tiny object."""
    root = Path(root)
    for i in range(count):
        kind = "tiny" if i % 4 == 3 else "normal"
        frames, labels = render_video(kind, seed * 1000 + i, 1, height, width)
        write_rgb(root / "images" / f"{i:04d}.jpg", frames[0])
        write_palette_png(root / "masks" / f"{i:04d}.png", np.where(labels[0] > 0, 255, 0))
    return root
