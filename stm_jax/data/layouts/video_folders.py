"""'video_folders': a folder of videos without split files (MOSE, LVOS, most custom datasets):

    <root>/JPEGImages/<video>/<frame>.jpg ...     frames (.jpg or .png, natural order)
    <root>/Annotations/<video>/<frame>.png ...    palette PNGs: ids 1..n, 0 background, 255 void

Every video folder is a video (`data.sequences` / `sequences` pick a subset). Training reads the
frames that have an annotation; segmenting reads the first frame's annotation. A worked example of a
dataset layout (docs/extending.md): one class, both roles, one decorator.
"""

from __future__ import annotations

import os
from pathlib import Path

from stm_jax.data.errors import DataError, SkipLog, check_on_bad_sample, handle_bad
from stm_jax.data.registry import DATASETS
from stm_jax.data.video import FileVideo
from stm_jax.io.frames_folder import frame_files
from stm_jax.io.split_files import duplicated, shown
from stm_jax.io.videos import Video, VideoInputError, problems_error


def _names(root: Path, sequences: str) -> list[str]:
    if not (root / "JPEGImages").is_dir():
        raise DataError(f"{root}/JPEGImages: no such folder (the 'video_folders' layout).")
    names = sorted(p.name for p in (root / "JPEGImages").iterdir() if p.is_dir())
    wanted = [s.strip() for s in (sequences or "").split(",") if s.strip()]
    if duplicated(wanted):  # each would be segmented and scored twice
        raise DataError(
            f"sequences: {shown(duplicated(wanted))} listed more than once; list each once."
        )
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise DataError(f"{root}: sequences {unknown} have no folder in JPEGImages/.")
    return wanted or names


@DATASETS.register("video_folders")
class VideoFolders:
    """Training records of every annotated frame, per video (len + getitem, picklable).

    Args:
      root: the dataset folder (holding JPEGImages/ and Annotations/).
      sequences: comma-separated subset of the videos ('' = all).
      on_bad_sample: 'error' raises on a video without frames or annotations; 'skip' drops it.
    """

    def __init__(self, root: str | os.PathLike, sequences: str = "", on_bad_sample="error"):
        check_on_bad_sample(on_bad_sample)
        self.root, self.skips = Path(root), SkipLog()
        self.videos: list[FileVideo] = []
        for name in _names(self.root, sequences):
            frames, _ = frame_files(self.root / "JPEGImages" / name)
            labels = [self.root / "Annotations" / name / f"{f.stem}.png" for f in frames]
            kept = [(f, p) for f, p in zip(frames, labels) if p.is_file()]
            if not kept:
                handle_bad(
                    DataError(f"{self.root}/Annotations/{name}: no annotated frame."),
                    f"video_folders/{name}",
                    on_bad_sample,
                    self.skips,
                )
                continue
            self.videos.append(
                FileVideo(
                    name=name,
                    frame_paths=tuple(str(f) for f, _ in kept),
                    label_paths=tuple(str(p) for _, p in kept),
                )
            )
        if not self.videos:
            raise DataError(f"{self.root}: no usable video in the 'video_folders' layout.")

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> FileVideo:
        return self.videos[index]

    @classmethod
    def segment_videos(cls, data) -> list[Video]:
        """Every video (or `data.sequences`) with its first frame's annotation."""
        root = Path(data.root)
        if not data.root or not root.is_dir():
            raise VideoInputError(f"data.root={data.root!r} is not a folder.")
        try:
            names = _names(root, data.get("sequences", ""))
        except DataError as error:
            raise VideoInputError(str(error)) from error
        videos, problems = [], []
        for name in names:
            frames, found = frame_files(root / "JPEGImages" / name)
            problems.extend(found)
            if frames:
                annotations = root / "Annotations" / name
                videos.append(
                    Video(name, frames, annotations / f"{frames[0].stem}.png", annotations)
                )
        if problems:
            raise problems_error(problems)
        return videos
