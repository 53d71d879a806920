"""Shared pytest setup: deterministic CPU JAX, absl flags parsed (grain workers need it)."""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The jobs' persistent compilation cache: one per test session, not the user's.
os.environ.setdefault("STM_JAX_COMPILE_CACHE", tempfile.mkdtemp(prefix="stm_jax_cache_"))

from absl import flags  # noqa: E402

if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()
