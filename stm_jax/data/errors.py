"""Bad-data handling: one error type that names the file and the fix, and a skip policy.

With `on_bad_sample='error'` (the default) a bad file stops the run with a `DataError`. With
`on_bad_sample='skip'` the problem is logged, counted, and another sample is drawn; the counts are
reported in a summary at the end of training. A sample is never silently wrong.
"""

from __future__ import annotations

import collections
import logging

from stm_jax.cli_errors import UserError

ON_BAD_SAMPLE_CHOICES = ("error", "skip")

log = logging.getLogger("stm_jax.data")


class DataError(UserError, ValueError):
    """A dataset file or entry that cannot be used; the message names the file and the fix."""


def check_on_bad_sample(value: str) -> str:
    """Validates the `data.on_bad_sample` option.

    Args:
      value: 'error' or 'skip'.

    Returns:
      The value, unchanged.
    """
    if value not in ON_BAD_SAMPLE_CHOICES:
        raise ValueError(
            f"data.on_bad_sample must be one of {ON_BAD_SAMPLE_CHOICES}, got {value!r}"
        )
    return value


class SkipLog:
    """Counts skipped entries by reason; picklable, so every worker and source can own one."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}

    def add(self, where: str, error: Exception) -> None:
        """Records (and logs) one skipped entry.

        Args:
          where: the source or sequence that was skipped.
          error: the error that caused the skip; its type name is the reason.
        """
        reason = type(error).__name__
        self.counts[reason] += 1
        self.examples.setdefault(reason, f"{where}: {error}")
        log.warning("Skipping bad sample %s: %s", where, error)

    def total(self) -> int:
        """Returns the number of skipped entries."""
        return sum(self.counts.values())

    def summary(self) -> str:
        """Returns a one-paragraph human-readable summary of the skips."""
        if not self.counts:
            return "No bad samples skipped."
        lines = [f"Skipped {self.total()} bad sample(s):"]
        for reason, count in sorted(self.counts.items()):
            lines.append(f"  {reason}: {count} (e.g. {self.examples[reason]})")
        return "\n".join(lines)


def handle_bad(error: DataError, where: str, on_bad_sample: str, skips: SkipLog) -> None:
    """Raises `error` in 'error' mode, records it in 'skip' mode.

    Args:
      error: the problem found.
      where: a short name of the entry (source/sequence) for the log.
      on_bad_sample: 'error' or 'skip'.
      skips: the log that counts skipped entries.
    """
    if on_bad_sample == "error":
        raise error
    skips.add(where, error)
