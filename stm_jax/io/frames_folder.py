"""Which files of a folder are a video's frames, in the order a person means.

* Natural order: `2.jpg` comes before `10.jpg` (ffmpeg's default `%d.jpg` names), not text order.
* Hidden files are ignored: macOS `._*` resource forks, `.DS_Store`, editors' temp files.
* One image type per folder: JPEG (.jpg/.jpeg) or PNG. A folder holding both is refused, naming the
  files of the smaller group (PNGs beside JPEGs are usually masks, and would become frames).
* Mask-like files are refused: palette PNGs among non-palette frames, and the first-frame mask itself.
* Two files with one name but different suffixes (`0.jpg`, `0.jpeg`) are refused (their predictions
  would overwrite each other).
`frame_files` returns the frames and a list of problems (empty when the folder is usable), so that a
job can report the problems of every video at once.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

JPEG_SUFFIXES = (".jpg", ".jpeg")
PNG_SUFFIXES = (".png",)
FRAME_SUFFIXES = JPEG_SUFFIXES + PNG_SUFFIXES
_DIGITS = re.compile(r"(\d+)")
_SHOWN = 5


def natural_key(name: str) -> tuple:
    """Sort key comparing digit runs as numbers: natural_key('2.jpg') < natural_key('10.jpg')."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p), name


def _names(paths: list[Path]) -> str:
    shown = ", ".join(p.name for p in paths[:_SHOWN])
    return shown + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")


def _is_palette(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.mode == "P"
    except Exception:  # unreadable files are reported by the header check
        return False


def frame_files(folder: str | Path, first_mask: str | Path | None = None):
    """Returns (frame paths in natural order, problems) for a folder of frames.

    Args:
      folder: the frames folder.
      first_mask: the first-frame mask, which must not be inside the frames folder.
    Returns:
      (tuple of Paths, list of problem strings naming the files and the fix).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return (), [f"{folder}: frame folder not found. Check the path / data root and layout."]
    files = [
        p
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.suffix.lower() in FRAME_SUFFIXES and p.is_file()
    ]
    files.sort(key=lambda p: natural_key(p.name))
    if not files:
        return (), [f"{folder}: no .jpg/.jpeg/.png frames in this folder."]
    problems = []
    if first_mask:
        mask = Path(first_mask).resolve()
        inside = [p for p in files if p.resolve() == mask]
        if inside:
            problems.append(
                f"{inside[0]}: the first-frame mask is inside the frames folder and would be read "
                "as a frame; move the mask out of the frames folder."
            )
            files = [p for p in files if p not in inside]
    jpegs = [p for p in files if p.suffix.lower() in JPEG_SUFFIXES]
    pngs = [p for p in files if p.suffix.lower() in PNG_SUFFIXES]
    if jpegs and pngs:
        extra, kind = (pngs, "PNG") if len(pngs) <= len(jpegs) else (jpegs, "JPEG")
        masks = (
            " (palette PNGs: these look like masks)"
            if kind == "PNG" and any(_is_palette(p) for p in extra)
            else ""
        )
        problems.append(
            f"{folder}: holds both JPEG ({len(jpegs)}) and PNG ({len(pngs)}) files, but only one "
            f"image type is read as frames. Move these {kind} files out{masks}: {_names(extra)}."
        )
    elif pngs:
        palette = [p for p in pngs if _is_palette(p)]
        if palette and len(palette) < len(pngs):
            problems.append(
                f"{folder}: {len(palette)} palette PNG(s) among the frames look like masks; move "
                f"them out of the frames folder: {_names(palette)}."
            )
    stems: dict[str, list[Path]] = {}
    for path in jpegs if jpegs and pngs else files:  # mixed types: reported above already
        stems.setdefault(path.stem, []).append(path)
    clashes = [paths for paths in stems.values() if len(paths) > 1]
    if clashes:
        problems.append(
            f"{folder}: frames share a name ({', '.join(_names(c) for c in clashes[:_SHOWN])}); "
            "their predictions would overwrite each other. Keep one file per name."
        )
    return tuple(files), problems


def numbering_gaps(names: list[str]) -> list[str]:
    """Names missing from a numbered sequence (step = gcd of the gaps, so every-5th is fine)."""
    if len(names) < 2 or not all(n.isdigit() for n in names):
        return []
    import math

    numbers = sorted(int(n) for n in names)
    step = 0
    for a, b in zip(numbers, numbers[1:]):
        step = math.gcd(step, b - a)
    if step == 0:
        return []
    width = len(names[0])
    present = set(numbers)
    missing = [n for n in range(numbers[0], numbers[-1] + 1, step) if n not in present]
    return [str(n).zfill(width) for n in missing]
