"""The command line around `main.py`: flag parsing with one-line errors, quiet library logs.

* An unknown config field, a value of the wrong type or a missing config file is reported in one line
  with exit code 2 (absl/ml_collections would print a traceback or exit 1).
* `--config.plugins=...` modules are imported before the config file is read.
* Library INFO logs (orbax, absl, jax's "Unable to initialize backend 'tpu'") are hidden unless the
  user passes absl's `--verbosity=0` (INFO) or higher.
"""

from __future__ import annotations

import logging
import re
import sys

from absl import app, flags
from absl import logging as absl_logging

from stm_jax.cli_errors import (
    DEBUG_HINT,
    EXIT_USER_ERROR,
    ConfigError,
    debug_enabled,
    exit_on_user_error,
    pop_debug_switch,
)

# Orbax's notes on read-only checkpoint managers are dropped where they are opened
# (stm_jax/checkpoint_io.py), for the Python API too.
QUIET_LOGGERS = ("jax", "jax._src.xla_bridge", "orbax", "absl")


def quiet_library_logs() -> None:
    """WARNING and above only, unless --verbosity/-v was given on the command line."""
    if flags.FLAGS["verbosity"].present:
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def unknown_field_message(raw: str, argv: list[str]) -> str:
    """'unknown config field --config.memory.capacty (did you mean "capacity"?)' from
    ml_collections' KeyError text, naming the flag as the user typed it."""
    raw = raw.replace("\\'", "'").replace("\\n", " ")
    found = re.search(r"'([^']+)'", raw)
    name = found.group(1) if found else raw
    flag = next(
        (
            a.split("=")[0]
            for a in argv
            if re.match(rf"--config\.(\w+\.)*{re.escape(name)}(=|$)", a)
        ),
        name,
    )
    hint = re.search(r'Did you mean "([^"]+)"', raw)
    suggestion = f' (did you mean "{hint.group(1)}"?)' if hint else ""
    return (
        f"unknown config field {flag}{suggestion}; check the spelling against the config file "
        "(docs/configs.md lists every field)."
    )


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every parsing problem reported in one line (exit code 2)."""
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # flags.Error, or AttributeError/KeyError from ml_collections
        if debug_enabled():
            raise
        message = str(error).strip().strip("\"'")
        if isinstance(error, (AttributeError, KeyError)):
            message = unknown_field_message(message, argv)
        print(f"error: {message}\n{DEBUG_HINT}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)


def loaded_config(config):
    """The config of --config; a config file that cannot be loaded is a ConfigError (one line)."""
    try:
        config.get("job")
    except OSError as error:  # ml_collections reports a missing/broken file only when first used
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = next((line for line in reversed(lines) if "Errno" in line or "Error" in line), "")
        raise ConfigError(
            f"cannot load the config file given by --config: {detail or lines[0]}. Pass a file "
            "such as configs/segment.py (docs/configs.md lists them)."
        ) from error
    return config


def run_cli(main) -> None:
    """Runs main(argv) like absl's app.run, with the behaviour described in the module docstring."""
    sys.argv = pop_debug_switch(sys.argv)
    # Plugins first: their registry entries (and loss / policy options) exist when the config file
    # is read and its overrides are parsed.
    from stm_jax.plugins import load_plugins, plugins_from_argv

    exit_on_user_error(load_plugins, plugins_from_argv(sys.argv))

    def guarded(argv):
        quiet_library_logs()
        exit_on_user_error(main, argv)

    app.run(guarded, flags_parser=parse_flags)
