"""The connector driver: fake ports linked to each other (hub4com spec 3.3).

A connector port has no I/O. Data written to a port R appears as data read
from every port L linked from R (``--connect=R:L``); CONNECT requests written to
R are forwarded to each L as CONNECT reports (transitions only). Each data link
R->L carries flow control back: an XOFF/XON written to L (transitions only) is
read on R, so that it travels R's flow-control routes to R's data sources.

Its use is to chain two filter sets, for example tag filters on one connector
port and telnet filters on the other (multiplexer). Names are matched exactly.

hub4com finds loops with a LOOP_TEST message at start-up; here the connector
looks at the final data routes (`routes_ready`) instead: a loop is data read on
a connector port L that, through hub routes and connector links, comes back to
be read on L again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.errors import UsageError
from hub.messages import Connect, FlowControl
from hub.options import match_option, parse_options
from hub.port import Driver, HubLink, Port

__all__ = ["USAGE", "ConnectorDriver", "ConnectorPort"]

USAGE = """\
Usage: connector [options]

The port path is a name of your choice, e.g. CNCB0-muxA. The links below are
resolved after all arguments are read, so they may stand anywhere and may be
given several times.

Options:
  --connect=<LstR>:<LstL>     Data written to any port in <LstR> is read from
                              every port in <LstL>; XOFF/XON written to a port in
                              <LstL> is read from the linked ports in <LstR>.
                              Both lists are comma-separated port names.
  --bi-connect=<LstR>:<LstL>  The same in both directions.
"""


class ConnectorPort(Port):
    """A connector port, named ``<path>(<index>)``."""

    def __init__(self, hub: HubLink, index: int, path: str):
        super().__init__(hub, index, f"{path}({index})")
        self.path = path
        #: Data links from this port: data written here is read on these ports.
        self.data_links: list[ConnectorPort] = []
        #: Flow-control links: XOFF/XON written here is read on these ports.
        self.fc_links: list[ConnectorPort] = []

    def __repr__(self) -> str:
        links = ",".join(p.path for p in self.data_links) or "-"
        return (
            f"<ConnectorPort {self.name} ->{links} counter={self.connection_counter} xoff={self.xoff_count}>"
        )

    def status(self) -> str:
        return f"linked to {', '.join(p.name for p in self.data_links) or 'nothing'}"

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap["peers"] = [p.name for p in self.data_links]
        return snap

    def send_data(self, data: bytes) -> None:
        for peer in self.data_links:
            peer.emit_data(data)

    def on_connect_request(self, up: bool) -> None:
        for peer in self.data_links:
            peer.emit([Connect(up)])

    def pause_reading(self) -> None:
        for peer in self.fc_links:
            peer.emit([FlowControl(True)])

    def resume_reading(self) -> None:
        for peer in self.fc_links:
            peer.emit([FlowControl(False)])


@dataclass(frozen=True, slots=True)
class _LinkOption:
    """One --connect/--bi-connect argument, resolved in config_stop."""

    arg: str
    both_ways: bool
    sources: list[str]
    targets: list[str]


def _names(arg: str, text: str) -> list[str]:
    names = text.split(",")
    if "" in names:
        raise UsageError(arg, "Empty port name in link")
    return names


def _link(source: ConnectorPort, target: ConnectorPort) -> None:
    if target not in source.data_links:
        source.data_links.append(target)
    if source not in target.fc_links:
        target.fc_links.append(source)


class ConnectorDriver(Driver):
    """Creates ConnectorPorts and links them after all arguments are read."""

    NAME = "connector"
    DESCRIPTION = "Connectable fake port driver"
    USAGE = USAGE
    GLOBAL_OPTIONS = frozenset({"--connect", "--bi-connect"})

    def __init__(self, hub: HubLink):
        super().__init__(hub)
        self._links: list[_LinkOption] = []
        self._ports: dict[str, ConnectorPort] = {}

    def config_arg(self, arg: str) -> bool:
        """Accumulate --connect/--bi-connect (each occurrence adds links).

        Raises UsageError for a value without ':' or with an empty name.
        """
        name = match_option(arg, self._names)
        if name is None:
            return False
        value = parse_options(self.USAGE, [arg], self._names)[name]
        assert isinstance(value, str)
        sources, sep, targets = value.partition(":")
        if not sep:
            raise UsageError(arg, "Missing ':' in link")
        self._links.append(
            _LinkOption(arg, name == "--bi-connect", _names(arg, sources), _names(arg, targets))
        )
        return True

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> ConnectorPort:
        """Create the port named `path`. Raises UsageError for an empty or duplicate name."""
        if not path:
            raise UsageError(path, "Empty connector port name")
        if path in self._ports:
            raise UsageError(path, "Duplicate connector port name")
        port = ConnectorPort(self.hub, index, path)
        self._ports[path] = port
        return port

    def config_stop(self, ports: list[Port]) -> None:
        """Resolve the links. Raises UsageError("Can't find fake port X")."""
        for link in self._links:
            sources = [self._find(link.arg, n) for n in link.sources]
            targets = [self._find(link.arg, n) for n in link.targets]
            for r in sources:
                for lp in targets:
                    _link(r, lp)
                    if link.both_ways:
                        _link(lp, r)

    def _find(self, arg: str, name: str) -> ConnectorPort:
        port = self._ports.get(name)
        if port is None:
            raise UsageError(arg, f"Can't find fake port {name}")
        return port

    def routes_ready(self, data_routes: dict[int, tuple[int, ...]]) -> None:
        """Refuse a data loop through connector links. Raises UsageError."""
        loop = find_loop(list(self._ports.values()), data_routes)
        if loop is not None:
            r, lp = loop
            raise UsageError(None, f"Loop detected on link {r.path}->{lp.path}")


def find_loop(
    ports: list[ConnectorPort], data_routes: dict[int, tuple[int, ...]]
) -> tuple[ConnectorPort, ConnectorPort] | None:
    """A link R->L that closes a loop, or None.

    Data read on a connector port A is written to each route destination of A;
    a destination R that is a connector port makes it read on each L of R's
    links. A loop is a cycle of such steps (every step after the first lands on
    a connector port, so the cycle consists of connector ports only).
    """
    by_index = {p.index: p for p in ports}
    # "read on A" -> [(R, L), ...]: the links data read on A crosses next.
    steps: dict[int, list[tuple[ConnectorPort, ConnectorPort]]] = {}
    for a in sorted(by_index):
        steps[a] = [
            (by_index[d], lp)
            for d in data_routes.get(a, ())
            if d in by_index
            for lp in by_index[d].data_links
        ]
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(by_index, white)
    for root in sorted(by_index):
        if colour[root] != white:
            continue
        colour[root] = grey
        stack = [(root, iter(steps[root]))]
        while stack:
            node, edges = stack[-1]
            for r, lp in edges:
                if colour[lp.index] == grey:
                    return r, lp
                if colour[lp.index] == white:
                    colour[lp.index] = grey
                    stack.append((lp.index, iter(steps[lp.index])))
                    break
            else:
                colour[node] = black
                stack.pop()
    return None
