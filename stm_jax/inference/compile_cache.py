"""JAX's persistent compilation cache, on by default for inference jobs.

A second run with the same shapes (frame size, videos per step, object slots) loads the compiled
steps from disk instead of compiling them again. The cache lives in
`$XDG_CACHE_HOME/stm_jax/jax_cache` (default `~/.cache/stm_jax/jax_cache`; the environment variable
`STM_JAX_COMPILE_CACHE` overrides it, e.g. for tests); config switches:
`inference.compile_cache=False` turns it off, `inference.compile_cache_dir=DIR` moves it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jax


def default_cache_dir() -> Path:
    if os.environ.get("STM_JAX_COMPILE_CACHE"):
        return Path(os.environ["STM_JAX_COMPILE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stm_jax" / "jax_cache"


_WARNED: set[str] = set()


def enable_compile_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Points JAX's persistent cache at `directory` (default: `default_cache_dir()`) and caches
    every compilation (not only those over JAX's default 1 s), so small CPU runs benefit too.

    Returns the directory, or None when it cannot be made or written (a read-only home, a path
    through a file): the cache only saves time, so the run goes on without it after one warning."""
    path = Path(directory) if directory else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError("not writable")
    except OSError as error:
        if str(path) not in _WARNED:
            _WARNED.add(str(path))
            print(
                f"warning: the compilation cache cannot use {path} ({error.strerror or error}); "
                "running without it. Point it elsewhere with "
                "--config.inference.compile_cache_dir=DIR or turn it off with "
                "--config.inference.compile_cache=False.",
                file=sys.stderr,
                flush=True,
            )
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    try:  # the cache is set up at the first compilation; re-read the settings if that happened
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()
    except (ImportError, AttributeError):
        pass
    return path


def setup_from_config(config) -> Path | None:
    """Applies `config.inference.compile_cache` / `compile_cache_dir` (absent block = on)."""
    inference = config.get("inference") or {}
    if not inference.get("compile_cache", True):
        return None
    return enable_compile_cache(inference.get("compile_cache_dir") or None)
