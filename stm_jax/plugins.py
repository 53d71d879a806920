"""Plugins: the user's own modules, imported before a job runs, that register entries (a similarity,
a memory policy, a loss, a dataset layout, a backbone, a model family) without editing stm_jax.

    python main.py --config configs/segment.py --config.plugins=my_pkg.my_read,./my_policy.py ...
    Segmenter.from_checkpoint(path, plugins=["my_pkg.my_read"])

`config.plugins` is a comma-separated list of importable module names or `.py` file paths. The
command line imports them before the config file is read (so a plugin's loss options are config
fields), and every job imports them again (a no-op) before it starts. A training run records them in
its checkpoints' config; `check_checkpoint_entries` refuses to load a checkpoint whose registry entries
are missing from this process, naming the entries and the plugins to pass.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from stm_jax.cli_errors import ConfigError

LOADED: list[str] = []  # the plugins imported in this process, as given


def split_plugins(plugins) -> list[str]:
    """'a.b, c.py' or ['a.b', 'c.py'] -> ['a.b', 'c.py']."""
    if not plugins:
        return []
    if isinstance(plugins, str):
        plugins = plugins.split(",")
    return [str(p).strip() for p in plugins if str(p).strip()]


def _import_file(path: Path):
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"stm_jax_plugin_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugins(plugins: str | Iterable[str] | None) -> list[str]:
    """Imports each plugin (module name or .py file); returns them as given. An import that fails
    is a one-line ConfigError naming the plugin and the reason."""
    names = split_plugins(plugins)
    for plugin in names:
        looks_like_file = plugin.endswith(".py") or "/" in plugin or "\\" in plugin
        try:
            if looks_like_file:
                path = Path(plugin).expanduser().resolve()
                if not path.is_file():
                    raise ConfigError(f"plugin {plugin!r}: no such file ({path}).")
                _import_file(path)
            else:
                importlib.import_module(plugin)
        except ConfigError:
            raise
        except Exception as error:
            raise ConfigError(
                f"plugin {plugin!r} could not be imported: {type(error).__name__}: {error}. Pass "
                "an importable module name (on PYTHONPATH) or a .py file path."
            ) from error
        if plugin not in LOADED:
            LOADED.append(plugin)
    return names


def plugins_from_argv(argv: list[str]) -> str:
    """The value of --config.plugins on a command line ('' if absent)."""
    for index, arg in enumerate(argv):
        if arg.startswith("--config.plugins="):
            return arg.split("=", 1)[1]
        if arg == "--config.plugins" and index + 1 < len(argv):
            return argv[index + 1]
    return ""


def missing_entries(saved_config: Mapping, fields: Mapping) -> list[str]:
    """'section.field=value' for every entry the saved config names that no registry holds now.

    Args:
      saved_config: a checkpoint's training config (a dict).
      fields: (section, field) -> the Registry that field names an entry of.
    """
    missing = []
    for (section, field), registry in fields.items():
        value = (saved_config.get(section) or {}).get(field)
        if value and value not in registry:
            missing.append(f"{section}.{field}={value!r} ({registry.kind})")
    return missing


def check_checkpoint_entries(path, saved_config: Mapping, fields: Mapping) -> None:
    """A checkpoint whose registry entries are not registered in this process cannot be run as it
    was trained: one line naming them and the plugins it recorded."""
    missing = missing_entries(saved_config, fields)
    if not missing:
        return
    recorded = ",".join(split_plugins(saved_config.get("plugins")))
    fix = (
        f"pass --config.plugins={recorded} (or plugins=[...] to Segmenter.from_checkpoint)"
        if recorded
        else "import the module that registers them (--config.plugins=...)"
    )
    raise ConfigError(f"{path} was trained with {', '.join(missing)}, not registered here; {fix}.")
