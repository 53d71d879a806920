"""Registries by name: how every research axis (model family, backbone, memory similarity, memory
policy, training loss, dataset layout) is extended without editing the code that uses it.

    SIMILARITIES = Registry("memory similarity", "memory.similarity")

    @SIMILARITIES.register("dot")
    def dot(memory_keys, query_keys): ...

    SIMILARITIES.get("dot")       # the entry; an unknown name is a one-line ConfigError:
    # memory.similarity='dto' is not a registered memory similarity (did you mean 'dot'?);
    # choose one of cosine, dot, l2 (or register yours: --config.plugins=<module or file>)

A registry's built-in entries are imported the first time it is read (`builtins`: module names, or a
package whose every module is imported), so a new built-in entry is one file with one decorator.
Entries from the user's own code arrive through `config.plugins` (`stm_jax.plugins`), which imports
modules before a job runs.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterator, Mapping
from typing import Any

from stm_jax.cli_errors import ConfigError


class UnknownNameError(ConfigError, KeyError):
    """A config value that names no registered entry (the message lists the known ones)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Mapping):
    """Named entries of one kind.

    Args:
      kind: what an entry is, for messages ("memory policy").
      field: the config field that selects an entry ("memory.eviction").
      builtins: modules holding built-in entries, imported on first read; a name ending in ".*"
        imports every module of that package.
    """

    def __init__(self, kind: str, field: str, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.field = field
        self._builtins = builtins
        self._loaded = not builtins
        self._entries: dict[str, Any] = {}
        self._origins: dict[str, str] = {}

    def register(self, name: str):
        """Decorator: makes `entry` selectable as `<field>=name`. Registering the same name again
        from the same module (a plugin imported twice) replaces it; from another module it is an
        error, so two plugins cannot silently shadow each other."""

        def add(entry):
            origin = getattr(entry, "__module__", "") or ""
            previous = self._origins.get(name)
            if previous is not None and previous != origin:
                raise ValueError(
                    f"{self.kind} {name!r} is registered twice: by {previous} and by {origin}; "
                    "rename one of them."
                )
            self._entries[name] = entry
            self._origins[name] = origin
            return entry

        return add

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: the modules read the registry while registering
        for name in self._builtins:
            if name.endswith(".*"):
                package = importlib.import_module(name[:-2])
                for info in pkgutil.iter_modules(package.__path__):
                    importlib.import_module(f"{package.__name__}.{info.name}")
            else:
                importlib.import_module(name)

    def get(self, name: str, field: str | None = None):
        """The entry registered as `name`; UnknownNameError (one line, with "did you mean") if none.
        `field`: the config field to name in that message, when not the registry's own."""
        self._load_builtins()
        if name in self._entries:
            return self._entries[name]
        raise UnknownNameError(self.unknown_message(name, field))

    def unknown_message(self, name, field: str | None = None) -> str:
        self._load_builtins()
        known = sorted(self._entries)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"{field or self.field}={name!r} is not a registered {self.kind}{hint}; choose one of "
            f"{', '.join(known)} (or register yours: --config.plugins=<module or file>)"
        )

    def origin(self, name: str) -> str:
        """The module that registered `name`."""
        self._load_builtins()
        return self._origins[name]

    def __getitem__(self, name: str):
        return self.get(name)

    def __contains__(self, name) -> bool:
        self._load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load_builtins()
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        self._load_builtins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self)})"
