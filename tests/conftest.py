"""Shared pytest setup: deterministic CPU JAX, absl flags parsed (grain workers need it)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import flags  # noqa: E402

if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
