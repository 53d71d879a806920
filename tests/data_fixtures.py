"""Tiny dataset trees in their real on-disk layouts, built from synthetic videos, for data tests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from stm_jax.data.coco import counts_to_rle_string, mask_to_rle_counts
from stm_jax.data.synthetic import make_synthetic_video, write_synthetic_davis
from stm_jax.io.images import read_label_mask, read_rgb, write_palette_png, write_rgb

H, W = 48, 64


def davis_tree(root: Path, num_train: int = 3, num_val: int = 1, num_frames: int = 6) -> Path:
    """DAVIS 2017 tree (+ ImageSets/2016 listing the train sequences)."""
    write_synthetic_davis(
        root, num_train, num_val, seed=1, num_frames=num_frames, height=H, width=W, num_objects=3
    )
    (root / "ImageSets" / "2016").mkdir(parents=True)
    (root / "ImageSets" / "2016" / "train.txt").write_text(
        (root / "ImageSets" / "2017" / "train.txt").read_text()
    )
    return root


LATE_START = 3  # object 2 of every YouTube-VOS fixture video appears at stored frame 3


def one_video_davis(root: Path, num_frames: int, height: int, width: int, seed: int = 5):
    """A DAVIS 2017 'val' tree holding one generated video with 2 objects; returns (root, name,
    the frames as decoded from its JPEGs, its first mask)."""
    root = write_synthetic_davis(
        root,
        num_train=0,
        num_val=1,
        seed=seed,
        num_frames=num_frames,
        height=height,
        width=width,
        num_objects=2,
    )
    (name,) = (root / "ImageSets/2017/val.txt").read_text().split()
    paths = sorted((root / "JPEGImages/480p" / name).glob("*.jpg"))
    frames = np.stack([read_rgb(p) for p in paths])
    first = read_label_mask(root / "Annotations/480p" / name / "00000.png")
    return root, name, frames, first


def youtube_tree(root: Path, num_videos: int = 2, num_frames: int = 6) -> Path:
    """YouTube-VOS train tree: every 5th frame stored, object 2 appearing late, meta.json."""
    split = root / "train"
    meta = {"videos": {}}
    for v in range(num_videos):
        video = make_synthetic_video(
            50 + v, num_frames=num_frames, height=H, width=W, num_objects=2
        )
        name = f"vid{v:02d}"
        objects = {"1": {"category": "a", "frames": []}, "2": {"category": "b", "frames": []}}
        for t in range(num_frames):
            stem = f"{5 * t:05d}"
            label = video.labels[t].copy()
            if t < LATE_START:
                label[label == 2] = 0
            for key in objects:
                if (label == int(key)).any():
                    objects[key]["frames"].append(stem)
            write_rgb(split / "JPEGImages" / name / f"{stem}.jpg", video.frames[t])
            write_palette_png(split / "Annotations" / name / f"{stem}.png", label)
        meta["videos"][name] = {"objects": objects}
    (split / "meta.json").write_text(json.dumps(meta))
    return root


def _image_and_ids(seed: int) -> tuple[np.ndarray, np.ndarray]:
    video = make_synthetic_video(seed, num_frames=1, height=H, width=W, num_objects=2)
    return video.frames[0], video.labels[0]


def saliency_tree(root: Path, count: int = 3) -> Path:
    """MSRA10K/ECSSD style: images/*.jpg and masks/*.png with 0/255 saliency masks."""
    for i in range(count):
        image, ids = _image_and_ids(100 + i)
        write_rgb(root / "images" / f"{i:04d}.jpg", image)
        write_palette_png(root / "masks" / f"{i:04d}.png", np.where(ids > 0, 255, 0))
    return root


def voc_tree(root: Path, count: int = 2) -> Path:
    """PASCAL VOC 2012: JPEGImages, SegmentationObject (with a void border), ImageSets/Segmentation."""
    names = []
    for i in range(count):
        image, ids = _image_and_ids(200 + i)
        ids = ids.copy()
        ids[0, :] = 255
        name = f"2007_{i:06d}"
        names.append(name)
        write_rgb(root / "JPEGImages" / f"{name}.jpg", image)
        write_palette_png(root / "SegmentationObject" / f"{name}.png", ids)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(names) + "\n")
    return root


def coco_tree(root: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """COCO instances with one polygon, one uncompressed and one compressed RLE object, one crowd.

    Returns:
      The root and the expected bool masks by kind ('polygon', 'rle', 'crle', 'crowd').
    """
    image = np.full((H, W, 3), 90, np.uint8)
    write_rgb(root / "train2017" / "000001.jpg", image)
    poly = np.zeros((H, W), np.uint8)
    cv2.rectangle(poly, (4, 4), (30, 20), 1, thickness=-1)
    rle = np.zeros((H, W), bool)
    rle[25:45, 5:40] = True
    crle = np.zeros((H, W), bool)
    crle[10:40, 45:60] = True
    crle[12:15, 50:52] = False
    crowd = np.zeros((H, W), bool)
    crowd[40:47, 42:63] = True
    anns = [
        {
            "id": 1,
            "image_id": 1,
            "iscrowd": 0,
            "area": 400.0,
            "segmentation": [[4, 4, 31, 4, 31, 21, 4, 21]],
        },
        {
            "id": 2,
            "image_id": 1,
            "iscrowd": 0,
            "area": 700.0,
            "segmentation": {"counts": mask_to_rle_counts(rle), "size": [H, W]},
        },
        {
            "id": 3,
            "image_id": 1,
            "iscrowd": 0,
            "area": 444.0,
            "segmentation": {
                "counts": counts_to_rle_string(mask_to_rle_counts(crle)),
                "size": [H, W],
            },
        },
        {
            "id": 4,
            "image_id": 1,
            "iscrowd": 1,
            "area": 147.0,
            "segmentation": {"counts": mask_to_rle_counts(crowd), "size": [H, W]},
        },
    ]
    data = {
        "images": [{"id": 1, "file_name": "000001.jpg", "height": H, "width": W}],
        "annotations": anns,
    }
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    expected = {"polygon": poly.astype(bool), "rle": rle, "crle": crle, "crowd": crowd}
    return root, expected


def youtube_valid_tree(root: Path, num_videos: int = 3, num_frames: int = 6) -> Path:
    """YouTube-VOS valid tree (every frame stored): meta.json lists every 3rd frame; object 1 is
    given in frame 0, object 2 first appears (and is given) in frame 3. Returns the valid/ folder."""
    valid = root / "valid"
    meta = {"videos": {}}
    listed = [f"{t:05d}" for t in range(0, num_frames, 3)]
    for v in range(num_videos):
        # These seeds show object 2 in frame 3 (it is hidden there in some others).
        video = make_synthetic_video(
            70 + 4 * v, num_frames=num_frames, height=40, width=56, num_objects=2
        )
        name = f"vid{v:02d}"
        for t in range(num_frames):
            write_rgb(valid / "JPEGImages" / name / f"{t:05d}.jpg", video.frames[t])
        first = np.where(video.labels[0] == 1, 1, 0).astype(np.uint8)
        late = np.where(video.labels[3] == 2, 2, 0).astype(np.uint8)
        write_palette_png(valid / "Annotations" / name / "00000.png", first)
        write_palette_png(valid / "Annotations" / name / "00003.png", late)
        objects = {"1": {"frames": listed}, "2": {"frames": listed[1:]}}
        meta["videos"][name] = {"objects": objects}
    (valid / "meta.json").write_text(json.dumps(meta))
    return valid
