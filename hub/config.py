"""The config file (TOML): devices and what they are served as, plus free-form groups.

One file describes what a command line does, in components that run as
independent hubs on one event loop (so a reload replaces one without the others
noticing). Both kinds compile, through the same compiler as the command line
(`hub.cli`), to `HubModel`s; `ServiceConfig.merged()` numbers them as one
command line would, which is what ``--check-config`` prints.

Schema in short (the README has it in full; every key of a port or filter is
one of its driver's or filter's options, spelt without ``--``)::

    [hub]                 report-interval, status-interval, log-level
    [defaults.<driver>]   options for every port of that driver
    [device.<name>]       path = "/dev/ttyUSB0" | usb = "0403:6001" (+ serial-number,
                          usb-interface) | sim = "gps"; required; serial options;
                          served as: raw, telnet, rfc2217 (tcp-multi listeners),
                          pty, mqtt, udp -- each a port/path/url/address, a table
                          with options, or a list of those
    [group.<name>]        [[group.<name>.port]] driver, path, name, filters, options;
                          [group.<name>.filter.<id>] module, group, name, options;
                          route, bi-route, echo-route, no-route, fc-route,
                          no-default-fc-route: lists as on the command line,
                          with port names or numbers
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .args import Arg
from .cli import http_settings, new_compiler
from .commands.com2tcp_rfc2217 import COM_OPTIONS, SERVER_COM_CHAIN, SERVER_TCP_CHAIN
from .errors import ArgSource, UsageError
from .model import Attachment, HubModel
from .options import options_with_values
from .registry import DRIVERS, PluginError, Registry
from .routes import Routes
from .web import options as http_options
from .web.options import HttpOptions

__all__ = [
    "ROUTE_KEYS",
    "SERVICES",
    "Component",
    "KeySource",
    "ServiceConfig",
    "load_config",
    "parse_config",
    "read_text",
]

#: Service kind -> (driver, the key that holds its address).
SERVICES: dict[str, tuple[str, str]] = {
    "raw": ("tcp-multi", "port"),
    "telnet": ("tcp-multi", "port"),
    "rfc2217": ("tcp-multi", "port"),
    "pty": ("pty", "path"),
    "mqtt": ("mqtt", "url"),
    "udp": ("udp", "address"),
}
#: Route keys of a group -> the core option they stand for.
ROUTE_KEYS = {
    "route": "--route=",
    "bi-route": "--bi-route=",
    "echo-route": "--echo-route=",
    "no-route": "--no-route=",
    "fc-route": "--fc-route=",
    "no-default-fc-route": "--no-default-fc-route=",
}
LOG_LEVELS = {"warning": -1, "info": 0, "debug": 1}
_DEVICE_KEYS = ("path", "usb", "serial-number", "usb-interface", "sim", "required")
#: The HTTP server's options (--http, --http-allow, ...) -> whether each takes a value.
_HTTP_KINDS = {k: v for k, v in options_with_values(http_options.USAGE).items() if k != "--required"}
_HUB_KEYS = ("report-interval", "status-interval", "log-level", *(k[2:] for k in _HTTP_KINDS))

#: The RFC 2217 server chains of com2tcp-rfc2217 (hub4com spec 5.2, with its --flow):
#: on the device (for requests from the RFC 2217 ports) and on each RFC 2217 port.
#: escparse is left out: on Linux it has nothing to parse and passes everything on.
_RFC2217_DEVICE = tuple(piece for piece in SERVER_COM_CHAIN if piece[0] != "escparse")
_RFC2217_PORT = SERVER_TCP_CHAIN
_TELNET_PORT = (("telnet", "telnet", "--suppress-echo=yes"),)


class KeySource(ArgSource):
    """Where a config value came from: file, line (if known) and key path."""

    __slots__ = ("key",)

    def __init__(self, file: str, line: int | None, key: str):
        super().__init__(file, line, None)
        self.key = key

    def __str__(self) -> str:
        line = f", line {self.line}" if self.line else ""
        return f" (file {self.file}{line}, key {self.key})"


@dataclass
class Component:
    """One independent part of a config: a device with its services, or a group."""

    #: "device.<name>" or "group.<name>".
    name: str
    model: HubModel
    #: Each port's name within the component (for port lists and display).
    port_names: list[str] = field(default_factory=list)

    def fingerprint(self) -> tuple[Any, ...]:
        """Equal for components that would run the same (sources aside)."""
        m = self.model
        return (
            tuple(m.ports),
            tuple(m.filters),
            tuple(m.attachments),
            tuple(sorted(m.routes.data.items())),
            tuple(sorted(m.routes.fc.items())),
            tuple(sorted(m.driver_args.items())),
            m.required,
        )


@dataclass
class ServiceConfig:
    """A config file, compiled."""

    file: str
    components: list[Component]
    verbosity: int = 0
    report_interval_s: float = 10.0
    status_interval_s: float = 0.0
    #: The HTTP server's options ([hub] http = ..., in the command line's spelling).
    http: tuple[str, ...] = ()

    def settings(self) -> tuple[Any, ...]:
        """What applies to the whole process (a reload does not change it)."""
        return (self.verbosity, self.report_interval_s, self.status_interval_s, self.http)

    def merged(self) -> HubModel:
        """All components as one model, ports numbered in file order."""
        out = HubModel(
            verbosity=self.verbosity,
            report_interval_s=self.report_interval_s,
            status_interval_s=self.status_interval_s,
            http=self.http,
        )
        required: list[int] = []
        data: dict[int, tuple[int, ...]] = {}
        fc: dict[int, tuple[int, ...]] = {}
        links: dict[str, list[str]] = {}
        for comp in self.components:
            m = comp.model
            po, fo = len(out.ports), len(out.filters)
            out.ports += m.ports
            out.filters += m.filters
            for a in m.attachments:
                srcs = None if a.sources is None else frozenset(s + po for s in a.sources)
                out.attachments.append(Attachment(a.port + po, a.filter + fo, a.use_in, a.use_out, srcs))
            for table, new in ((m.routes.data, data), (m.routes.fc, fc)):
                for src, dsts in table.items():
                    new[src + po] = tuple(d + po for d in dsts)
            for drv, args in m.driver_args.items():
                links.setdefault(drv, []).extend(args)
            required += range(po, len(out.ports)) if m.required is None else [i + po for i in m.required]
        if any(c.model.required is not None for c in self.components):
            out.required = tuple(required)
        out.routes = Routes(data, fc)
        out.driver_args = {k: tuple(v) for k, v in links.items()}
        return out


# ---- locating keys in the text (tomllib gives no positions) ---------------------------

_HEADER_RE = re.compile(r"^\s*(\[\[?)([^\]]+)\]")
_KEY_RE = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


class _KeyLines:
    """The line of each table header and key, by key path (arrays of tables indexed)."""

    def __init__(self, text: str):
        self.lines: dict[tuple[Any, ...], int] = {}
        counts: dict[tuple[str, ...], int] = {}
        current: tuple[Any, ...] = ()
        for n, line in enumerate(text.splitlines(), 1):
            m = _HEADER_RE.match(line)
            if m:
                path = _dotted(m.group(2))
                if m.group(1) == "[[":
                    counts[path] = counts.get(path, -1) + 1
                    # an inner array's counter restarts under a new outer element
                    for k in [k for k in counts if len(k) > len(path) and k[: len(path)] == path]:
                        del counts[k]
                    current = (*path, counts[path])
                else:
                    current = path
                self.lines.setdefault(current, n)
                continue
            m = _KEY_RE.match(line)
            if m:
                self.lines.setdefault((*current, *_dotted(m.group(1))), n)

    def line(self, path: tuple[Any, ...]) -> int | None:
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        # a table only named as part of a longer header: [devices.x] for "devices"
        below = [n for key, n in self.lines.items() if key[: len(path)] == path]
        return min(below) if below else None


# ---- compiling -------------------------------------------------------------------------


def _key_text(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


class _Reader:
    """Turns a parsed TOML document into components; every error names its key."""

    def __init__(self, file: str, text: str, registry: Registry):
        self.file = file
        self.lines = _KeyLines(text)
        self.registry = registry

    def source(self, path: tuple[Any, ...]) -> KeySource:
        return KeySource(self.file, self.lines.line(path), _key_text(path))

    def error(self, path: tuple[Any, ...], text: str) -> UsageError:
        return UsageError(None, text, self.source(path))

    def arg(self, path: tuple[Any, ...], text: str) -> Arg:
        return Arg(text, self.source(path))

    def table(
        self, value: Any, path: tuple[Any, ...], allowed: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a table, not {_type(value)}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.error(
                        (*path, key), f"unknown key '{key}' (expected one of: {', '.join(allowed)})"
                    )
        return value

    def string(self, value: Any, path: tuple[Any, ...], what: str = "a string") -> str:
        if not isinstance(value, str):
            raise self.error(path, f"expected {what}, not {_type(value)}")
        return value

    # -- options ---------------------------------------------------------------

    def option_args(
        self, kinds: dict[str, bool], items: dict[str, Any], path: tuple[Any, ...], owner: str
    ) -> list[Arg]:
        """Command-line options for config keys, checked against an option table."""
        out = []
        for key, value in items.items():
            name = "--" + key
            if name not in kinds:
                known = ", ".join(k[2:] for k in sorted(kinds)) or "none"
                raise self.error((*path, key), f"unknown key '{key}' for {owner} (its options: {known})")
            out.append(self.arg((*path, key), self.option_text(name, kinds[name], value, (*path, key))))
        return out

    def option_text(self, name: str, takes_value: bool, value: Any, path: tuple[Any, ...]) -> str:
        if not takes_value:
            if value is True:
                return name
            raise self.error(path, f"expected true ({name} is a flag; leave it out for the default)")
        if isinstance(value, bool):
            return f"{name}={'on' if value else 'off'}"
        if isinstance(value, int | float | str):
            return f"{name}={value}"
        if isinstance(value, list) and all(isinstance(v, int | float | str) for v in value):
            return f"{name}={','.join(str(v) for v in value)}"
        raise self.error(path, f"expected a string, number, boolean or list of them, not {_type(value)}")

    def driver_kinds(self, driver: str, path: tuple[Any, ...]) -> dict[str, bool]:
        try:
            cls = self.registry.load(DRIVERS, driver)
        except PluginError:
            raise self.error(path, f"unknown driver '{driver}'") from None
        return options_with_values(cls.USAGE)

    # -- the document --------------------------------------------------------------

    def read(self, doc: dict[str, Any]) -> ServiceConfig:
        self.table(doc, (), ("hub", "defaults", "device", "group"))
        cfg = ServiceConfig(self.file, [])
        self.hub_settings(cfg, self.table(doc.get("hub", {}), ("hub",), _HUB_KEYS))
        self.defaults: dict[str, list[Arg]] = {}
        for driver, opts in self.table(doc.get("defaults", {}), ("defaults",)).items():
            path = ("defaults", driver)
            kinds = self.driver_kinds(driver, path)
            self.defaults[driver] = self.option_args(kinds, self.table(opts, path), path, f"driver {driver}")
        for name, dev in self.table(doc.get("device", {}), ("device",)).items():
            cfg.components.append(self.device(name, self.table(dev, ("device", name))))
        for name, grp in self.table(doc.get("group", {}), ("group",)).items():
            cfg.components.append(self.group(name, self.table(grp, ("group", name))))
        if not cfg.components:
            raise UsageError(
                None, "No device or group in the config file", KeySource(self.file, None, "device")
            )
        return cfg

    def hub_settings(self, cfg: ServiceConfig, hub: dict[str, Any]) -> None:
        for key, attr in (("report-interval", "report_interval_s"), ("status-interval", "status_interval_s")):
            if key in hub:
                value = hub[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise self.error(("hub", key), "expected a number of seconds (0 or more)")
                setattr(cfg, attr, float(value))
        if "log-level" in hub:
            level = self.string(hub["log-level"], ("hub", "log-level")).lower()
            if level not in LOG_LEVELS:
                raise self.error(("hub", "log-level"), f"expected one of: {', '.join(LOG_LEVELS)}")
            cfg.verbosity = LOG_LEVELS[level]
        http = []
        for key, value in hub.items():
            name = "--" + key
            if name in _HTTP_KINDS:
                text = self.option_text(name, _HTTP_KINDS[name], value, ("hub", key))
                try:
                    HttpOptions().config_arg(text)  # this one value
                except UsageError as exc:
                    raise self.error(("hub", key), exc.text) from None
                http.append(text)
        cfg.http = tuple(http)
        try:
            http_settings(cfg.http)  # together: --http given, TLS files load
        except UsageError as exc:
            raise self.error(("hub", exc.arg[2:] if exc.arg else "http"), exc.text) from None

    # -- a device and its services -------------------------------------------------

    def device(self, name: str, dev: dict[str, Any]) -> Component:
        path = ("device", name)
        driver = "sim" if "sim" in dev else "serial"
        kinds = self.driver_kinds(driver, path)
        where = [k for k in ("path", "usb", "sim") if k in dev]
        if len(where) != 1:
            raise self.error(path, "expected exactly one of path, usb or sim (which device this is)")
        device_path = self.device_path(dev, path)
        own: dict[str, Any] = {}
        services: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = []
        for key, value in dev.items():
            if key in SERVICES:
                for item, ipath in self.service_items(key, value, (*path, key)):
                    services.append((key, item, ipath))
            elif key not in _DEVICE_KEYS:
                own[key] = value
        for key in ("serial-number", "usb-interface"):
            if key in dev and "usb" not in dev:
                raise self.error((*path, key), f"'{key}' needs 'usb' (a USB vendor:product)")
        required = dev.get("required", False)
        if not isinstance(required, bool):
            raise self.error((*path, "required"), "expected true or false")
        options = self.defaults.get(driver, []) + self.option_args(
            kinds, own, path, f"device {name} ({driver})"
        )
        if driver == "serial" and not required:
            options.append(self.arg((*path, "required"), "--if-absent=wait"))
        octs_given = any(o.text.startswith("--octs") for o in options)
        if driver == "serial" and "rfc2217" in dev and not octs_given:
            # as com2tcp-rfc2217: the RFC 2217 clients decide flow control
            options += [self.arg((*path, "rfc2217"), text) for text in COM_OPTIONS]
        c = new_compiler(self.registry, 1 + len(services))
        c.add_port(driver, device_path, options, self.arg((*path, where[0]), device_path))
        names = [name]
        for kind, item, ipath in services:
            drv, address_key = SERVICES[kind]
            item = dict(item)
            address = item.pop(address_key, None)
            if address is None or isinstance(address, bool) or not isinstance(address, str | int):
                raise self.error((*ipath, address_key), f"expected the {address_key} of this {kind} service")
            skinds = self.driver_kinds(drv, ipath)
            sopts = self.defaults.get(drv, []) + self.option_args(skinds, item, ipath, f"{kind} ({drv})")
            c.add_port(drv, str(address), sopts, self.arg((*ipath, address_key), str(address)))
            names.append(f"{kind}:{address}")
        rfc = [i + 1 for i, (kind, _, _) in enumerate(services) if kind == "rfc2217"]
        telnet = [i + 1 for i, (kind, _, _) in enumerate(services) if kind == "telnet"]
        if rfc:
            # the device's chain takes requests from the RFC 2217 ports only (all of them
            # when there is nothing else, as com2tcp-rfc2217 has it)
            only = "" if len(rfc) == len(services) else f"({','.join(map(str, rfc))})"
            self.chain(c, "rfc2217-device", _RFC2217_DEVICE, path, f"0:rfc2217-device{only}")
            self.chain(c, "rfc2217", _RFC2217_PORT, path, f"{','.join(map(str, rfc))}:rfc2217")
        if telnet:
            self.chain(c, "telnet", _TELNET_PORT, path, f"{','.join(map(str, telnet))}:telnet")
        if services:
            c.core(self.arg(path, f"--bi-route=0:{','.join(str(i) for i in range(1, len(services) + 1))}"))
        else:
            c.core(self.arg(path, "--no-route=All:All"))
        return Component(f"device.{name}", c.finish(), names)

    def device_path(self, dev: dict[str, Any], path: tuple[Any, ...]) -> str:
        if "path" in dev:
            return self.string(dev["path"], (*path, "path"), "a device path")
        if "sim" in dev:
            return self.string(dev["sim"], (*path, "sim"), "a simulated device (gps or replay:<file>)")
        usb = self.string(dev["usb"], (*path, "usb"), "a USB identity vendor:product")
        if not re.fullmatch(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}", usb):
            raise self.error(
                (*path, "usb"), "expected a USB identity vendor:product in hex, such as 0403:6001"
            )
        text = f"usb:{usb.lower()}"
        if "serial-number" in dev:
            text += f",serial={self.string(dev['serial-number'], (*path, 'serial-number'))}"
        if "usb-interface" in dev:
            number = dev["usb-interface"]
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 256:
                raise self.error((*path, "usb-interface"), "expected an interface number (0 to 255)")
            text += f",interface={number}"
        return text

    def service_items(
        self, kind: str, value: Any, path: tuple[Any, ...]
    ) -> list[tuple[dict[str, Any], tuple[Any, ...]]]:
        address_key = SERVICES[kind][1]
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            ipath = (*path, i) if isinstance(value, list) else path
            if isinstance(item, dict):
                out.append((item, ipath))
            elif isinstance(item, str | int) and not isinstance(item, bool):
                out.append(({address_key: item}, ipath))
            else:
                raise self.error(
                    ipath, f"expected a {address_key}, a table with {address_key} and options, or a list"
                )
        return out

    def chain(self, c: Any, group: str, pieces: Any, path: tuple[Any, ...], attach: str) -> None:
        """Create the filters `pieces` ((module, name, arguments) each) as `group`, attach it."""
        for module, name, args in pieces:
            where = self.arg(path, f"{group}.{name}")
            c.add_filter(c.filter_module(module), group, name, args.split(), where)
        c.core(self.arg(path, f"--add-filters={attach}"))

    # -- a free-form group --------------------------------------------------------------

    def group(self, name: str, grp: dict[str, Any]) -> Component:
        path = ("group", name)
        ports = grp.get("port", [])
        links = self.link_options(ports)
        self.table(grp, path, ("port", "filter", *ROUTE_KEYS, "required", *links))
        if not isinstance(ports, list) or not ports:
            raise self.error((*path, "port"), "expected one or more [[port]] tables")
        names: list[str] = []
        for i, p in enumerate(ports):
            pname = self.table(p, (*path, "port", i)).get("name", str(i))
            pname = self.string(pname, (*path, "port", i, "name"))
            if pname in names:
                raise self.error((*path, "port", i, "name"), f"another port of this group is named '{pname}'")
            names.append(pname)
        c = new_compiler(self.registry, len(ports))
        for i, p in enumerate(ports):
            ppath = (*path, "port", i)
            p = dict(p)
            p.pop("name", None)
            p.pop("filters", None)
            driver = self.string(p.pop("driver", "serial"), (*ppath, "driver")).lower()
            if "path" not in p:
                raise self.error(ppath, "expected a 'path' (the port argument of the command line)")
            port_path = self.string(p.pop("path"), (*ppath, "path"))
            kinds = self.driver_kinds(driver, (*ppath, "driver"))
            opts = self.defaults.get(driver, []) + self.option_args(kinds, p, ppath, f"driver {driver}")
            c.add_port(driver, port_path, opts, self.arg((*ppath, "path"), port_path))
        for key, f in self.table(grp.get("filter", {}), (*path, "filter")).items():
            self.free_filter(c, key, self.table(f, (*path, "filter", key)), (*path, "filter", key))
        for i, p in enumerate(ports):
            if "filters" in p:
                fpath = (*path, "port", i, "filters")
                items = p["filters"]
                if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                    raise self.error(fpath, "expected a list of filter groups, nearest the driver first")
                if items:
                    translated = [self.translate_item(x, names, fpath) for x in items]
                    c.core(self.arg(fpath, f"--add-filters={i}:{','.join(translated)}"))
        for key in links:
            if key in grp:
                lpath = (*path, key)
                for v in self.strings(grp[key], lpath, '"a:b"'):
                    text = f"--{key}={v}"
                    try:
                        taken = [d.config_arg(text) for d in c.drivers.values()]
                    except UsageError as exc:
                        raise exc.with_source(text, self.source(lpath)) from None
                    if not any(taken):
                        raise self.error(lpath, f"no driver here takes --{key}")
        for key, option in ROUTE_KEYS.items():
            if key in grp:
                rpath = (*path, key)
                for v in self.strings(grp[key], rpath, '"0:1,2"'):
                    lists = v.split(":") if key != "echo-route" else [v]
                    text = ":".join(self.translate(part, names, rpath) for part in lists)
                    c.core(self.arg(rpath, option + text))
        if "required" in grp:
            rpath = (*path, "required")
            listed = self.strings(grp["required"], rpath, '["0", "gps"]')
            text = ",".join(self.translate(v, names, rpath) for v in listed) or "none"
            c.core(self.arg(rpath, f"--required={text}"))
        return Component(f"group.{name}", c.finish(), names)

    def strings(self, values: Any, path: tuple[Any, ...], example: str) -> list[str]:
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.error(path, f"expected a list of strings such as {example}")
        return values

    def link_options(self, ports: Any) -> list[str]:
        """Options of the group's drivers that apply to the driver as a whole (connector links)."""
        out: list[str] = []
        for p in ports if isinstance(ports, list) else []:
            driver = p.get("driver", "serial") if isinstance(p, dict) else None
            if isinstance(driver, str):
                try:
                    cls = self.registry.load(DRIVERS, driver.lower())
                except PluginError:
                    continue
                out += [o[2:] for o in sorted(cls.GLOBAL_OPTIONS) if o[2:] not in out]
        return out

    def free_filter(self, c: Any, key: str, f: dict[str, Any], path: tuple[Any, ...]) -> None:
        f = dict(f)
        module_name = self.string(f.pop("module", key), (*path, "module")).lower()
        group = self.string(f.pop("group", key), (*path, "group"))
        fname = self.string(f.pop("name", key), (*path, "name"))
        try:
            module = c.filter_module(module_name)
        except UsageError as exc:
            raise self.error((*path, "module"), exc.text) from None
        kinds = options_with_values(module.cls.USAGE)
        global_kinds = options_with_values(module.cls.GLOBAL_USAGE) if module.cls.GLOBAL_USAGE else {}
        own = {k: v for k, v in f.items() if "--" + k not in global_kinds}
        sticky = {k: v for k, v in f.items() if "--" + k in global_kinds}
        argv = [a.text for a in self.option_args(kinds, own, path, f"filter {module_name}")]
        module.options, module.given = {}, {}
        for a in self.option_args(global_kinds, sticky, path, f"filter {module_name}"):
            try:
                module.config_arg(a.text)
            except UsageError as exc:
                raise exc.with_source(a.text, a.source) from None
        try:
            c.add_filter(module, group, fname, argv, self.arg(path, " ".join(argv) or fname))
        except UsageError as exc:
            raise self.error(path, exc.text) from None

    def translate(self, text: str, names: list[str], path: tuple[Any, ...]) -> str:
        """A port list with names replaced by numbers."""
        out = []
        for item in text.split(","):
            item = item.strip()
            if item in names:
                out.append(str(names.index(item)))
            elif item.lower() == "all" or item.isdigit():
                out.append(item)
            else:
                raise self.error(path, f"unknown port '{item}' (ports here: {', '.join(names)})")
        return ",".join(out)

    def translate_item(self, item: str, names: list[str], path: tuple[Any, ...]) -> str:
        head, paren, rest = item.partition("(")
        if not paren:
            return item
        return f"{head}({self.translate(rest.rstrip(')'), names, path)})"


def _type(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def parse_config(text: str, file: str, registry: Registry) -> ServiceConfig:
    """Compile config `text` read from `file`. Raises UsageError naming file, key and line."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(None, f"{file}: invalid TOML: {exc}") from None
    return _Reader(file, text, registry).read(doc)


def read_text(file: str, what: str = "the config file") -> str:
    """The text of `file` (UTF-8). Raises UsageError naming it as `what`."""
    try:
        with open(file, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(None, f"Can't read {what} {file}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(None, f"{what[0].upper()}{what[1:]} {file} is not UTF-8 text") from None


def load_config(file: str, registry: Registry) -> ServiceConfig:
    """Read and compile a config file. Raises UsageError."""
    return parse_config(read_text(file), file, registry)
