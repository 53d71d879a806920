"""Expected user errors: one base class, and how the command line reports them.

An error a user can fix (bad input, bad config value, missing file, unknown config field) derives from
`UserError`. `main.py` prints its message (one or two lines with the fix) and exits with code 2; the
traceback is shown only with `--config.debug=True` or the environment variable STM_JAX_DEBUG=1.
A job stopped by SIGTERM/SIGINT after saving its work (`Interrupted`) prints one line and exits with
code 75. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys

EXIT_USER_ERROR = 2
# EX_TEMPFAIL (sysexits.h): the run stopped on SIGTERM/SIGINT after saving; rerun it to resume.
EXIT_INTERRUPTED = 75
DEBUG_ENV = "STM_JAX_DEBUG"
DEBUG_HINT = "(for the traceback: --config.debug=True or STM_JAX_DEBUG=1)"


class UserError(Exception):
    """Mixin for errors whose message tells the user what to fix; no traceback is needed."""


class ConfigError(UserError, ValueError):
    """A config value that is out of range or not a known choice."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder named by the user that does not exist."""


class Interrupted(Exception):
    """A job stopped early on request (a signal) with its work saved: exit code 75, one line."""


def debug_enabled() -> bool:
    """Whether tracebacks are wanted (STM_JAX_DEBUG=1; main.py sets it for --config.debug=True)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def pop_debug_switch(argv: list[str]) -> list[str]:
    """Removes `--config.debug[=True|False]` from argv (no config defines it) and applies it."""
    kept = []
    for arg in argv:
        if arg == "--config.debug" or arg.startswith("--config.debug="):
            value = arg.partition("=")[2] or "True"
            os.environ[DEBUG_ENV] = "1" if value.lower() in ("1", "true", "yes") else "0"
            continue
        kept.append(arg)
    return kept


def report(error: BaseException) -> None:
    """Prints a user error's message (no traceback) to stderr."""
    message = str(error).strip() or type(error).__name__
    print(f"error: {message}\n{DEBUG_HINT}", file=sys.stderr, flush=True)


def exit_on_user_error(function, *args):
    """Calls function(*args); a UserError is reported in one message and exits with code 2."""
    try:
        return function(*args)
    except UserError as error:
        if debug_enabled():
            raise
        report(error)
        sys.exit(EXIT_USER_ERROR)
    except Interrupted as error:
        print(f"stopped: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)
