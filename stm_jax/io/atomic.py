"""Atomic file writes whose result honours the umask (0644 under umask 022), like a plain open().

`tempfile.mkstemp` creates 0600 files, so a temp file renamed into place stays unreadable to anyone
else (a web server, a container running as another user). `atomic_path` writes to a temp file in the
destination's folder, gives it the mode a normal `open(path, 'w')` would have, then renames it.
`make_readable_dir` does the same for folders made with `tempfile.mkdtemp` (0700).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask_from_proc() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return None


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    umask = _umask_from_proc()
    if umask is None:
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def file_mode() -> int:
    """The mode a new regular file gets from open(): 0666 minus the umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """The mode a new folder gets from mkdir(): 0777 minus the umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yields a temp path beside `path`; on success it gets the umask's mode and replaces `path`.

    On an exception the temp file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically with the umask's mode."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def make_readable_dir(path: str | os.PathLike) -> None:
    """Gives a folder (e.g. from tempfile.mkdtemp) the mode mkdir() would have given it."""
    os.chmod(path, dir_mode())
