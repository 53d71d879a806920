"""Shared pytest setup: deterministic CPU JAX, one compilation cache per test run, absl flags parsed.

The compilation cache: every XLA program the run compiles (in the tests' processes, the jobs they
run in-process and the jobs' subprocesses) goes to one persistent cache, so a program that several
test files or both xdist workers build is compiled once. It is a fresh, empty directory for each
run (made by the first process to load this file; the xdist workers and subprocesses inherit it
through the environment), never the user's cache, and it is removed when the run ends. Set
`STM_TEST_JAX_CACHE=DIR` to use DIR instead (kept, e.g. to time a warm run)."""

import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

# Tests compile with LLVM's lowest optimisation level: the same XLA programs (every HLO pass still
# runs, so the same values), compiled ~40 % faster and run somewhat slower; most of a test is
# compiling. Subprocesses that set their own XLA_FLAGS append STM_TEST_XLA_FLAGS (identical rounding
# on both sides of a comparison). `STM_TEST_FULL_OPT=1` tests the machine code a user runs.
TEST_XLA_FLAGS = "" if os.environ.get("STM_TEST_FULL_OPT") else "--xla_backend_optimization_level=0"
os.environ["STM_TEST_XLA_FLAGS"] = TEST_XLA_FLAGS
if TEST_XLA_FLAGS not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAGS}".strip()

_MADE_CACHE = None
if not os.environ.get("STM_TEST_JAX_CACHE"):
    _MADE_CACHE = tempfile.mkdtemp(prefix="stm_jax_test_cache_")
    os.environ["STM_TEST_JAX_CACHE"] = _MADE_CACHE
TEST_JAX_CACHE = os.environ["STM_TEST_JAX_CACHE"]
# The jobs' own cache (inference.compile_cache, on by default) is the same directory.
os.environ.setdefault("STM_JAX_COMPILE_CACHE", TEST_JAX_CACHE)

import jax  # noqa: E402
import pytest  # noqa: E402
from absl import flags  # noqa: E402

from stm_jax.inference.compile_cache import enable_compile_cache  # noqa: E402

if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()

# Every compilation is cached (not only those over JAX's default 1 s): most are small.
enable_compile_cache(TEST_JAX_CACHE)


@pytest.fixture(autouse=True)
def _run_wide_compilation_cache():
    """Points JAX back at the run's cache after a test that moved it (a job's
    `inference.compile_cache_dir`, a test of the cache itself), so later tests keep sharing it."""
    yield
    if jax.config.jax_compilation_cache_dir != TEST_JAX_CACHE:
        enable_compile_cache(TEST_JAX_CACHE)


def pytest_unconfigure(config):
    # Only the process that made the directory removes it (xdist's controller, or the one
    # process of `-n 0`), after every worker has finished.
    if _MADE_CACHE and not hasattr(config, "workerinput"):
        shutil.rmtree(_MADE_CACHE, ignore_errors=True)
