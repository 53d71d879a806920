"""Reading split / sequence-list files (DAVIS ImageSets, VOC/SBD id lists): one parser for all.

A name listed twice would be segmented and scored twice (weighing that sequence double in J&F), and
an empty list would score nothing (a NaN table): both are refused, naming the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from stm_jax.cli_errors import UserError

_SHOWN = 5


class SplitFileError(UserError, ValueError):
    """A split file that lists a name twice, or no name at all."""


def duplicated(names: list[str]) -> list[str]:
    """The names that occur more than once, in order of first occurrence."""
    counts = Counter(names)
    return [name for name in dict.fromkeys(names) if counts[name] > 1]


def shown(names: list[str]) -> str:
    """Up to five names for a message, then how many more."""
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def read_split_file(path: Path) -> list[str]:
    """Names listed in a split file, in file order, ignoring blank lines.

    Lines are names (DAVIS 2017, VOC ids); lines holding paths (the DAVIS-2016 release's
    '/JPEGImages/480p/bear/00000.jpg /Annotations/...', one line per frame) give their sequence
    folder, so those repeat by design and are merged. The caller checks that the file exists, so the
    error names its own dataset and fix.

    Raises:
      SplitFileError: a name line occurs twice, or the file lists no name.
    """
    listed: list[str] = []
    names: list[str] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        if "/" in line:
            name = Path(line.split()[0]).parent.name
        else:
            name = line
            listed.append(name)
        if name not in names:
            names.append(name)
    twice = duplicated(listed)
    if twice:
        raise SplitFileError(
            f"{path}: {shown(twice)} listed more than once (it would be counted twice); "
            "list each name once."
        )
    if not names:
        raise SplitFileError(f"{path}: no sequences listed; write one name per line.")
    return names
