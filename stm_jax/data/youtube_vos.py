"""YouTube-VOS 2018/2019 video source reading the official layout.

    <root>/<split>/meta.json   {"videos": {vid: {"objects": {"1": {"category": ..., "frames":
    ["00000", ...]}}}}} <root>/<split>/JPEGImages/<vid>/00000.jpg, 00005.jpg, ...
    <root>/<split>/Annotations/<vid>/00000.png, ...

The train split stores every 5th frame (so the max-skip curriculum is divided by 5). Objects may
first appear after frame 0; meta.json says where, and clips start on frames that hold objects. In
the valid split only the first appearance of each object is annotated. In train splits, a frame
without a PNG is left out of the video (counted in `index_counts['missing_png']`); ids in a PNG that
meta.json does not list are ignored while training (counted per sample, see `ClipMaker`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from stm_jax.data.errors import DataError, SkipLog, check_on_bad_sample, handle_bad
from stm_jax.data.registry import DATASETS
from stm_jax.data.video import FileVideo

log = logging.getLogger("stm_jax.data")


@DATASETS.register("youtube_vos")
class YouTubeVOSSource:
    """Random-access YouTube-VOS videos (grain `MapDataset.source` compatible, picklable).

    Args:
      root: the folder holding train/ and valid/.
      split: 'train', 'valid', 'train_all_frames', ...
      frame_step: original frames between stored ones; default 5 for 'train'/'valid', else 1.
      on_bad_sample: 'error' or 'skip' for missing/empty videos.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        frame_step: int | None = None,
        on_bad_sample: str = "error",
    ) -> None:
        check_on_bad_sample(on_bad_sample)
        self.root = Path(root) / split
        self.split_is_train = split.startswith("train")
        self.frame_step = frame_step or (5 if split in ("train", "valid", "test") else 1)
        self.skips = SkipLog()
        self.index_counts = {"missing_png": 0}  # frames without an annotation, left out
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise DataError(
                f"{meta_path}: meta.json not found. Check data root and split (YouTube-VOS layout)."
            )
        try:
            meta = json.loads(meta_path.read_text())["videos"]
        except (ValueError, KeyError) as error:
            raise DataError(
                f"{meta_path}: not a YouTube-VOS meta.json ({error}). Re-download it."
            ) from error
        self.videos: list[FileVideo] = []
        for name in sorted(meta):
            try:
                self.videos.append(self._index(name, meta[name].get("objects", {})))
            except DataError as error:
                handle_bad(error, f"YouTube-VOS/{name}", on_bad_sample, self.skips)
        if not self.videos:
            raise DataError(f"{self.root}: no usable YouTube-VOS videos found.")

    def _index(self, name: str, objects: dict) -> FileVideo:
        jpeg_dir = self.root / "JPEGImages" / name
        if not jpeg_dir.is_dir():
            raise DataError(
                f"{jpeg_dir}: video {name!r} is in meta.json but absent on disk. Re-extract it or "
                "remove it from meta.json."
            )
        frames = sorted(jpeg_dir.glob("*.jpg"))
        if not frames:
            raise DataError(f"{jpeg_dir}: empty video (no .jpg frames). Re-extract the video.")
        ann_dir = self.root / "Annotations" / name
        labels = [ann_dir / f"{f.stem}.png" for f in frames]
        label_paths = tuple(str(p) if p.is_file() else None for p in labels)
        if not any(label_paths):
            raise DataError(f"{ann_dir}: no annotation for any frame of {name!r}. Re-extract it.")
        if self.split_is_train and None in label_paths:  # train: every stored frame is annotated
            missing = label_paths.count(None)
            self.index_counts["missing_png"] += missing
            log.warning(
                "YouTube-VOS/%s: %d frame(s) without a PNG left out of sampling", name, missing
            )
            frames = [f for f, p in zip(frames, label_paths) if p is not None]
            label_paths = tuple(p for p in label_paths if p is not None)
        stem_index = {f.stem: i for i, f in enumerate(frames)}
        object_frames = []
        for key, info in objects.items():
            indices = tuple(stem_index[s] for s in info.get("frames", []) if s in stem_index)
            object_frames.append((int(key), indices))
        return FileVideo(
            name=name,
            frame_paths=tuple(str(p) for p in frames),
            label_paths=label_paths,
            frame_step=self.frame_step,
            object_ids=tuple(sorted(i for i, _ in object_frames)) if objects else None,
            object_frames=tuple(sorted(object_frames)),
        )

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> FileVideo:
        return self.videos[index]

    def first_frames(self, index: int) -> dict[int, int]:
        """Object id -> stored-frame index of its first appearance (late objects at evaluation)."""
        return {i: min(fr) for i, fr in self.videos[index].object_frames if fr}
