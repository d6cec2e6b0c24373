"""What --check-config and --print-config print: a model as a table, or as a config file.

The table is the same for a config file and for the command line that does the
same thing, whatever spelling either used; that is how examples are checked
against their command lines.
"""

from __future__ import annotations

import json

from .model import HubModel, option_text

__all__ = ["model_table", "model_toml"]


def _sources(srcs: frozenset[int] | None) -> str:
    return "" if srcs is None else f"({','.join(str(s) for s in sorted(srcs))})"


def model_table(model: HubModel) -> str:
    """Ports, filter chains and routes of `model`, one line each."""
    lines = ["Ports:"]
    width = max((len(p.driver) for p in model.ports), default=0)
    for i, p in enumerate(model.ports):
        opts = " ".join(option_text(o) for o in p.options)
        lines.append(f"  {i:>3}  {p.driver:<{width}}  {p.path}{'  ' + opts if opts else ''}".rstrip())
    lines.append("Filters (nearest the port first):")
    chains = False
    for i in range(len(model.ports)):
        chain = []
        for a in model.chain(i):
            f = model.filters[a.filter]
            how = "" if a.use_in and a.use_out else ".IN" if a.use_in else ".OUT"
            args = " ".join(f.args)
            chain.append(f"{f.name}{how}{_sources(a.sources)}[{f.module}{' ' + args if args else ''}]")
        if chain:
            chains = True
            lines.append(f"  {i:>3}  {' -> '.join(chain)}")
    if not chains:
        lines.append("  none")
    for title, table in (("Data routes", model.routes.data), ("Flow-control routes", model.routes.fc)):
        lines.append(f"{title}:")
        rows = [f"  {s:>3}  -> {' '.join(str(d) for d in dsts)}" for s, dsts in sorted(table.items()) if dsts]
        lines.extend(rows or ["  none"])
    for drv, dargs in sorted(model.driver_args.items()):
        lines.append(f"Driver {drv}: {' '.join(dargs)}")
    if model.required is not None:
        lines.append(f"Health checks: {' '.join(map(str, model.required)) or 'none'}")
    if model.http:
        lines.append(f"HTTP: {' '.join(model.http)}")
    return "\n".join(lines) + "\n"


def _toml(value: str | bool | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # a TOML basic string


def _hub_section(model: HubModel) -> list[str]:
    out = []
    if model.report_interval_s != 10.0:
        out.append(f"report-interval = {model.report_interval_s:g}")
    if model.status_interval_s:
        out.append(f"status-interval = {model.status_interval_s:g}")
    if model.verbosity:
        out.append(f'log-level = "{"debug" if model.verbosity > 0 else "warning"}"')
    out += [_key_value(arg) for arg in model.http]
    return ["[hub]", *out, ""] if out else []


def _key_value(arg: str) -> str:
    """``key = value`` for a command-line option (``--http-allow=10.0.0.0/8``)."""
    name, sep, value = arg.partition("=")
    return f"{name[2:]} = {_toml(value if sep else True)}"


def model_toml(model: HubModel, comment: str = "") -> str:
    """A config file (one free-form group named main) that compiles to `model`."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    if lines:
        lines.append("")
    lines += _hub_section(model)
    keys = _filter_keys(model)
    lines.append("[group.main]")
    data_pairs = {(s, d) for s, ds in model.routes.data.items() for d in ds}
    routes = [f"{s}:{','.join(str(d) for d in ds if d != s)}" for s, ds in sorted(model.routes.data.items())]
    routes = [r for r in routes if not r.endswith(":")]
    echo = [str(s) for s, d in sorted(data_pairs) if s == d]
    default_fc = {(b, a) for (a, b) in data_pairs if (b, a) in data_pairs}
    fc_pairs = {(s, d) for s, ds in model.routes.fc.items() for d in ds}
    if routes:
        lines.append(f"route = [{', '.join(_toml(r) for r in routes)}]")
    if echo:
        lines.append(f"echo-route = [{', '.join(_toml(e) for e in echo)}]")
    if not data_pairs and len(model.ports) > 1:
        lines.append('no-route = ["All:All"]')  # no defaults either
    extra = sorted(fc_pairs - default_fc)
    if extra:
        lines.append(f"fc-route = [{', '.join(_toml(f'{s}:{d}') for s, d in extra)}]")
    missing = sorted(default_fc - fc_pairs)
    if missing:
        lines.append(f"no-default-fc-route = [{', '.join(_toml(f'{s}:{d}') for s, d in missing)}]")
    links: dict[str, list[str]] = {}
    for dargs in model.driver_args.values():
        for arg in dargs:
            opt, _, text = arg.partition("=")
            links.setdefault(opt[2:], []).append(text)
    for key, values in links.items():
        lines.append(f"{key} = [{', '.join(_toml(v) for v in values)}]")
    if model.required is not None:
        lines.append(f"required = [{', '.join(_toml(str(i)) for i in model.required)}]")
    lines.append("")
    for i, p in enumerate(model.ports):
        lines.append("[[group.main.port]]")
        lines.append(f"driver = {_toml(p.driver)}")
        lines.append(f"path = {_toml(p.path)}")
        for name, value in p.options:
            lines.append(f"{name[2:]} = {_toml(True if value is None else value)}")
        chain = []
        for a in model.chain(i):
            how = "" if a.use_in and a.use_out else ".IN" if a.use_in else ".OUT"
            chain.append(f"{keys[a.filter]}{how}{_sources(a.sources)}")
        if chain:
            lines.append(f"filters = [{', '.join(_toml(c) for c in chain)}]")
        lines.append("")
    for k, f in enumerate(model.filters):
        lines.append(f"[group.main.filter.{_toml(keys[k])}]")
        if f.module != keys[k]:
            lines.append(f"module = {_toml(f.module)}")
        if f.name != keys[k]:
            lines.append(f"name = {_toml(f.name)}")
        lines += [_key_value(arg) for arg in (*f.args, *(option_text(o) for o in f.sticky))]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _filter_keys(model: HubModel) -> list[str]:
    """A unique key for each filter (its name, numbered when names repeat)."""
    keys: list[str] = []
    for f in model.filters:
        key, n = f.name, 2
        while key in keys:
            key, n = f"{f.name}-{n}", n + 1
        keys.append(key)
    return keys
