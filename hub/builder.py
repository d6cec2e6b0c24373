"""The one place a `HubModel` becomes a `Hub`: drivers, ports, filters, routes.

Building creates ports and filter instances but opens nothing: ports open,
listen or connect only when the hub starts. So building is also how a config
is checked (``--check-config``): every driver validates its ports' paths and
options exactly as it would for a run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .chain import Factory
from .errors import UsageError
from .filter import Filter, FilterContext
from .hub import Hub
from .model import HubModel, option_text
from .options import parse_options
from .port import Driver
from .registry import DRIVERS, FILTERS, PluginError, Registry

__all__ = ["build_hub", "configure_filter"]


def build_hub(model: HubModel, loop: asyncio.AbstractEventLoop, registry: Registry) -> tuple[Hub, list[str]]:
    """Create the Hub `model` describes; return it with the negotiation warnings.

    Raises UsageError naming the argument (and its file and line) that is wrong.
    """
    hub = Hub(loop)
    drivers: dict[str, Driver] = {}

    def driver(name: str) -> Driver:
        if name not in drivers:
            try:
                cls = registry.load(DRIVERS, name)
            except PluginError:
                raise UsageError(None, f"No driver {name}") from None
            d = cls(hub)
            drivers[name] = d
            for text in model.driver_args.get(name, ()):
                d.config_arg(text)
        return drivers[name]

    for name in model.driver_args:
        driver(name)
    for index, spec in enumerate(model.ports):
        try:
            d = driver(spec.driver)
            d.options = dict(d.DEFAULTS)
            for opt in spec.options:
                d.config_arg(option_text(opt))
            port = d.create_port(index, spec.path, dict(d.options))
            port.kind = d.NAME or spec.driver
            hub.add_port(port)
        except UsageError as exc:
            raise exc.with_source(spec.arg.text or spec.path, spec.arg.source) from None
    factories: list[Factory] = []
    for fspec in model.filters:
        try:
            cls = registry.load(FILTERS, fspec.module)
            sticky: dict[str, Any] = {}
            for opt in fspec.sticky:
                sticky.update(parse_options(cls.GLOBAL_USAGE, [option_text(opt)]))
            factories.append(_factory(cls, configure_filter(cls, fspec.name, list(fspec.args), sticky)))
        except UsageError as exc:
            raise exc.with_source(fspec.arg.text, fspec.arg.source) from None
    for att in model.attachments:
        name = model.filters[att.filter].name
        hub.attach(att.port, name, factories[att.filter], att.use_in, att.use_out, att.sources)
    for d in drivers.values():
        d.config_stop(hub.ports)
    if model.required is not None:
        for port in hub.ports:
            port.required = port.index in model.required
    hub.set_routes(model.routes)
    for d in drivers.values():
        d.routes_ready(model.routes.data)
    return hub, hub.negotiate()


def configure_filter(cls: type[Filter], name: str, argv: list[str], sticky: dict[str, Any]) -> Any:
    """Parse a filter's arguments and return its configuration. Raises UsageError."""
    try:
        options = parse_options(cls.USAGE, argv)
        return cls.configure(options, sticky)
    except UsageError as exc:
        bad = f" '{exc.arg}'" if exc.arg is not None else ""
        raise UsageError(None, f"Can't create filter {name}: {exc.text}{bad}") from None


def _factory(cls: type[Filter], config: Any) -> Factory:
    """Makes instances of one configured filter: one per port it is on, and one
    per session of a port that serves many (Hub.session_chain)."""

    def make(ctx: FilterContext) -> Filter:
        return cls(ctx, config)

    return make
