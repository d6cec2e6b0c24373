"""Interpretation of the hub4com command line (spec 1.1-1.7).

Three steps: `--load` expansion, port counting, then left-to-right
interpretation in which every loaded module sees every argument (so driver
options are sticky and may stand anywhere) and the hub applies its own
options. Every error is a UsageError naming the argument and, for loaded
arguments, the file and line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .args import Arg, expand, option_value, parse_port_list, split_filter_args, split_quoted, unquote
from .errors import UsageError
from .filter import Filter, FilterContext
from .hub import Hub
from .options import match_option, option_names, parse_options
from .port import Driver
from .registry import DRIVERS, FILTERS, PluginError, Registry
from .routes import RouteBuilder
from .web.options import HttpOptions, HttpSettings

__all__ = ["CORE_OPTIONS", "DEFAULT_DRIVER", "Config", "build"]

log = logging.getLogger("hub")

DEFAULT_DRIVER = "serial"

#: Core options that take a value, matched as case-insensitive prefixes including '='.
CORE_OPTIONS = (
    "--route=",
    "--bi-route=",
    "--echo-route=",
    "--no-route=",
    "--fc-route=",
    "--no-default-fc-route=",
    "--create-filter=",
    "--add-filters=",
    "--use-driver=",
    "--report-interval=",
    "--status-interval=",
    "--required=",
)
#: Core flags that take no value.
CORE_FLAGS = ("-v", "-vv", "-q", "--verbose", "--quiet")


@dataclass
class FilterSpec:
    """One --create-filter: module class, group, name and parsed configuration."""

    cls: type[Filter]
    group: str
    name: str
    config: Any

    def make(self, ctx: FilterContext) -> Filter:
        """One instance (per port, or per session of a port that serves many)."""
        return self.cls(ctx, self.config)


class _FilterModule:
    """Per-run state of a filter plugin: its sticky hub-command-line options."""

    def __init__(self, cls: type[Filter]):
        self.cls = cls
        self.options: dict[str, Any] = {}
        self._names = option_names(cls.GLOBAL_USAGE) if cls.GLOBAL_USAGE else frozenset()

    def config_arg(self, arg: str) -> bool:
        if match_option(arg, self._names) is None:
            return False
        self.options.update(parse_options(self.cls.GLOBAL_USAGE, [arg], self._names))
        return True


@dataclass
class Config:
    """The result of interpreting a command line."""

    hub: Hub
    args: list[Arg]
    warnings: list[str] = field(default_factory=list)
    verbosity: int = 0
    report_interval_s: float = 10.0
    status_interval_s: float = 0.0
    #: --http and its options (None: no HTTP server).
    http: HttpSettings | None = None
    #: Called on the hub's loop when SIGHUP arrives (None: nothing to reload; the
    #: hub logs that and runs on). Work that must wait it schedules itself (a
    #: task on the loop). An exception it raises is logged; the hub runs on.
    reload: Callable[[], None] | None = None


class _Builder:
    def __init__(self, hub: Hub, registry: Registry, args: list[Arg]):
        self.hub = hub
        self.registry = registry
        self.args = args
        self.nports = sum(1 for a in args if _is_port(a.text))
        self.drivers: dict[str, Driver] = {}
        self.filter_modules: dict[str, _FilterModule] = {}
        self.specs: list[FilterSpec] = []
        self.routes = RouteBuilder()
        self.current_driver = DEFAULT_DRIVER
        self.verbosity = 0
        self.report_interval_s = 10.0
        self.status_interval_s = 0.0
        self.http = HttpOptions()
        #: --required: the ports /healthz checks (None: all of them).
        self.required: list[int] | None = None
        self._all_loaded = False
        #: (port, spec, use_in, use_out, sources); instances are made once all ports exist.
        self.attachments: list[tuple[int, FilterSpec, bool, bool, frozenset[int] | None]] = []

    # -- modules -------------------------------------------------------------

    def _driver(self, name: str) -> Driver:
        key = name.lower()
        if key not in self.drivers:
            cls = self.registry.load(DRIVERS, key)
            self.drivers[key] = cls(self.hub)
        return self.drivers[key]

    def _filter_module(self, name: str) -> _FilterModule:
        key = name.lower()
        if key not in self.filter_modules:
            cls = self.registry.load(FILTERS, key)
            self.filter_modules[key] = _FilterModule(cls)
        return self.filter_modules[key]

    def preload(self) -> None:
        """Load the modules the command line names, so their sticky options work anywhere."""
        try:
            self._driver(DEFAULT_DRIVER)
        except PluginError:
            pass  # reported if a port needs it
        for a in self.args:
            drv = option_value(a.text, "--use-driver=")
            if drv is not None:
                try:
                    self._driver(drv)
                except PluginError:
                    pass  # reported where the option is interpreted
            flt = option_value(a.text, "--create-filter=")
            if flt is not None:
                mid = unquote(split_quoted(split_quoted(flt, ":", 1)[0], ",")[0])
                try:
                    self._filter_module(mid)
                except PluginError:
                    pass

    def _load_all(self) -> None:
        if self._all_loaded:
            return
        self._all_loaded = True
        for name in self.registry.names(DRIVERS):
            if name not in self.drivers and self.registry.try_load(DRIVERS, name):
                self._driver(name)
        for name in self.registry.names(FILTERS):
            if name not in self.filter_modules and self.registry.try_load(FILTERS, name):
                self._filter_module(name)

    def _offer(self, text: str) -> bool:
        recognised = False
        for d in self.drivers.values():
            recognised |= d.config_arg(text)
        for m in self.filter_modules.values():
            recognised |= m.config_arg(text)
        recognised |= self.http.config_arg(text)
        return recognised

    # -- interpretation ------------------------------------------------------

    def run(self) -> None:
        self.preload()
        for arg in self.args:
            try:
                self._interpret(arg)
            except UsageError as exc:
                raise exc.with_source(arg.text, arg.source) from None
        for p, spec, use_in, use_out, srcs in self.attachments:
            self.hub.attach(p, spec.name, spec.make, use_in, use_out, srcs)
        for d in self.drivers.values():
            d.config_stop(self.hub.ports)
        if self.required is not None:
            for port in self.hub.ports:
                port.required = port.index in self.required
        routes = self.routes.finish(len(self.hub.ports))
        self.hub.set_routes(routes)
        for d in self.drivers.values():
            d.routes_ready(routes.data)

    def _interpret(self, arg: Arg) -> None:
        text = arg.text
        if _is_port(text):
            self._create_port(arg)
            return
        low = text.lower()
        if low in CORE_FLAGS:
            self.verbosity += {"-v": 1, "-vv": 2, "--verbose": 1, "-q": -1, "--quiet": -1}[low]
            return
        recognised = self._offer(text)
        for name in CORE_OPTIONS:
            value = option_value(text, name)
            if value is not None:
                self._core(name, value)
                return
        if not recognised:
            self._load_all()
            recognised = self._offer(text)
        if not recognised:
            raise UsageError(text, "Unknown option")

    def _create_port(self, arg: Arg) -> None:
        try:
            driver = self._driver(self.current_driver)
        except PluginError:
            raise UsageError(arg.text, f"No driver {self.current_driver}") from None
        index = len(self.hub.ports)
        port = driver.create_port(index, arg.text, dict(driver.options))
        port.kind = driver.NAME or self.current_driver
        self.hub.add_port(port)

    def _lists(self, value: str) -> tuple[list[int], list[int]]:
        # anything after a second ':' used to be ignored silently (quirk): now an error
        parts = value.split(":")
        if len(parts) != 2:
            raise UsageError(None, "Invalid route: expected <LstR>:<LstL>")
        return parse_port_list(parts[0], self.nports), parse_port_list(parts[1], self.nports)

    def _core(self, name: str, value: str) -> None:
        r = self.routes
        if name == "--route=":
            r.route(*self._lists(value))
        elif name == "--bi-route=":
            r.bi_route(*self._lists(value))
        elif name == "--no-route=":
            r.no_route(*self._lists(value))
        elif name == "--fc-route=":
            r.fc_route(*self._lists(value))
        elif name == "--no-default-fc-route=":
            r.no_default_fc_route(*self._lists(value))
        elif name == "--echo-route=":
            r.echo_route(parse_port_list(value, self.nports))
        elif name == "--use-driver=":
            if not value:
                raise UsageError(None, "Missing driver name")
            self.current_driver = value.lower()
        elif name == "--create-filter=":
            self._create_filter(value)
        elif name == "--add-filters=":
            self._add_filters(value)
        elif name == "--report-interval=":
            try:
                self.report_interval_s = float(value)
            except ValueError:
                raise UsageError(None, "Invalid --report-interval value (seconds)") from None
            if self.report_interval_s < 0:
                raise UsageError(None, "Invalid --report-interval value (seconds)")
        elif name == "--required=":
            text = value.strip()
            self.required = [] if text.lower() in ("", "none") else parse_port_list(text, self.nports)
        elif name == "--status-interval=":
            try:
                self.status_interval_s = float(value)
            except ValueError:
                self.status_interval_s = -1.0
            if not 0 <= self.status_interval_s < 1e9:
                raise UsageError(None, "Invalid --status-interval value (seconds)")

    def _create_filter(self, value: str) -> None:
        pieces = split_quoted(value, ":", 1)
        head = [unquote(h) for h in split_quoted(pieces[0], ",", 2)]
        mid = head[0]
        if not mid:
            raise UsageError(None, "Missing filter module name")
        group = head[1] if len(head) > 1 and head[1] else mid
        fname = head[2] if len(head) > 2 and head[2] else group
        try:
            module = self._filter_module(mid)
        except PluginError as exc:
            raise UsageError(None, exc.text) from None
        argv = split_filter_args(pieces[1]) if len(pieces) > 1 else []
        argv = [a.text for a in expand(argv)]
        for a in argv:
            if not a.startswith("--"):
                raise UsageError(None, f"Can't create filter {fname} by '{a}'")
        try:
            options = parse_options(module.cls.USAGE, argv)
            config = module.cls.configure(options, dict(module.options))
        except UsageError as exc:
            bad = f" '{exc.arg}'" if exc.arg is not None else ""
            raise UsageError(None, f"Can't create filter {fname}: {exc.text}{bad}") from None
        self.specs.append(FilterSpec(module.cls, group, fname, config))

    def _add_filters(self, value: str) -> None:
        if not self.specs:
            raise UsageError(None, "There is not any --create-filter option before")
        lst, sep, lstf = value.partition(":")
        if not sep:
            raise UsageError(None, "Invalid --add-filters: expected <Lst>:<LstF>")
        ports = parse_port_list(lst, self.nports)
        for item in _split_outside_parens(lstf):
            self._add_group(ports, item)

    def _add_group(self, ports: list[int], item: str) -> None:
        srcs: frozenset[int] | None = None
        if "(" in item:
            head, _, rest = item.partition("(")
            if not rest.endswith(")"):
                raise UsageError(None, f"Invalid filter list item {item!r}")
            listed: list[int] = []
            for src in rest[:-1].split(","):
                if src.strip().lower() == "all":
                    break  # no restriction; later items are ignored
                listed.extend(parse_port_list(src, self.nports, allow_all=False))
            else:
                srcs = frozenset(listed)
            item = head
        group, method = item, None
        dot = item.rfind(".")
        if dot >= 0 and item[dot:].upper() in (".IN", ".OUT"):
            group, method = item[:dot], item[dot + 1 :].upper()
        specs = [s for s in self.specs if s.group == group]
        if not specs:
            raise UsageError(None, f"Can't find any filter for group {group}")
        want_in = method in (None, "IN")
        want_out = method in (None, "OUT")
        for p in ports:
            for spec in specs:
                use_in = want_in and spec.cls.has_in()
                use_out = want_out and spec.cls.has_out()
                if not (use_in or use_out):
                    continue
                self.attachments.append((p, spec, use_in, use_out, srcs if use_out else None))


def _is_port(text: str) -> bool:
    return not text.startswith("--") and text.lower() not in CORE_FLAGS


def _split_outside_parens(text: str) -> list[str]:
    items: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(text):
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [i.strip() for i in items if i.strip()]


def build(
    argv: list[str],
    loop: asyncio.AbstractEventLoop,
    registry: Registry | None = None,
    stdin: TextIO | None = None,
) -> Config:
    """Interpret `argv` (without the program name) into a Hub ready to start.

    Raises UsageError for any bad argument.
    """
    args = expand(argv, stdin)
    hub = Hub(loop)
    b = _Builder(hub, registry or Registry(), args)
    if b.nports < 1:
        raise UsageError(None, "No ports given (see --help)")
    b.run()
    warnings = hub.negotiate()
    http = b.http.settings()
    return Config(hub, args, warnings, b.verbosity, b.report_interval_s, b.status_interval_s, http)
