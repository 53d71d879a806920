"""Range and name checks of the config values every job reads, before any work starts.

`check_config(config)` raises `ConfigError` naming the field, the bad value and the allowed range.
Only fields present in the config are checked, so every job's config passes through the same check.
Names are checked against the registries (`stm_jax.registry`), so an entry a plugin registers is
accepted and a typo is one line with "did you mean".
"""

from __future__ import annotations

from stm_jax.cli_errors import ConfigError
from stm_jax.data.registry import DATASETS
from stm_jax.memory.policy import POLICIES
from stm_jax.memory.similarity import SIMILARITIES
from stm_jax.model.backbone import BACKBONES
from stm_jax.model.config import DTYPES
from stm_jax.model.family import FAMILIES
from stm_jax.registry import Registry, UnknownNameError

# (section, field): minimum value (inclusive).
MINIMUMS = {
    ("memory", "mem_every"): 1,
    ("memory", "capacity"): 2,
    ("memory", "chunk_frames"): 1,
    ("memory", "top_k"): 0,
    ("model", "max_objects"): 1,
    ("model", "key_dim"): 0,
    ("model", "value_dim"): 0,
    ("model", "decoder_dim"): 0,
    ("", "num_devices"): 0,
    ("inference", "videos_per_step"): 0,
    ("inference", "prefetch"): 0,
    ("inference", "decode_threads"): 1,
}
CHOICES = {("model", "dtype"): tuple(DTYPES)}
# Jobs whose model.dtype may also be 'auto' (resolved by stm_jax.inference.dtype_preset when the
# model is loaded); training runs the dtype it is given.
AUTO_DTYPE_JOBS = ("segment", "evaluate", "demo", "youtubevos")
# (section, field) -> the registry its value names; '' (the family's default) is allowed where the
# field has one.
REGISTRY_FIELDS: dict[tuple[str, str], Registry] = {
    ("model", "family"): FAMILIES,
    ("model", "backbone"): BACKBONES,
    ("model", "value_backbone"): BACKBONES,
    ("memory", "similarity"): SIMILARITIES,
    ("memory", "eviction"): POLICIES,
}
SEGMENTING_JOBS = ("segment", "evaluate", "demo")


def _get(config, section: str, field: str):
    holder = config.get(section) if section else config
    if holder is None or not hasattr(holder, "get") or field not in holder:
        return None
    return holder.get(field)


def check_config(config, registries: dict | None = None) -> None:
    """Raises ConfigError for every out-of-range or unknown value (naming the flag to fix).

    Args:
      config: the job's config.
      registries: more (section, field) -> Registry checks (the jobs add `train.loss`).
    """
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
        if (section, field) == ("model", "dtype") and config.get("job") in AUTO_DTYPE_JOBS:
            allowed = ("auto", *allowed)
        if value is not None and value not in allowed:
            problems.append(f"{section}.{field}={value!r} must be one of {', '.join(allowed)}")
    checks = {**REGISTRY_FIELDS, **(registries or {})}
    if config.get("job") in SEGMENTING_JOBS and "data" in config:
        checks[("data", "layout")] = DATASETS
    for (section, field), registry in checks.items():
        value = _get(config, section, field)
        if value in (None, ""):
            continue
        try:
            registry.get(value, f"{section}.{field}")
        except UnknownNameError as error:
            problems.append(str(error))
    corrections = config.get("data", {}).get("correct_frames", "") if "data" in config else ""
    if corrections and config.get("job") not in ("segment", "evaluate"):
        problems.append(
            f"data.correct_frames={corrections!r} is read by the segment and evaluate jobs only"
        )
    if problems:
        fixes = "; ".join(problems)
        raise ConfigError(f"bad config value: {fixes}. Fix it with --config.<field>=<value>.")
