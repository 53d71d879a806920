"""Finding and validating the videos to segment: DAVIS layout or a user's folder of frames.

Which files are frames, and in which order, is decided by `stm_jax.io.frames_folder` (natural order,
one image type, no masks). Every error names the file and the fix; `stm_jax.inference.preflight`
gathers the problems of all videos before any work starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from stm_jax.cli_errors import UserError
from stm_jax.io.frames_folder import FRAME_SUFFIXES, frame_files
from stm_jax.io.images import VOID_LABEL, image_size, read_label_mask

__all__ = [
    "FRAME_SUFFIXES",
    "MASK_RULES",
    "Video",
    "VideoInputError",
    "davis_videos",
    "first_mask_labels",
    "folder_video",
    "list_frames",
    "load_first_labels",
    "problems_error",
]

MASK_RULES = (
    "A first-frame mask is a palette (or 8-bit grayscale) PNG of the first frame's size whose values "
    "are object ids: 0 = background, 1..N = objects, 255 = void (ignored)."
)


class VideoInputError(UserError, ValueError):
    """A video that cannot be segmented as given; the message names the file and the fix."""


def problems_error(problems: list[str], what: str = "input") -> VideoInputError:
    """One error listing every problem (one per line)."""
    if len(problems) == 1:
        return VideoInputError(problems[0])
    lines = "\n".join(f"  - {p}" for p in problems)
    return VideoInputError(f"{len(problems)} {what} problems; nothing was segmented:\n{lines}")


@dataclasses.dataclass(frozen=True)
class Video:
    """One video to segment: frame files in order and the first frame's mask file."""

    name: str
    frame_paths: tuple[Path, ...]
    first_mask_path: Path
    annotations_dir: Path | None = None  # DAVIS: the folder whose PNGs name every expected frame

    @property
    def frame_names(self) -> list[str]:
        return [p.stem for p in self.frame_paths]


def list_frames(folder: Path, first_mask: Path | None = None) -> tuple[Path, ...]:
    """The frames of a folder in natural order; raises VideoInputError listing every problem."""
    frames, problems = frame_files(folder, first_mask)
    if problems:
        raise problems_error(problems)
    return frames


def davis_videos(data) -> list[Video]:
    """Videos of a DAVIS split: ImageSets/<year>/<split>.txt, JPEGImages/<res>/<seq>/,
    first-frame mask Annotations/<res>/<seq>/<first frame>.png. Raises one error for all problems."""
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
    videos, problems = [], []
    for name in names:
        folder = root / "JPEGImages" / data.resolution / name
        if not folder.is_dir():
            problems.append(
                f"{folder}: sequence '{name}' is listed in ImageSets/{data.year}/{data.split}.txt "
                "but its frames are missing. Re-extract the dataset or remove it from the split."
            )
            continue
        frames, found = frame_files(folder)
        problems.extend(found)
        if frames:
            annotations = root / "Annotations" / data.resolution / name
            videos.append(Video(name, frames, annotations / f"{frames[0].stem}.png", annotations))
    if problems:
        raise problems_error(problems)
    return videos


def folder_video(data) -> Video:
    """A user's video: data.frames (folder of frames) and data.first_mask (palette PNG)."""
    if not data.frames or not data.first_mask:
        raise VideoInputError(
            "layout='folder' needs --config.data.frames=FRAME_FOLDER and "
            "--config.data.first_mask=FIRST_FRAME_MASK.png"
        )
    frames = list_frames(Path(data.frames), Path(data.first_mask))
    return Video(Path(data.frames).name, frames, Path(data.first_mask))


def first_mask_labels(video: Video, max_objects: int, merge_objects: bool) -> np.ndarray:
    """Reads and checks the first-frame mask alone (existence, ids, object count); see MASK_RULES."""
    if not video.first_mask_path.is_file():
        raise VideoInputError(
            f"{video.first_mask_path}: first-frame mask missing for video '{video.name}'. "
            f"{MASK_RULES} Name it like the first frame ({video.frame_paths[0].stem}.png)."
        )
    raw = read_label_mask(video.first_mask_path)
    labels = np.where(raw == VOID_LABEL, 0, raw).astype(np.uint8)
    if merge_objects:
        labels = (labels > 0).astype(np.uint8)
    num_objects = int(labels.max())
    if num_objects == 0 and (raw == VOID_LABEL).any():
        raise VideoInputError(
            f"{video.first_mask_path}: the mask holds only 0 and 255, i.e. one object with id 255, "
            "which is void: use ids 1..N for the objects (e.g. save mask > 0 as 1)."
        )
    if num_objects == 0:
        raise VideoInputError(
            f"{video.first_mask_path}: the first-frame mask has no object (all background). "
            f"{MASK_RULES}"
        )
    if num_objects > max_objects:
        raise VideoInputError(
            f"{video.first_mask_path}: {num_objects} objects (max id) but model.max_objects="
            f"{max_objects}; pass --config.model.max_objects={num_objects} (the weights do not "
            "depend on it) or merge objects."
        )
    return labels


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
    labels = first_mask_labels(video, max_objects, merge_objects)
    size = image_size(video.frame_paths[0])
    if labels.shape != size:
        raise VideoInputError(
            f"{video.first_mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but frame "
            f"{video.frame_paths[0].name} is {size[1]}x{size[0]}; resize the mask (nearest) to the frame."
        )
    for path in video.frame_paths[1:]:
        other = image_size(path)
        if other != size:
            raise VideoInputError(
                f"{path}: frame is {other[1]}x{other[0]} but the video's first frame is "
                f"{size[1]}x{size[0]}; all frames of a video must have one size."
            )
    return labels, int(labels.max())
