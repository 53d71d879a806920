"""The command line: `stm-jax --config NAME [--workdir DIR] [--config.key=value ...]`.

`python main.py ...` in a checkout runs the same function. Flags only: the config names the job
(`config.job`, see `stm_jax/jobs/__init__.py`), which gets the config and the workdir.

`--config` takes a config file's path, or the name of a bundled config: `segment`, `segment.py` or
`configs/segment.py` (as the docs write it) resolve to the package's own copy when no such file
exists from the current folder. In a checkout the bundled configs are the repository's `configs/`;
an installed wheel carries them as `stm_jax.configs`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from stm_jax.data.workers import die_with_parent_if_spawned

# A spawned data worker re-imports the main module (main.py or the console script, both of which
# import this one): tie it to the training process's life now, before grain's slow import.
die_with_parent_if_spawned()

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "A config file's path, or a bundled config's name (e.g. demo, segment)."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (created if missing).")
flags.mark_flags_as_required(["config"])


def bundled_configs_dir() -> Path | None:
    """The folder of the bundled config files: `stm_jax.configs` when installed, else the
    checkout's `configs/` beside the package; None when neither exists."""
    spec = importlib.util.find_spec("stm_jax.configs")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    checkout = Path(__file__).resolve().parents[1] / "configs"
    return checkout if (checkout / "__init__.py").is_file() else None


def bundled_config_names() -> list[str]:
    """Names `--config` accepts besides paths (the bundled config files without `.py`)."""
    folder = bundled_configs_dir()
    if folder is None:
        return []
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


def resolve_config_value(value: str) -> str:
    """`value` of --config with a bundled config's name replaced by its path.

    An existing file always wins. Otherwise `NAME`, `NAME.py` and `configs/NAME.py` name the
    bundled config NAME; anything else is left for the loader to report. A `:arg` suffix
    (ml_collections' config argument, e.g. `synthetic_cpu:tiny`) is kept.
    """
    path, colon, arg = value.partition(":")
    if Path(path).is_file():
        return value
    stem = path.removeprefix("configs/").removesuffix(".py")
    if "/" in stem or stem not in bundled_config_names():
        return value
    return str(bundled_configs_dir() / f"{stem}.py") + colon + arg


def resolve_config_argument(argv: list[str]) -> list[str]:
    """argv with the value of `--config VALUE` / `--config=VALUE` resolved (see above)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg in ("--config", "-config") and i + 1 < len(out):
            out[i + 1] = resolve_config_value(out[i + 1])
        elif arg.startswith(("--config=", "-config=")):
            flag, _, value = arg.partition("=")
            out[i] = f"{flag}={resolve_config_value(value)}"
    return out


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from stm_jax.cli import loaded_config
    from stm_jax.jobs import run_job

    run_job(loaded_config(_CONFIG.value), _WORKDIR.value)


def run() -> None:
    """The `stm-jax` console script (and main.py): one-line user errors, quiet library logs."""
    from stm_jax.cli import run_cli

    sys.argv = resolve_config_argument(sys.argv)
    run_cli(main)
