"""A video to segment as files: its frames in order and its first frame's mask, and the one error
type for inputs that cannot be segmented as given (every message names the file and the fix).

Dataset layouts (`stm_jax.data.registry.DATASETS`) list their videos as `Video`s for the segment and
evaluate jobs; which files are frames, and in which order, is `stm_jax.io.frames_folder`'s.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stm_jax.cli_errors import UserError
from stm_jax.io.frames_folder import frame_files


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
