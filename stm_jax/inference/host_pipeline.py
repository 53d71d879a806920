"""Host-side work kept off the device's critical path: frames decoded ahead, PNGs written behind.

* `FramePrefetcher`: a video's frames, decoded `ahead` frames in advance on a shared thread pool
  (PIL/cv2 decoding releases the GIL), so the next step's frames are ready when it is dispatched.
* `BackgroundWriter`: one thread running writes (e.g. `write_palette_png`) in submission order, with a
  bounded queue so a slow disk applies back-pressure instead of growing memory. A video's "finish"
  action submitted after its frames runs after them. The first error is re-raised by `submit`/`close`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np


class FramePrefetcher:
    """Frame t of one video, with frames t+1..t+ahead already loading on `pool`.

    `frames` holds arrays or zero-argument callables returning [H, W, 3] uint8 arrays."""

    def __init__(self, frames: Sequence, pool: ThreadPoolExecutor | None, ahead: int = 4):
        self.frames = frames
        self.pool = pool
        self.ahead = ahead
        self.futures: dict[int, Future] = {}
        self.next_to_submit = 0

    def _load(self, index: int):
        frame = self.frames[index]
        return frame() if callable(frame) else frame

    def get(self, index: int) -> np.ndarray:
        if self.pool is None or not callable(self.frames[0]):
            return self._load(index)
        last = min(index + self.ahead, len(self.frames) - 1)
        self.next_to_submit = max(self.next_to_submit, index)
        while self.next_to_submit <= last:
            self.futures[self.next_to_submit] = self.pool.submit(self._load, self.next_to_submit)
            self.next_to_submit += 1
        future = self.futures.pop(index, None)
        return future.result() if future is not None else self._load(index)

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()
        self.futures.clear()


class BackgroundWriter:
    """Runs submitted callables on one thread, in order; `close()` waits for all of them."""

    def __init__(self, max_pending: int = 64):
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="stm-writer")
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            function, args = item
            if self._error is None:
                try:
                    function(*args)
                except BaseException as error:  # re-raised in the submitting thread
                    self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, function: Callable, *args) -> None:
        self._raise()
        self._queue.put((function, args))

    def close(self) -> None:
        """Waits for every submitted write; re-raises the first error."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
