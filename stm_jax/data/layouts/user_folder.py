"""'folder': one video of the user's own, for the segment job — a folder of frames
(`data.frames`) and the first frame's mask (`data.first_mask`)."""

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
        frames = list_frames(Path(data.frames), Path(data.first_mask))
        return [Video(Path(data.frames).name, frames, Path(data.first_mask))]
