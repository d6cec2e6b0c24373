"""What one hub4com process runs: one Hub per independent component, and reload.

A command line is one component. A config file has one per device and one per
group; each runs as its own `Hub` on the one event loop, so a reload (SIGHUP)
stops the components that were removed or changed, starts the new and changed
ones, and leaves every other component alone: its ports stay open, its clients
connected, its queues untouched.

`Runtime.hubs` is the current list of Hub objects (it follows reloads), for
status pages and reporters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .builder import build_hub
from .config import Component, ServiceConfig, load_config
from .errors import HubError, UsageError
from .hub import Hub
from .registry import Registry

__all__ = ["Runtime", "describe_routes"]

log = logging.getLogger("hub")


@dataclass
class _Running:
    name: str
    fingerprint: Any
    hub: Hub
    warnings: list[str]


def describe_routes(hub: Hub) -> list[str]:
    """The start-up summary of data and flow-control routes and filter chains."""
    lines = []
    names = [p.name for p in hub.ports]
    for title, table in (("data", hub.routes.data), ("flow control", hub.routes.fc)):
        if not any(table.values()):
            lines.append(f"No route for {title}")
            continue
        for src, dsts in table.items():
            if dsts:
                lines.append(f"Route {title} {names[src]} --> {' '.join(names[d] for d in dsts)}")
    for i, slots in enumerate(hub.slots):
        if slots:
            chain = " <-> ".join(
                f"{s.name}{'' if s.use_in and s.use_out else '.IN' if s.use_in else '.OUT'}" for s in slots
            )
            each = " (for each session)" if hub.ports[i].serves_sessions else ""
            lines.append(f"Filters {names[i]} <-> {chain} <-> hub{each}")
    return lines


class Runtime:
    """The running components; `reload()` applies a changed config file."""

    def __init__(self, loop: asyncio.AbstractEventLoop, registry: Registry, config_file: str | None = None):
        self.loop = loop
        self.registry = registry
        self.config_file = config_file
        self._running: list[_Running] = []
        #: The config's process-wide settings ([hub]), which only a restart changes.
        self._settings: Any = None
        #: Called after each reload with (started, stopped, kept) component names.
        self.on_reload: Callable[[list[str], list[str], list[str]], None] | None = None

    # ---- building ---------------------------------------------------------------

    @classmethod
    def for_hub(cls, hub: Hub, warnings: list[str], registry: Registry) -> Runtime:
        """A runtime of one component built from a command line (no reload)."""
        rt = cls(hub.loop, registry)
        rt._running = [_Running("command line", None, hub, warnings)]
        return rt

    @classmethod
    def for_config(cls, cfg: ServiceConfig, loop: asyncio.AbstractEventLoop, registry: Registry) -> Runtime:
        """A runtime for a compiled config; builds (checks) every component. Raises UsageError."""
        rt = cls(loop, registry, cfg.file)
        rt._running = [rt._build(c) for c in cfg.components]
        rt._settings = cfg.settings()
        return rt

    def _build(self, comp: Component) -> _Running:
        hub, warnings = build_hub(comp.model, self.loop, self.registry)
        hub.name = comp.name
        short = comp.name.split(".", 1)[1]
        for p in hub.ports:
            p.name = f"{short}/{p.name}"
        return _Running(comp.name, comp.fingerprint(), hub, warnings)

    @property
    def hubs(self) -> list[Hub]:
        """The Hub objects running now."""
        return [r.hub for r in self._running]

    @property
    def reloadable(self) -> bool:
        return self.config_file is not None

    # ---- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start every component. Raises what a port's start raises."""
        for r in self._running:
            self._start(r)

    def _start(self, r: _Running) -> None:
        r.hub.start()
        for line in describe_routes(r.hub):
            log.info("%s", line)
        for w in r.warnings:
            log.warning("Warning: %s", w)

    def close(self) -> None:
        for r in self._running:
            r.hub.close()

    def summary(self) -> str:
        """One line for systemd's STATUS=: components, ports, and ports waiting."""
        ports = [p for h in self.hubs for p in h.ports]
        waiting = [p.name for p in ports if p.status().startswith(("absent", "waiting to reopen"))]
        text = f"{len(ports)} ports in {len(self._running)} components"
        if waiting:
            text += (
                f"; waiting for {len(waiting)}: {', '.join(waiting[:5])}{' ...' if len(waiting) > 5 else ''}"
            )
        return text

    async def reload(self) -> bool:
        """Reread the config file and apply the difference. False if the file was bad.

        A bad file is logged and the running components are kept. A component
        that fails to start is logged and left out; the others keep running.
        """
        assert self.config_file is not None
        try:
            cfg = load_config(self.config_file, self.registry)
        except UsageError as exc:
            log.error("Reload: %s; keeping the running config", exc)
            return False
        if cfg.settings() != self._settings:
            log.warning("Reload: the [hub] settings changed; they apply after a restart")
        old = {r.name: r for r in self._running}
        new_list: list[tuple[Component, _Running | None]] = []
        for comp in cfg.components:
            r = old.get(comp.name)
            new_list.append((comp, r if r is not None and r.fingerprint == comp.fingerprint() else None))
        try:
            built = {c.name: self._build(c) for c, keep in new_list if keep is None}
        except UsageError as exc:
            log.error("Reload: %s; keeping the running config", exc)
            return False
        kept_names = {c.name for c, keep in new_list if keep is not None}
        stopped = [r.name for r in self._running if r.name not in kept_names]
        for r in self._running:
            if r.name not in kept_names:
                r.hub.close()
        if stopped:
            await asyncio.sleep(0)  # let closed listeners and devices go before they are reopened
        running: list[_Running] = []
        started: list[str] = []
        for comp, keep in new_list:
            if keep is not None:
                running.append(keep)
                continue
            r = built[comp.name]
            try:
                self._start(r)
            except HubError as exc:
                log.error("Reload: %s did not start: %s", comp.name, exc)
                r.hub.close()
                continue
            running.append(r)
            started.append(comp.name)
        self._running = running
        log.info(
            "Reloaded %s: started %s; stopped %s; unchanged %d",
            self.config_file,
            ", ".join(started) or "none",
            ", ".join(stopped) or "none",
            len(kept_names),
        )
        if self.on_reload is not None:
            self.on_reload(started, stopped, sorted(kept_names))
        return True
