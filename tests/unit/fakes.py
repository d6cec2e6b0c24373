"""A fake driver and registry for core tests (no I/O)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from hub.caps import In, Out
from hub.errors import UsageError
from hub.filter import Filter
from hub.messages import LineData
from hub.port import Driver, Port
from hub.registry import Registry


class FakePort(Port):
    provides = In.CTS | In.DSR | In.LBR
    accepts = Out.DTR | Out.RTS | Out.SET_BR

    def __init__(self, hub, index, name, options):
        super().__init__(hub, index, name, options.get("--write-limit", 1000))
        self.options = options
        self.written = []
        self.started_ = False

    def start(self):
        self.started_ = True

    def send_data(self, data):
        self.written.append(LineData(data))

    def write_signal(self, msg):
        self.written.append(msg)


class FakeDriver(Driver):
    NAME = "fake"
    DESCRIPTION = "Fake driver"
    USAGE = """Usage: fake [options]

Options:
  --speed=<n>        Sticky speed. Default 1.
  --write-limit=<s>  Queue limit.
"""
    DEFAULTS = {"--speed": 1}

    def convert_option(self, name, value):
        if not str(value).isdigit():
            raise UsageError(None, f"Invalid {name} value")
        return int(value)

    def create_port(self, index, path, options):
        if path.startswith("bad"):
            raise UsageError(path, "Invalid address")
        return FakePort(self.hub, index, f"{path}({index})", options)


class TagFilter(Filter):
    """Appends its name to data on the way in and out, to show filter order."""

    NAME = "mark"
    DESCRIPTION = "Marks data"
    USAGE = """Usage: mark [options]

Options:
  --needs-cts  Consume CTS from the sources.
"""

    def __init__(self, ctx, config):
        super().__init__(ctx, config)
        if config.get("--needs-cts"):
            self.needs = In.CTS

    def on_in(self, msg, out, echo):
        out.append(LineData(msg.data + f"<{self.ctx.name}".encode()) if type(msg) is LineData else msg)

    def on_out(self, msg, src, out):
        out.append(LineData(msg.data + f">{self.ctx.name}".encode()) if type(msg) is LineData else msg)


class _EP:
    def __init__(self, name, obj):
        self.name = name
        self._obj = obj
        self.dist = SimpleNamespace(name="tests")

    def load(self):
        return self._obj


class _EPs:
    def __init__(self, groups):
        self._groups = groups

    def select(self, group):
        return [_EP(n, o) for n, o in self._groups.get(group, {}).items()]


def registry(**extra_filters):
    from filters.echo import EchoFilter
    from filters.trace import TraceFilter

    filters = {"mark": TagFilter, "echo": EchoFilter, "trace": TraceFilter, **extra_filters}
    return Registry(
        _EPs({"hub4com.drivers": {"serial": FakeDriver, "fake": FakeDriver}, "hub4com.filters": filters})
    )


def new_loop():
    return asyncio.new_event_loop()
