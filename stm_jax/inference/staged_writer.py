"""Per-video staged outputs written on the background writer thread, for interleaved videos.

With many videos per step, frames of several videos arrive interleaved; each video still gets its
own staging folder (`sequence_output.staged_folder`), which replaces its final folder, with its
fingerprint, only after its last frame was written. Every call below is meant to run on one
`BackgroundWriter` thread, in submission order; `abort` removes the staging folders of videos that
did not finish (a failed run leaves no partial output).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from stm_jax.inference.sequence_output import staged_folder
from stm_jax.io.images import write_palette_png


class StagedVideos:
    def __init__(self):
        self._open: dict[str, tuple[contextlib.ExitStack, Path]] = {}

    def start(self, name: str, folder: Path, fingerprint: dict) -> None:
        stack = contextlib.ExitStack()
        self._open[name] = (stack, stack.enter_context(staged_folder(folder, fingerprint)))

    def write(self, name: str, file_name: str, labels: np.ndarray) -> None:
        # The folder is staged (moved into place when complete), so each file needs no rename.
        write_palette_png(self._open[name][1] / file_name, labels, atomic=False)

    def finish(self, name: str) -> None:
        stack, _ = self._open.pop(name)
        stack.close()

    def abort(self, error: BaseException) -> None:
        while self._open:
            _, (stack, _) = self._open.popitem()
            stack.__exit__(type(error), error, error.__traceback__)
