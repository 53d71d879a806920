"""The command line around `main.py`: flag parsing with one-line errors, quiet library logs.

* An unknown config field, a value of the wrong type, a missing config file, a config file without
  `get_config`, a `get_config` that raises or an unknown variant (`file.py:VARIANT`) is reported in
  one line naming the file or field, with exit code 2 (absl/ml_collections would print a traceback
  or exit 1).
* `--config.plugins=...` modules are imported before the config file is read.
* Library INFO logs (orbax, absl, jax's "Unable to initialize backend 'tpu'") are hidden unless the
  user passes absl's `--verbosity=0` (INFO) or higher.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from pathlib import Path

from absl import app, flags
from absl import logging as absl_logging

from stm_jax.cli_errors import (
    DEBUG_HINT,
    EXIT_USER_ERROR,
    ConfigError,
    UserError,
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


def config_file_argument(argv: list[str]) -> tuple[str, str] | None:
    """(path, variant) of `--config PATH[:VARIANT]` in argv; None without the flag."""
    for i, arg in enumerate(argv):
        if arg in ("--config", "-config") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(("--config=", "-config=")):
            value = arg.partition("=")[2]
        else:
            continue
        path, _, variant = value.partition(":")
        return path, variant
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions it was raised from or while handling, outermost first."""
    chain = [error]
    while (
        cause := chain[-1].__cause__ or chain[-1].__context__
    ) is not None and cause not in chain:
        chain.append(cause)
    return chain


def config_file_message(error: BaseException, argv: list[str]) -> str | None:
    """One line for an error raised while loading the --config file; None for other errors.

    ml_collections wraps what `get_config` raises (absl then wraps it again, with the traceback in
    the text), so the original error is looked for in the chain of causes.
    """
    argument = config_file_argument(argv)
    if argument is None:
        return None
    path, variant = argument
    chain = _chain(error)
    # The innermost: ml_collections re-raises the same type with the traceback as its text.
    user_error = next((e for e in reversed(chain) if isinstance(e, UserError)), None)
    if user_error is not None:  # the config file's own one-line message (e.g. an unknown variant)
        return str(user_error).strip()
    if "--config must have a value other than None" in str(error):
        return f"config file {path}: get_config() returned None; return the job's ConfigDict."
    original = chain[-1]
    if isinstance(original, AttributeError) and "get_config" in str(original):
        return (
            f"config file {path} has no get_config(); define get_config() returning the job's "
            "ConfigDict (docs/configs.md)."
        )
    if isinstance(original, TypeError) and "get_config() takes 0 positional" in str(original):
        return f"config file {path} has no variants; pass --config {path} without ':{variant}'."
    frames = traceback.extract_tb(original.__traceback__)
    if any(Path(frame.filename).resolve() == Path(path).resolve() for frame in frames):
        called = f"get_config({variant!r})" if variant else "get_config()"
        reason = " ".join(str(original).split()) or "no message"
        return (
            f"config file {path}: {called} raised {type(original).__name__}: {reason}; fix the "
            "config file."
        )
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with every parsing problem reported in one line (exit code 2)."""
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # flags.Error, or AttributeError/KeyError from ml_collections
        if debug_enabled():
            raise
        message = config_file_message(error, argv)
        if message is None:
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
