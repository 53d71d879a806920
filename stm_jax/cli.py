"""The command line around `main.py`: flag parsing with one-line errors, quiet library logs.

* An unknown config field, a value of the wrong type or a missing config file is reported in one line
  with exit code 2 (absl/ml_collections would print a traceback or exit 1).
* Library INFO logs (orbax, absl, jax's "Unable to initialize backend 'tpu'") are hidden unless the
  user passes absl's `--verbosity=0` (INFO) or higher.
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags
from absl import logging as absl_logging

from stm_jax.cli_errors import (
    DEBUG_HINT,
    EXIT_USER_ERROR,
    debug_enabled,
    exit_on_user_error,
    pop_debug_switch,
)

QUIET_LOGGERS = ("jax", "jax._src.xla_bridge", "orbax", "absl")
# Orbax warns on every read-only CheckpointManager (how inference opens checkpoints): not news.
_ORBAX_NOISE = ("read_only=True", "Given directory is read only")


class _DropOrbaxReadOnlyNotes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in _ORBAX_NOISE)


def quiet_library_logs() -> None:
    """WARNING and above only, unless --verbosity/-v was given on the command line."""
    if flags.FLAGS["verbosity"].present:
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    absl_logging.get_absl_handler().addFilter(_DropOrbaxReadOnlyNotes())


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every parsing problem reported in one line (exit code 2)."""
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # flags.Error, or AttributeError/KeyError from ml_collections
        if debug_enabled():
            raise
        message = str(error).strip().strip("\"'")
        if isinstance(error, (AttributeError, KeyError)):
            message = (
                f"unknown config field {message}: check the spelling against the config file "
                "(docs/configs.md lists every field)."
            )
        print(f"error: {message}\n{DEBUG_HINT}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)


def run_cli(main) -> None:
    """Runs main(argv) like absl's app.run, with the behaviour described in the module docstring."""
    sys.argv = pop_debug_switch(sys.argv)

    def guarded(argv):
        quiet_library_logs()
        exit_on_user_error(main, argv)

    app.run(guarded, flags_parser=parse_flags)
