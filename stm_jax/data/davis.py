"""DAVIS 2016/2017 video source reading the official on-disk layout.

    <root>/ImageSets/<year>/<split>.txt        one sequence name per line
    <root>/JPEGImages/<resolution>/<seq>/00000.jpg ...
    <root>/Annotations/<resolution>/<seq>/00000.png ...   palette PNGs, ids 1..n, 255 void

`resolution` is '480p' or 'Full-Resolution'. DAVIS 2016 read from a 2017 root (year='2016') merges
every label > 0 and != 255 into one object (the 2017 release annotates 2016 sequences per instance).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from stm_jax.data.errors import DataError, SkipLog, check_on_bad_sample, handle_bad
from stm_jax.data.registry import DATASETS
from stm_jax.data.video import FileVideo
from stm_jax.io.frames_folder import frame_files
from stm_jax.io.split_files import duplicated, shown
from stm_jax.io.split_files import read_split_file as read_lines
from stm_jax.io.videos import Video, VideoInputError, problems_error

log = logging.getLogger("stm_jax.data")

RESOLUTIONS = ("480p", "Full-Resolution")


def read_split_file(path: Path) -> list[str]:
    """Reads sequence names from an ImageSets file.

    Lines are sequence names (2017 style); lines holding paths (the 2016 release's
    '/JPEGImages/480p/bear/00000.jpg /Annotations/...') give their sequence folder.

    Args:
      path: the split file.

    Returns:
      Sequence names in file order.

    Raises:
      SplitFileError: a sequence is listed twice, or none is.
    """
    if not path.is_file():
        raise DataError(f"{path}: split file not found. Check data root/year/split (DAVIS layout).")
    return read_lines(path)


@DATASETS.register("davis")
class DavisSource:
    """Random-access DAVIS sequences (grain `MapDataset.source` compatible, picklable); for the
    segment / evaluate jobs, `segment_videos` lists a split's videos.

    Args:
      root: the DAVIS folder (holding ImageSets, JPEGImages, Annotations).
      year: '2017' or '2016'.
      split: 'train', 'val', ... (a file in ImageSets/<year>/).
      resolution: '480p' or 'Full-Resolution'.
      merge_objects: single-object (DAVIS-2016) view; defaults to year == '2016'.
      on_bad_sample: 'error' raises on a missing or empty sequence; 'skip' logs and drops it.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        year: str = "2017",
        split: str = "train",
        resolution: str = "480p",
        merge_objects: bool | None = None,
        on_bad_sample: str = "error",
    ) -> None:
        if resolution not in RESOLUTIONS:
            raise ValueError(f"DAVIS resolution must be one of {RESOLUTIONS}, got {resolution!r}")
        self.root = Path(root)
        self.merge_objects = (str(year) == "2016") if merge_objects is None else merge_objects
        self.skips = SkipLog()
        self.index_counts = {"missing_png": 0}  # train: frames without an annotation, left out
        self.split_is_train = split.startswith("train")
        check_on_bad_sample(on_bad_sample)
        self.videos: list[FileVideo] = []
        for name in read_split_file(self.root / "ImageSets" / str(year) / f"{split}.txt"):
            try:
                self.videos.append(self._index(name, resolution))
            except DataError as error:
                handle_bad(error, f"DAVIS/{name}", on_bad_sample, self.skips)
        if not self.videos:
            raise DataError(f"{self.root}: no usable DAVIS {year} {split} sequences found.")

    def _index(self, name: str, resolution: str) -> FileVideo:
        jpeg_dir = self.root / "JPEGImages" / resolution / name
        ann_dir = self.root / "Annotations" / resolution / name
        if not jpeg_dir.is_dir():
            raise DataError(
                f"{jpeg_dir}: sequence {name!r} is listed in the split file but absent on disk. "
                "Download/extract it or remove it from the split file."
            )
        frames = sorted(jpeg_dir.glob("*.jpg"))
        if not frames:
            raise DataError(f"{jpeg_dir}: empty video (no .jpg frames). Re-extract the sequence.")
        labels = [ann_dir / f"{frame.stem}.png" for frame in frames]
        if not labels[0].is_file():
            raise DataError(
                f"{labels[0]}: first-frame annotation missing; it defines the objects. "
                "Add it (palette PNG) or remove the sequence from the split file."
            )
        if self.split_is_train and not all(p.is_file() for p in labels):
            kept = [(f, p) for f, p in zip(frames, labels) if p.is_file()]
            self.index_counts["missing_png"] += len(frames) - len(kept)
            log.warning(
                "DAVIS/%s: %d frame(s) without a PNG left out", name, len(frames) - len(kept)
            )
            frames, labels = [f for f, _ in kept], [p for _, p in kept]
        return FileVideo(
            name=name,
            frame_paths=tuple(str(p) for p in frames),
            label_paths=tuple(str(p) if p.is_file() else None for p in labels),
            merge_objects=self.merge_objects,
        )

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> FileVideo:
        return self.videos[index]

    @classmethod
    def segment_videos(cls, data) -> list[Video]:
        """Videos of a DAVIS split for the segment / evaluate jobs: ImageSets/<year>/<split>.txt,
        JPEGImages/<res>/<seq>/, first-frame mask Annotations/<res>/<seq>/<first frame>.png (subset:
        `data.sequences`). Raises one error listing every problem."""
        root = Path(data.root)
        if not data.root or not root.is_dir():
            raise VideoInputError(
                f"data.root={data.root!r} is not a folder; pass --config.data.root=/path/to/DAVIS."
            )
        names = read_split_file(root / "ImageSets" / str(data.year) / f"{data.split}.txt")
        if data.get("sequences"):
            wanted = [s.strip() for s in data.sequences.split(",") if s.strip()]
            if duplicated(wanted):
                raise VideoInputError(
                    f"data.sequences: {shown(duplicated(wanted))} listed more than once; list "
                    "each once."
                )
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise VideoInputError(
                    f"data.sequences {unknown} are not in the {data.split} split."
                )
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
                videos.append(
                    Video(name, frames, annotations / f"{frames[0].stem}.png", annotations)
                )
        if problems:
            raise problems_error(problems)
        return videos

    @classmethod
    def single_object(cls, data) -> bool:
        """DAVIS-2016 from a 2017 root: every id > 0 is the one object."""
        return str(data.get("year", "2017")) == "2016"
