"""'folder': one video of the user's own, for the segment job — a folder of frames
(`data.frames`) and the first frame's mask (`data.first_mask`). The video (and its output folder) is
named after the frames folder's resolved path, so `data.frames=.` names it after the current folder."""

from __future__ import annotations

from pathlib import Path

from stm_jax.data.registry import DATASETS
from stm_jax.io.videos import Video, VideoInputError, list_frames


@DATASETS.register("folder")
class UserFolder:
    """Segmenting only: `segment_videos` gives the one video (no training records)."""

    @classmethod
    def segment_videos(cls, data) -> list[Video]:
        if not data.frames or not data.first_mask:
            raise VideoInputError(
                "layout='folder' needs --config.data.frames=FRAME_FOLDER and "
                "--config.data.first_mask=FIRST_FRAME_MASK.png"
            )
        folder = Path(data.frames).resolve()  # '.' and '..' have no name of their own
        if not folder.name:
            raise VideoInputError(
                f"data.frames={data.frames!r} is the file system root, which cannot name the "
                "video's output folder; copy the frames into a folder of their own."
            )
        frames = list_frames(Path(data.frames), Path(data.first_mask))
        return [Video(folder.name, frames, Path(data.first_mask))]
