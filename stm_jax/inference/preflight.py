"""Checking every input a segmentation job will need before its first frame.

For every video: a name that can be its output folder (one plain, unique folder name); the first-
frame mask (exists, readable, ids 1..N within model.max_objects, the first frame's size), every
frame's header (readable, one size), frames missing from the numbering, and for
DAVIS the frames that Annotations/ names but JPEGImages/ lacks. All problems of all videos are raised
together in one `VideoInputError`, each naming its file, so one run shows everything to fix.
A frame whose header reads but whose pixels do not (a truncated JPEG) is found only when it is
decoded; the segment job then leaves no output for that video.

`step_memory_size` then checks that one video's per-frame step fits in memory at each frame size,
by an estimate that compiles nothing, and refuses in one line (or picks a smaller size to segment
at, with `inference.downscale`) before anything compiles.
"""

from __future__ import annotations

from stm_jax.inference.input_videos import Video, first_mask_labels, problems_error
from stm_jax.inference.memory_estimate import (
    GIB,
    StepMemoryError,
    available_memory,
    step_estimate,
)
from stm_jax.inference.rescale import fitting_size
from stm_jax.io.frames_folder import numbering_gaps
from stm_jax.io.images import ImageFileError, image_size

MAX_PER_VIDEO = 10


def video_problems(video: Video, max_objects: int, merge_objects: bool) -> list[str]:
    """Every problem of one video (empty if it can be segmented)."""
    problems = []
    sizes = {}
    for path in video.frame_paths:
        try:
            sizes[path] = image_size(path)
        except ImageFileError as error:
            problems.append(str(error))
    if video.frame_paths and video.frame_paths[0] in sizes:
        size = sizes[video.frame_paths[0]]
        for path, other in sizes.items():
            if other != size:
                problems.append(
                    f"{path}: frame is {other[1]}x{other[0]} but the video's first frame is "
                    f"{size[1]}x{size[0]}; all frames of a video must have one size."
                )
    else:
        size = None
    try:
        labels = first_mask_labels(video, max_objects, merge_objects)
        if size is not None and labels.shape != size:
            problems.append(
                f"{video.first_mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but frame "
                f"{video.frame_paths[0].name} is {size[1]}x{size[0]}; resize the mask (nearest) to "
                "the frame."
            )
    except (ImageFileError, ValueError) as error:
        problems.append(str(error))
    names = video.frame_names
    folder = video.frame_paths[0].parent if video.frame_paths else None
    suffix = video.frame_paths[0].suffix if video.frame_paths else ".jpg"
    missing = set(numbering_gaps(names))
    if video.annotations_dir is not None and video.annotations_dir.is_dir():
        annotated = {p.stem for p in video.annotations_dir.glob("*.png")}
        missing |= annotated - set(names)
    if missing:
        listed = sorted(missing)
        shown = ", ".join(f"{n}{suffix}" for n in listed[:MAX_PER_VIDEO])
        more = f" and {len(listed) - MAX_PER_VIDEO} more" if len(listed) > MAX_PER_VIDEO else ""
        problems.append(
            f"{folder}: input frame(s) missing from video '{video.name}': {shown}{more}. "
            "Restore them (re-extract the video) before segmenting."
        )
    if len(problems) > MAX_PER_VIDEO:
        problems = problems[:MAX_PER_VIDEO] + [
            f"... and {len(problems) - MAX_PER_VIDEO} more problem(s) in video '{video.name}'"
        ]
    return problems


def name_problems(videos: list[Video]) -> list[str]:
    """A video's name is its output folder under predictions/: it must be one plain folder name, and
    no two videos may share it (else one video's outputs would replace, or sit among, another's)."""
    problems, seen = [], set()
    for video in videos:
        if video.name in ("", ".", "..") or "/" in video.name or "\\" in video.name:
            problems.append(
                f"{video.first_mask_path}: video name {video.name!r} cannot name an output folder; "
                "give its frames folder a name of its own."
            )
        elif video.name in seen:
            problems.append(
                f"{video.first_mask_path}: another video is also named {video.name!r}; video names "
                "must be unique (each names its output folder)."
            )
        seen.add(video.name)
    return problems


def check_videos(videos: list[Video], max_objects: int, merge_objects: bool) -> None:
    """Raises one VideoInputError listing the problems of every video, or returns quietly."""
    problems = name_problems(videos)
    for video in videos:
        problems.extend(video_problems(video, max_objects, merge_objects))
    if problems:
        raise problems_error(problems)


def step_memory_size(
    model_config,
    memory_config,
    weight_bytes: int,
    height: int,
    width: int,
    objects: int,
    device,
    fraction: float,
    downscale: bool,
    downscale_hint: str,
) -> tuple[int, int]:
    """The frame size to segment (height, width) frames at, checked before anything compiles.

    The analytic estimate of one video's step (`stm_jax.inference.memory_estimate`) must fit in
    `fraction` of the memory `device` may use (host RAM on a CPU). If it does, the frame's own size;
    if not, with `downscale` the largest stride-16 size at the same aspect ratio that fits, and
    otherwise one StepMemoryError line naming the size, the estimate, what is available and the
    fixes (`downscale_hint` says how to turn downscaling on where the caller is)."""
    available = available_memory(device)
    if available is None:
        return height, width
    budget = fraction * available

    def needs(h, w):
        return step_estimate(model_config, memory_config, h, w, objects, weight_bytes)

    estimate = needs(height, width)
    if estimate.total <= budget:
        return height, width
    size = (
        fitting_size(height, width, lambda h, w: needs(h, w).total <= budget) if downscale else None
    )
    if size is not None:
        return size
    where = "host RAM" if device.platform == "cpu" else device.device_kind
    fixes = "fewer objects, a smaller memory.chunk_frames (the read's affinity) or memory.capacity"
    fix = (
        f"not even 16 pixels high fits: use {fixes}"
        if downscale
        else f"segment downscaled ({downscale_hint}), or use {fixes}"
    )
    raise StepMemoryError(
        f"{width}x{height} frames with {objects} object(s) need about {estimate.total / GIB:.1f} "
        f"GiB per step but {fraction:g} x {available / GIB:.1f} GiB of {where} is available; "
        f"{fix}."
    )
