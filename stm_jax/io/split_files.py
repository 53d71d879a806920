"""Reading split / sequence-list files (DAVIS ImageSets, VOC/SBD id lists): one parser for all."""

from __future__ import annotations

from pathlib import Path


def read_split_file(path: Path) -> list[str]:
    """Names listed in a split file, in file order, without duplicates or blank lines.

    Lines are names (DAVIS 2017, VOC ids); lines holding paths (the DAVIS-2016 release's
    '/JPEGImages/480p/bear/00000.jpg /Annotations/...') give their sequence folder. The caller checks
    that the file exists, so the error names its own dataset and fix.
    """
    names: list[str] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        name = Path(line.split()[0]).parent.name if "/" in line else line
        if name not in names:
            names.append(name)
    return names
