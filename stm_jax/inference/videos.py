"""Finding and validating the videos to segment: DAVIS layout or a user's folder of frames.

Every check runs before anything is written for a video, and every error names the file and the fix.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from stm_jax.io.images import ImageFileError, read_label_mask

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
VOID_LABEL = 255


class VideoInputError(ValueError):
    """A video that cannot be segmented as given; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Video:
    """One video to segment: frame files in order and the first frame's mask file."""

    name: str
    frame_paths: tuple[Path, ...]
    first_mask_path: Path

    @property
    def frame_names(self) -> list[str]:
        return [p.stem for p in self.frame_paths]


def list_frames(folder: Path) -> tuple[Path, ...]:
    if not folder.is_dir():
        raise VideoInputError(f"{folder}: frame folder not found. Check the data root / layout.")
    frames = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES))
    if not frames:
        raise VideoInputError(f"{folder}: no .jpg/.png frames in this folder.")
    return frames


def davis_videos(data) -> list[Video]:
    """Videos of a DAVIS split: ImageSets/<year>/<split>.txt, JPEGImages/<res>/<seq>/,
    first-frame mask Annotations/<res>/<seq>/<first frame>.png."""
    from stm_jax.data.davis import read_split_file

    root = Path(data.root)
    if not data.root or not root.is_dir():
        raise VideoInputError(
            f"data.root={data.root!r} is not a folder; pass --config.data.root=/path/to/DAVIS."
        )
    names = read_split_file(root / "ImageSets" / str(data.year) / f"{data.split}.txt")
    if data.get("sequences"):
        wanted = [s.strip() for s in data.sequences.split(",") if s.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise VideoInputError(f"data.sequences {unknown} are not in the {data.split} split.")
        names = wanted
    videos = []
    for name in names:
        folder = root / "JPEGImages" / data.resolution / name
        if not folder.is_dir():
            raise VideoInputError(
                f"{folder}: sequence '{name}' is listed in ImageSets/{data.year}/{data.split}.txt "
                "but its frames are missing. Re-extract the dataset or remove it from the split."
            )
        frames = list_frames(folder)
        mask = root / "Annotations" / data.resolution / name / f"{frames[0].stem}.png"
        videos.append(Video(name, frames, mask))
    return videos


def folder_video(data) -> Video:
    """A user's video: data.frames (folder of frames) and data.first_mask (palette PNG)."""
    if not data.frames or not data.first_mask:
        raise VideoInputError(
            "layout='folder' needs --config.data.frames=FRAME_FOLDER and "
            "--config.data.first_mask=FIRST_FRAME_MASK.png"
        )
    frames = list_frames(Path(data.frames))
    return Video(Path(data.frames).name, frames, Path(data.first_mask))


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as error:
        raise ImageFileError(
            f"{path}: cannot be read as an image ({error}). Replace the file."
        ) from error
    return height, width


def load_first_labels(
    video: Video, max_objects: int, merge_objects: bool
) -> tuple[np.ndarray, int]:
    """Validates a video and returns (first-frame labels [H, W] uint8, number of objects).

    Checks: the mask exists and is readable, matches the frame size; every frame has that size;
    the mask has at least one object and at most `max_objects` (ids are taken as 1..max id, as
    the official code does; void 255 counts as background). An id missing from the first frame
    (non-contiguous ids) stays out of aggregation and memory, where the official code would let an
    empty object compete. With merge_objects, all ids > 0 are one object (DAVIS-2016).
    """
    if not video.first_mask_path.is_file():
        raise VideoInputError(
            f"{video.first_mask_path}: first-frame mask missing for video '{video.name}'. STM needs "
            "the objects of the first frame as a palette PNG named like the first frame."
        )
    labels = read_label_mask(video.first_mask_path)
    labels = np.where(labels == VOID_LABEL, 0, labels).astype(np.uint8)
    if merge_objects:
        labels = (labels > 0).astype(np.uint8)
    size = _image_size(video.frame_paths[0])
    if labels.shape != size:
        raise VideoInputError(
            f"{video.first_mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but frame "
            f"{video.frame_paths[0].name} is {size[1]}x{size[0]}; resize the mask (nearest) to the frame."
        )
    for path in video.frame_paths[1:]:
        if _image_size(path) != size:
            other = _image_size(path)
            raise VideoInputError(
                f"{path}: frame is {other[1]}x{other[0]} but the video's first frame is "
                f"{size[1]}x{size[0]}; all frames of a video must have one size."
            )
    num_objects = int(labels.max())
    if num_objects == 0:
        raise VideoInputError(
            f"{video.first_mask_path}: the first-frame mask has no object (all background); "
            "draw at least one object with a palette index 1..N."
        )
    if num_objects > max_objects:
        raise VideoInputError(
            f"{video.first_mask_path}: {num_objects} objects (max id) but model.max_objects="
            f"{max_objects}; pass --config.model.max_objects={num_objects} (the weights do not "
            "depend on it) or merge objects."
        )
    return labels, num_objects
