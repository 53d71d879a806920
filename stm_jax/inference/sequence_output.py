"""One video's predictions folder: skip, redo or refuse, and written all at once.

* `plan_outputs` compares every video's recorded fingerprint with the new one: a complete folder with
  the same fingerprint is skipped; a folder made by another job (another checkpoint, config, input or
  code version, or by an earlier version that recorded nothing) is refused with one `StaleOutputError`
  naming what differs, unless `overwrite` asks to redo it.
* `staged_folder` writes a video's PNGs into a hidden temporary folder beside the final one and moves
  it into place, with its fingerprint, only when every frame was written; a failure midway (a frame
  that cannot be decoded) leaves no output for that video.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from stm_jax.cli_errors import UserError
from stm_jax.inference.fingerprint import FINGERPRINT_FILE, describe_changes, read_fingerprint
from stm_jax.io.atomic import make_readable_dir, write_text_atomic

_SHOWN = 5


class StaleOutputError(UserError, ValueError):
    """Existing outputs were made by another job; the message says what differs and what to do."""


def is_complete(folder: Path, frame_names) -> bool:
    return all((folder / f"{name}.png").is_file() for name in frame_names)


def plan_outputs(
    out_root: Path, videos, fingerprints: dict[str, dict], overwrite: bool
) -> tuple[list, list]:
    """Splits videos into (to segment, to skip); raises StaleOutputError for outputs of another job."""
    todo, skip, stale = [], [], []
    for video in videos:
        folder = out_root / video.name
        new = fingerprints[video.name]
        old = read_fingerprint(folder)
        has_files = folder.is_dir() and any(folder.iterdir())
        if old == new and is_complete(folder, video.frame_names):
            skip.append(video)
        elif old is None and not has_files or old == new or overwrite:
            todo.append(video)
        else:
            changed = describe_changes(old, new) if old else ["no fingerprint recorded"]
            stale.append((video.name, changed))
    if stale:
        fields = sorted({f for _, changed in stale for f in changed})
        names = ", ".join(name for name, _ in stale[:_SHOWN])
        more = f" and {len(stale) - _SHOWN} more" if len(stale) > _SHOWN else ""
        raise StaleOutputError(
            f"{out_root}: predictions of {len(stale)} video(s) ({names}{more}) were made by another "
            f"job (differs: {', '.join(fields)}). Use a new --workdir, or --config.overwrite=True "
            "to redo them."
        )
    return todo, skip


@contextlib.contextmanager
def staged_folder(folder: Path, fingerprint: dict) -> Iterator[Path]:
    """Yields a temporary folder; on success it replaces `folder`, with `fingerprint` recorded."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for pattern in (f".{folder.name}.partial-*", f".{folder.name}.old-*"):  # from a killed run
        for leftover in folder.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))
    try:
        yield staging
        write_text_atomic(staging / FINGERPRINT_FILE, json.dumps(fingerprint, indent=1) + "\n")
        make_readable_dir(staging)
        old = None
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
            os.replace(folder, old / folder.name)
        os.replace(staging, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_job_folder(folder: Path, job: dict, overwrite: bool, name: str) -> bool:
    """For outputs kept per job (not per video): True when existing outputs must all be redone.

    Raises StaleOutputError when `folder` holds outputs of another job (or unrecorded ones) and
    `overwrite` is False. `name` is the job record's file name inside `folder`.
    """
    old = read_fingerprint(folder, name)
    has_files = folder.is_dir() and any(folder.iterdir())
    if old == job or not has_files:
        return False
    if overwrite:
        return True
    changed = describe_changes(old, job) if old else ["no fingerprint recorded"]
    raise StaleOutputError(
        f"{folder} holds outputs of another job (differs: {', '.join(changed)}). Use a new "
        "--workdir, or --config.overwrite=True to redo them."
    )
