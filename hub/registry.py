"""The plugin registry: drivers and filters found through entry points.

Groups ``hub4com.drivers`` and ``hub4com.filters``; the built-ins register the
same way, so a third-party package can add or replace one. A plugin is loaded
only when it is needed (named on the command line, or asked for by --help),
so an unrelated broken package cannot stop start-up. A loaded plugin's shape
is checked at once; a problem names the plugin and its distribution.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .filter import Filter
from .options import option_names
from .port import Driver

__all__ = ["DRIVERS", "FILTERS", "PluginError", "Registry"]

log = logging.getLogger(__name__)

DRIVERS = "hub4com.drivers"
FILTERS = "hub4com.filters"
_BASE = {DRIVERS: Driver, FILTERS: Filter}
_KIND = {DRIVERS: "driver", FILTERS: "filter"}


class PluginError(UsageError):
    """A plugin could not be loaded or has the wrong shape."""


@dataclass
class _Entry:
    name: str
    group: str
    ep: Any
    dist: str
    loaded: type | None = None
    error: str | None = None
    extra: list[str] = field(default_factory=list)


class Registry:
    """Look up plugins by kind and name; load lazily."""

    def __init__(self, entry_points: Any = None):
        eps = entry_points if entry_points is not None else importlib.metadata.entry_points()
        self._entries: dict[str, dict[str, _Entry]] = {DRIVERS: {}, FILTERS: {}}
        for group in (DRIVERS, FILTERS):
            for ep in eps.select(group=group):
                dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
                name = ep.name.lower()
                if name in self._entries[group]:
                    old = self._entries[group][name]
                    log.warning("%s %s from %s replaces the one from %s", _KIND[group], name, dist, old.dist)
                self._entries[group][name] = _Entry(name, group, ep, dist)

    def names(self, group: str) -> list[str]:
        return sorted(self._entries[group])

    def load(self, group: str, name: str) -> Any:
        """Return the plugin class `name` of `group`. Raises PluginError."""
        entry = self._entries[group].get(name.lower())
        if entry is None:
            raise PluginError(name, f"No {_KIND[group]} module named '{name}'")
        if entry.loaded is None:
            if entry.error is None:
                try:
                    entry.loaded = self._check(entry, entry.ep.load())
                except PluginError as exc:
                    entry.error = exc.text
                except Exception as exc:  # a broken third-party plugin: name it, go on
                    entry.error = f"{_KIND[group]} {name} from {entry.dist} failed to load: {exc!r}"
            if entry.error is not None:
                raise PluginError(name, entry.error)
        assert entry.loaded is not None
        return entry.loaded

    def try_load(self, group: str, name: str) -> Any:
        """Load a plugin, or log why not and return None (for --help and lazy lookups)."""
        try:
            return self.load(group, name)
        except PluginError as exc:
            log.warning("%s", exc.text)
            return None

    def load_all(self, group: str) -> dict[str, Any]:
        """Every loadable plugin of `group`; the broken ones are logged and skipped."""
        out = {}
        for name in self.names(group):
            cls = self.try_load(group, name)
            if cls is not None:
                out[name] = cls
        return out

    def _check(self, entry: _Entry, cls: Any) -> Any:
        what = f"{_KIND[entry.group]} {entry.name} from {entry.dist}"
        base: Any = _BASE[entry.group]
        if not (isinstance(cls, type) and issubclass(cls, base)):  # also narrows for mypy
            raise PluginError(entry.name, f"{what} is not a {base.__name__} subclass")
        usage: str = getattr(cls, "USAGE", "")
        if "Usage:" not in usage:
            raise PluginError(entry.name, f"{what} has no usage text")
        if "Options:" in usage and not option_names(usage):
            raise PluginError(entry.name, f"{what} has an Options section without options")
        return cls
