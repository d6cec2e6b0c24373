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
from .builder import build_hub, configure_filter
from .errors import UsageError
from .filter import Filter
from .hub import Hub
from .model import Attachment, FilterSpec, HubModel, Option, PortSpec, option_text
from .options import MISSING_VALUE, match_option, option_names, parse_options
from .port import Driver
from .registry import DRIVERS, FILTERS, PluginError, Registry
from .routes import RouteBuilder
from .web.options import HttpOptions, HttpSettings

__all__ = ["CORE_OPTIONS", "DEFAULT_DRIVER", "Config", "build", "compile_args", "http_settings"]

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


class _FilterModule:
    """Per-run state of a filter plugin: its sticky hub-command-line options."""

    def __init__(self, key: str, cls: type[Filter]):
        self.key = key
        self.cls = cls
        self.options: dict[str, Any] = {}
        #: The same options as given (normalised spelling), for the model.
        self.given: dict[str, Option] = {}
        self._names = option_names(cls.GLOBAL_USAGE) if cls.GLOBAL_USAGE else frozenset()

    def config_arg(self, arg: str) -> bool:
        name = match_option(arg, self._names)
        if name is None:
            return False
        self.options.update(parse_options(self.cls.GLOBAL_USAGE, [arg], self._names))
        self.given[name] = _normalise(name, arg)
        return True


class _DriverModule:
    """Per-run state of a driver plugin while the command line is read."""

    def __init__(self, name: str, driver: Driver):
        self.name = name
        self.driver = driver
        #: The last value given for each sticky option (normalised spelling).
        self.given: dict[str, Option] = {}
        #: Options kept for all ports (the connector's links), in order.
        self.global_args: list[str] = []

    def config_arg(self, arg: str) -> bool:
        name = match_option(arg, self.driver._names)
        if not self.driver.config_arg(arg):
            return False
        assert name is not None
        if name in self.driver.GLOBAL_OPTIONS:
            self.global_args.append(option_text(_normalise(name, arg)))
        else:
            self.given[name] = _normalise(name, arg)
        return True

    def port_options(self) -> tuple[Option, ...]:
        """The options a port made now gets: those whose value is not the default."""
        d = self.driver
        effective = {k: v for k, v in d.options.items() if k not in d.DEFAULTS or d.DEFAULTS[k] != v}
        return tuple(opt for name, opt in sorted(self.given.items()) if name in effective)


def _normalise(name: str, arg: str) -> Option:
    """("--baud", "9600") for "--BAUD=9600"; ("--read-only", None) for a flag."""
    _, sep, value = arg.partition("=")
    return (name, value if sep else None)


@dataclass
class Config:
    """The result of interpreting a command line."""

    hub: Hub
    args: list[Arg]
    warnings: list[str] = field(default_factory=list)
    verbosity: int = 0
    report_interval_s: float = 10.0
    status_interval_s: float = 0.0
    model: HubModel = field(default_factory=HubModel)
    #: --http and its options (None: no HTTP server).
    http: HttpSettings | None = None
    #: Called on the hub's loop when SIGHUP arrives (None: nothing to reload; the
    #: hub logs that and runs on). Work that must wait it schedules itself (a
    #: task on the loop). An exception it raises is logged; the hub runs on.
    reload: Callable[[], None] | None = None


class _NoHub:
    """The HubLink of drivers that only check options (nothing is built here)."""

    loop: Any = None

    def received(self, port: int, msgs: list[Any]) -> None:
        raise AssertionError("a compiling driver received messages")

    def session_chain(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a compiling driver asked for a session chain")


class _Compiler:
    def __init__(self, registry: Registry, args: list[Arg]):
        self.registry = registry
        self.args = args
        self.nports = sum(1 for a in args if _is_port(a.text))
        self.model = HubModel()
        self.drivers: dict[str, _DriverModule] = {}
        self.filter_modules: dict[str, _FilterModule] = {}
        self.routes = RouteBuilder()
        self.current_driver = DEFAULT_DRIVER
        #: Checks the HTTP options as they come; the model keeps their text.
        self.http = HttpOptions()
        self._http_args: dict[str, str] = {}
        self._all_loaded = False

    # -- modules -------------------------------------------------------------

    def _driver(self, name: str) -> _DriverModule:
        key = name.lower()
        if key not in self.drivers:
            cls = self.registry.load(DRIVERS, key)
            self.drivers[key] = _DriverModule(key, cls(_NoHub()))
        return self.drivers[key]

    def _filter_module(self, name: str) -> _FilterModule:
        key = name.lower()
        if key not in self.filter_modules:
            cls = self.registry.load(FILTERS, key)
            self.filter_modules[key] = _FilterModule(key, cls)
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
        if self.http.config_arg(text):
            self._http_args[text.partition("=")[0].lower()] = text
            recognised = True
        return recognised

    # -- interpretation ------------------------------------------------------

    def run(self) -> HubModel:
        self.preload()
        for i, arg in enumerate(self.args):
            try:
                self._interpret(arg)
            except UsageError as exc:
                following = self.args[i + 1] if i + 1 < len(self.args) else None
                if exc.text.startswith(MISSING_VALUE) and following is not None and _is_port(following.text):
                    # "--baud 9600": the value went into a port argument of its own.
                    hint = f"write {arg.text}={following.text} (no space before the value)"
                    exc = UsageError(exc.arg, f"{MISSING_VALUE}: {hint}")
                raise exc.with_source(arg.text, arg.source) from None
        return self.finish()

    def finish(self) -> HubModel:
        """All given: resolve the routes and return the model."""
        m = self.model
        m.attachments.sort(key=lambda a: a.port)  # stable: each port keeps its order
        m.routes = self.routes.finish(len(m.ports))
        m.driver_args = {n: tuple(d.global_args) for n, d in self.drivers.items() if d.global_args}
        m.http = tuple(self._http_args.values())
        return m

    def _interpret(self, arg: Arg) -> None:
        text = arg.text
        if _is_port(text):
            self._create_port(arg)
            return
        low = text.lower()
        if low in CORE_FLAGS:
            self.model.verbosity += {"-v": 1, "-vv": 2, "--verbose": 1, "-q": -1, "--quiet": -1}[low]
            return
        recognised = self._offer(text)
        for name in CORE_OPTIONS:
            value = option_value(text, name)
            if value is not None:
                self._core(name, value, arg)
                return
        if not recognised:
            self._load_all()
            recognised = self._offer(text)
        if not recognised:
            raise UsageError(text, "Unknown option")

    def _create_port(self, arg: Arg) -> None:
        try:
            module = self._driver(self.current_driver)
        except PluginError:
            raise UsageError(arg.text, f"No driver {self.current_driver}") from None
        self.model.ports.append(PortSpec(module.name, arg.text, module.port_options(), arg))

    # -- what the config file adds: ports whose options are their own -----------

    def add_port(self, driver: str, path: str, options: list[Arg], arg: Arg) -> None:
        """Add a port with exactly `options` (on its driver's defaults).

        Raises UsageError naming the option (or the driver) that is wrong.
        """
        try:
            module = self._driver(driver)
        except PluginError:
            raise UsageError(None, f"No driver {driver}").with_source(arg.text, arg.source) from None
        d = module.driver
        d.options = dict(d.DEFAULTS)
        module.given = {}
        for opt in options:
            try:
                if not module.config_arg(opt.text):
                    raise UsageError(opt.text, f"The {driver} driver has no such option")
            except UsageError as exc:
                raise exc.with_source(opt.text, opt.source) from None
        self.model.ports.append(PortSpec(module.name, path, module.port_options(), arg))

    def filter_module(self, name: str) -> _FilterModule:
        """The filter plugin `name`. Raises UsageError."""
        try:
            return self._filter_module(name)
        except PluginError as exc:
            raise UsageError(None, exc.text) from None

    def core(self, arg: Arg) -> None:
        """Apply one core option (--route=..., --add-filters=...). Raises UsageError."""
        try:
            for name in CORE_OPTIONS:
                value = option_value(arg.text, name)
                if value is not None:
                    self._core(name, value, arg)
                    return
            raise UsageError(arg.text, "Unknown option")
        except UsageError as exc:
            raise exc.with_source(arg.text, arg.source) from None

    def _lists(self, value: str) -> tuple[list[int], list[int]]:
        # anything after a second ':' used to be ignored silently (quirk): now an error
        parts = value.split(":")
        if len(parts) != 2:
            raise UsageError(None, "Invalid route: expected <LstR>:<LstL>")
        return parse_port_list(parts[0], self.nports), parse_port_list(parts[1], self.nports)

    def _core(self, name: str, value: str, arg: Arg) -> None:
        r = self.routes
        m = self.model
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
            self._create_filter(value, arg)
        elif name == "--add-filters=":
            self._add_filters(value)
        elif name == "--report-interval=":
            try:
                m.report_interval_s = float(value)
            except ValueError:
                raise UsageError(None, "Invalid --report-interval value (seconds)") from None
            if m.report_interval_s < 0:
                raise UsageError(None, "Invalid --report-interval value (seconds)")
        elif name == "--required=":
            text = value.strip()
            listed = [] if text.lower() in ("", "none") else parse_port_list(text, self.nports)
            m.required = tuple(sorted(set(listed)))
        elif name == "--status-interval=":
            try:
                m.status_interval_s = float(value)
            except ValueError:
                m.status_interval_s = -1.0
            if not 0 <= m.status_interval_s < 1e9:
                raise UsageError(None, "Invalid --status-interval value (seconds)")

    def _create_filter(self, value: str, arg: Arg) -> None:
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
        self.add_filter(module, group, fname, argv, arg)

    def add_filter(self, module: _FilterModule, group: str, name: str, argv: list[str], arg: Arg) -> None:
        """Check a filter's arguments and add it to the model. Raises UsageError."""
        configure_filter(module.cls, name, argv, dict(module.options))
        sticky = tuple(module.given[k] for k in sorted(module.given))
        self.model.filters.append(FilterSpec(module.key, group, name, tuple(argv), sticky, arg))

    def _add_filters(self, value: str) -> None:
        if not self.model.filters:
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
        specs = [(i, s) for i, s in enumerate(self.model.filters) if s.group == group]
        if not specs:
            raise UsageError(None, f"Can't find any filter for group {group}")
        want_in = method in (None, "IN")
        want_out = method in (None, "OUT")
        for p in ports:
            for i, spec in specs:
                cls = self.filter_modules[spec.module].cls
                use_in = want_in and cls.has_in()
                use_out = want_out and cls.has_out()
                if not (use_in or use_out):
                    continue
                self.model.attachments.append(Attachment(p, i, use_in, use_out, srcs if use_out else None))


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


def new_compiler(registry: Registry, nports: int) -> _Compiler:
    """A compiler for a front end that adds ports, filters and routes itself."""
    c = _Compiler(registry, [])
    c.nports = nports
    return c


def compile_args(argv: list[str] | list[Arg], registry: Registry, stdin: TextIO | None = None) -> HubModel:
    """Interpret a command line (without the program name) into a model.

    Nothing is created or opened. Raises UsageError for any bad argument.
    """
    args = expand(argv, stdin)
    c = _Compiler(registry, args)
    if c.nports < 1:
        raise UsageError(None, "No ports given (see --help)")
    return c.run()


def build(
    argv: list[str],
    loop: asyncio.AbstractEventLoop,
    registry: Registry | None = None,
    stdin: TextIO | None = None,
) -> Config:
    """Interpret `argv` (without the program name) into a Hub ready to start.

    Raises UsageError for any bad argument.
    """
    registry = registry or Registry()
    args = expand(argv, stdin)
    model = compile_args(args, registry)
    hub, warnings = build_hub(model, loop, registry)
    return Config(
        hub,
        args,
        warnings,
        model.verbosity,
        model.report_interval_s,
        model.status_interval_s,
        model,
        http_settings(model.http),
    )


def http_settings(args: tuple[str, ...] | list[str]) -> HttpSettings | None:
    """The HTTP server's settings for its options (None without --http).

    Raises UsageError (a bad value, a TLS file that does not load)."""
    options = HttpOptions()
    for text in args:
        if not options.config_arg(text):
            raise UsageError(text, "Not an HTTP option")
    return options.settings()
