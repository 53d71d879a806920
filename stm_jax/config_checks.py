"""Range checks of the config values every job reads, before any work starts.

`check_config(config)` raises `ConfigError` naming the field, the bad value and the allowed range.
Only fields present in the config are checked, so every job's config passes through the same check.
"""

from __future__ import annotations

from stm_jax.cli_errors import ConfigError
from stm_jax.memory.config import EVICTION_POLICIES
from stm_jax.memory.similarity import SIMILARITIES
from stm_jax.model.config import DTYPES
from stm_jax.model.resnet import BACKBONES

LAYOUTS = ("davis", "folder")

# (section, field): minimum value (inclusive).
MINIMUMS = {
    ("memory", "mem_every"): 1,
    ("memory", "capacity"): 2,
    ("memory", "chunk_frames"): 1,
    ("memory", "top_k"): 0,
    ("model", "max_objects"): 1,
    ("model", "key_dim"): 1,
    ("model", "value_dim"): 1,
    ("model", "decoder_dim"): 1,
    ("", "num_devices"): 0,
    ("inference", "videos_per_step"): 0,
    ("inference", "prefetch"): 0,
    ("inference", "decode_threads"): 1,
}
# The allowed names come from the libraries' registries, so a new similarity is accepted here too.
CHOICES = {
    ("model", "backbone"): tuple(BACKBONES),
    ("model", "dtype"): tuple(DTYPES),
    ("memory", "similarity"): tuple(SIMILARITIES),
    ("memory", "eviction"): EVICTION_POLICIES,
}


def _get(config, section: str, field: str):
    holder = config.get(section) if section else config
    if holder is None or not hasattr(holder, "get") or field not in holder:
        return None
    return holder.get(field)


def check_config(config) -> None:
    """Raises ConfigError for the first out-of-range or unknown value (naming the flag to fix)."""
    problems = []
    for (section, field), minimum in MINIMUMS.items():
        value = _get(config, section, field)
        name = f"{section}.{field}" if section else field
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{name}={value!r} must be an integer >= {minimum}")
        elif value < minimum:
            problems.append(f"{name}={value} must be >= {minimum}")
    for (section, field), allowed in CHOICES.items():
        value = _get(config, section, field)
        if value is not None and value not in allowed:
            problems.append(f"{section}.{field}={value!r} must be one of {', '.join(allowed)}")
    if config.get("job") in ("segment", "evaluate", "demo") and "data" in config:
        layout = _get(config, "data", "layout")
        if layout is not None and layout not in LAYOUTS:
            problems.append(f"data.layout={layout!r} must be one of {', '.join(LAYOUTS)}")
    if problems:
        fixes = "; ".join(problems)
        raise ConfigError(f"bad config value: {fixes}. Fix it with --config.<field>=<value>.")
