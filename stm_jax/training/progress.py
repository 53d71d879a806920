"""The training loss and speed over a window of recent steps: what the progress bar shows at every
step and what each log line records, so neither reports one step's noisy loss or a stale value.

The window holds the last `size` steps (`train.log_every`): at a log step that is exactly the steps
since the previous log. A step's duration runs from the end of the step before it (or from
`restart_clock`, called after an evaluation, so evaluation time is not counted as training). The
first step of a run also compiles; its duration is the speed shown only until a second step has
been timed, so compilation does not drag the speed down for a whole window.
"""

from __future__ import annotations

import time
from collections import deque


class StepWindow:
    """Losses and durations of the last `size` steps.

    Args:
      size: steps in the window (>= 1).
      clips_per_step: the global batch, to report clips/s.
      clock: seconds, monotonic (a parameter so tests can drive it).
    """

    def __init__(self, size: int, clips_per_step: int, clock=time.perf_counter) -> None:
        self.clips_per_step = int(clips_per_step)
        self._clock = clock
        self._losses: deque[float] = deque(maxlen=max(1, int(size)))
        self._durations: deque[float] = deque(maxlen=max(1, int(size)))
        self._compiling: float | None = None  # the first step's duration, until another is timed
        self._mark = clock()

    def add(self, loss: float, compiled: bool = False) -> None:
        """Records a finished step and its loss; `compiled`: the step also compiled (the first)."""
        now = self._clock()
        self._losses.append(float(loss))
        if compiled:
            self._compiling = now - self._mark
        else:
            self._durations.append(now - self._mark)
        self._mark = now

    def restart_clock(self) -> None:
        """The next step's duration starts now (after work that is not training)."""
        self._mark = self._clock()

    @property
    def loss(self) -> float:
        """Mean loss over the window (nan before the first step)."""
        return sum(self._losses) / len(self._losses) if self._losses else float("nan")

    @property
    def steps_per_s(self) -> float:
        durations = self._durations or ([self._compiling] if self._compiling else [])
        total = sum(durations)
        return len(durations) / total if total > 0 else 0.0

    @property
    def clips_per_s(self) -> float:
        return self.steps_per_s * self.clips_per_step

    def postfix(self) -> dict[str, str]:
        """The progress bar's loss and speed fields."""
        return {"loss": f"{self.loss:.4f}", "clips_s": f"{self.clips_per_s:.1f}"}
