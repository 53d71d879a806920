"""YouTube-VOS submission layout: which frames to output, when objects enter, PNG writer and zip.

Protocol (YouTube-VOS 2018/2019 semi-supervised validation; spec section B):
* `valid/meta.json` is {"videos": {video: {"objects": {"<id>": {"frames": ["00000", "00005", ...]}}}}}:
  for every object the (5-frame-sampled) frames in which it is annotated, starting at its first one.
* Objects may first appear mid-video. Object k is given by its mask in
  `valid/Annotations/<video>/<first frame of k>.png`, and is injected (its mask overwrites the current
  estimate) at that frame; before it, k must be absent from the output.
* Output frames = the union of the frames listed for the video's objects (sorted); the server expects
  `Annotations/<video>/<frame>.png` for exactly those, as palette PNGs of object ids, at the original
  video resolution. STM runs on all frames ("all_frames" release) and only these are written.
* The submission is a zip whose root contains `Annotations/` (only the PNGs of the planned videos;
  bookkeeping files beside them are left out).

`video_problems` cross-checks meta.json against a video's annotations and frames, so that a job can
refuse a bad tree before its first frame is segmented rather than drop an object without a word or
fail after the last one.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stm_jax.cli_errors import MissingFileError, UserError
from stm_jax.io.images import ImageFileError, read_label_mask, write_palette_png


class YouTubeVOSError(UserError, ValueError):
    """A meta.json that does not match the tree it describes; the message names the file."""


@dataclass(frozen=True)
class VideoPlan:
    """What to output for one video.

    Attributes:
      video: video name.
      output_frames: sorted frame names to write (union over objects).
      first_frame: object id -> frame name where it is injected (its first annotated frame).
    """

    video: str
    output_frames: tuple[str, ...]
    first_frame: dict[int, str]

    def objects_starting_at(self, frame: str) -> list[int]:
        """Ids of the objects whose given mask must be injected at `frame` (sorted)."""
        return sorted(k for k, f in self.first_frame.items() if f == frame)

    def active_objects(self, frame: str) -> list[int]:
        """Ids of the objects already introduced at `frame` (frame names sort chronologically)."""
        return sorted(k for k, f in self.first_frame.items() if f <= frame)


def plan_video(video: str, objects: Mapping[str, Mapping]) -> VideoPlan:
    """Builds the plan of one video from its meta.json "objects" entry.

    Args:
      video: video name.
      objects: {"<id>": {"frames": [...]}, ...}.

    Returns:
      The VideoPlan.
    """
    first, union = {}, set()
    for key, entry in objects.items():
        frames = sorted(entry.get("frames", []))
        if not frames:
            raise YouTubeVOSError(
                f"meta.json: object {key} of video {video} lists no frames; re-download meta.json."
            )
        first[int(key)] = frames[0]
        union.update(frames)
    return VideoPlan(video, tuple(sorted(union)), first)


def load_meta(path: str | Path) -> dict[str, VideoPlan]:
    """Reads `valid/meta.json` (or test) and plans every video.

    Args:
      path: the meta.json file.

    Returns:
      {video: VideoPlan} in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"{path}: meta.json not found; point --config.data.root at the YouTube-VOS folder "
            "holding <split>/meta.json, or check --config.data.split."
        )
    try:
        meta = json.loads(path.read_text())
        videos = meta["videos"]
        return {video: plan_video(video, entry["objects"]) for video, entry in videos.items()}
    except YouTubeVOSError as error:
        raise YouTubeVOSError(f"{path}: {str(error).removeprefix('meta.json: ')}") from error
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise YouTubeVOSError(
            f"{path}: not a YouTube-VOS meta.json ({error!r}); re-download it."
        ) from error


def annotation_problems(plan: VideoPlan, annotations_dir: str | Path) -> list[str]:
    """One line per object that is not in the annotation PNG of its first frame (or per missing or
    unreadable PNG), each naming the video, the objects and the file."""
    problems = []
    for frame in sorted(set(plan.first_frame.values())):
        path = Path(annotations_dir) / f"{frame}.png"
        starting = plan.objects_starting_at(frame)
        if not path.is_file():
            problems.append(
                f"{path}: missing; meta.json says objects {starting} of video {plan.video} first "
                f"appear in frame {frame}. Re-extract Annotations/ or fix meta.json."
            )
            continue
        try:
            ids = set(np.unique(read_label_mask(path)).tolist())
        except ImageFileError as error:
            problems.append(str(error))
            continue
        missing = [k for k in starting if k not in ids]
        if missing:
            problems.append(
                f"{path}: objects {missing} should start here but are absent (video {plan.video}: "
                "meta.json lists this as their first frame); fix meta.json or the annotation."
            )
    return problems


def check_first_annotations(plan: VideoPlan, annotations_dir: str | Path) -> None:
    """Checks that each object's mask exists in its first-frame annotation PNG.

    Args:
      plan: the video's plan.
      annotations_dir: `valid/Annotations/<video>`.

    Raises:
      YouTubeVOSError: naming the PNG that is missing or lacks the object.
    """
    problems = annotation_problems(plan, annotations_dir)
    if problems:
        raise YouTubeVOSError(problems[0])


def frame_problems(plan: VideoPlan, frame_names, frames_dir: str | Path) -> list[str]:
    """One line if frames that meta.json lists for the video (to output or to inject an object at)
    are not in its frames folder: without it they would be found missing only after segmenting."""
    listed = set(plan.output_frames) | set(plan.first_frame.values())
    missing = sorted(listed - set(frame_names))
    if not missing:
        return []
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return [
        f"{frames_dir}: frames {', '.join(missing[:5])}{more} of video {plan.video} are listed in "
        "meta.json but missing on disk; re-extract the frames (or set data.frames_split)."
    ]


def write_video_predictions(
    root: str | Path, plan: VideoPlan, predictions: Mapping[str, np.ndarray]
) -> list[Path]:
    """Writes `<root>/Annotations/<video>/<frame>.png` for every required frame.

    Args:
      root: submission folder.
      plan: the video's plan.
      predictions: frame name -> (H, W) label map; extra frames are ignored.

    Returns:
      The PNG paths written, in frame order.

    Raises:
      ValueError: if a required frame has no prediction.
    """
    missing = [f for f in plan.output_frames if f not in predictions]
    if missing:
        raise ValueError(f"video {plan.video}: no prediction for required frames {missing}")
    out = Path(root) / "Annotations" / plan.video
    written = []
    for frame in plan.output_frames:
        path = out / f"{frame}.png"
        write_palette_png(path, predictions[frame])
        written.append(path)
    return written


def zip_submission(root: str | Path, zip_path: str | Path, videos=None) -> Path:
    """Zips the PNGs of `<root>/Annotations/<video>/` so that the archive root contains
    `Annotations/`. Other files (a job's fingerprint records) and hidden folders (staging) are left
    out: the server reads every entry as a prediction.

    Args:
      root: submission folder holding Annotations/.
      zip_path: output .zip.
      videos: the video names to include (default: every video folder).

    Returns:
      The zip path.
    """
    root, zip_path = Path(root), Path(zip_path)
    annotations = root / "Annotations"
    if not annotations.is_dir():
        raise ValueError(f"{annotations}: nothing to zip")
    if videos is None:
        videos = [p.name for p in annotations.iterdir() if p.is_dir()]
    videos = sorted(v for v in videos if not v.startswith("."))
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for video in videos:
            for path in sorted((annotations / video).glob("*.png")):
                archive.write(path, path.relative_to(root).as_posix())
    return zip_path
