"""Tests of the connector driver: links, forwarding, flow control, loops."""

from __future__ import annotations

import asyncio

import pytest

from drivers.connector import ConnectorDriver, ConnectorPort, find_loop
from hub.errors import UsageError
from hub.hub import Hub
from hub.messages import Connect, FlowControl, LineData, Message, SetBaud
from hub.options import option_names
from hub.port import Port
from hub.routes import RouteBuilder


class RecordingHub:
    """Records what ports report (no routing)."""

    def __init__(self) -> None:
        self.loop = None
        self.log: list[tuple[int, Message]] = []

    def received(self, port: int, msgs: list[Message]) -> None:
        self.log.extend((port, m) for m in msgs)

    def of(self, port: int) -> list[Message]:
        return [m for p, m in self.log if p == port]


def build(*args: str, hub: object = None) -> tuple[ConnectorDriver, list[ConnectorPort]]:
    """Interpret arguments as the hub does: options anywhere, then config_stop."""
    drv = ConnectorDriver(hub or RecordingHub())  # type: ignore[arg-type]
    ports: list[ConnectorPort] = []
    for arg in args:
        if arg.startswith("--"):
            assert drv.config_arg(arg)
        else:
            ports.append(drv.create_port(len(ports), arg, dict(drv.options)))
    drv.config_stop(list[Port](ports))
    return drv, ports


def test_usage_declares_the_options() -> None:
    assert option_names(ConnectorDriver.USAGE) == {"--connect", "--bi-connect"}


def test_display_name_is_the_path() -> None:
    _, ports = build("CNCB0-muxA", "b")
    assert [p.name for p in ports] == ["CNCB0-muxA(0)", "b(1)"]


def test_data_written_to_r_is_read_on_l() -> None:
    hub = RecordingHub()
    _, (r, lp) = build("--connect=R:L", "R", "L", hub=hub)
    r.write_data(b"hello", 7)
    assert hub.log == [(1, LineData(b"hello"))]
    # Not the other way round.
    lp.write_data(b"back", 7)
    assert hub.log == [(1, LineData(b"hello"))]
    assert lp.bytes_in == 5 and r.bytes_out == 5


def test_links_can_come_before_or_after_the_ports() -> None:
    hub = RecordingHub()
    _, (a, _b, _c) = build("A", "--CONNECT=A:B", "B", "C", "--connect=A:C", hub=hub)
    a.write_data(b"x", 0)
    assert hub.log == [(1, LineData(b"x")), (2, LineData(b"x"))]


def test_lists_link_every_r_to_every_l() -> None:
    hub = RecordingHub()
    _, (a, b, _c, _d) = build("--connect=A,B:C,D", "A", "B", "C", "D", hub=hub)
    a.write_data(b"1", 9)
    b.write_data(b"2", 9)
    assert hub.log == [(2, LineData(b"1")), (3, LineData(b"1")), (2, LineData(b"2")), (3, LineData(b"2"))]


def test_bi_connect_links_both_ways() -> None:
    hub = RecordingHub()
    _, (a, b) = build("--bi-connect=A:B", "A", "B", hub=hub)
    a.write_data(b"ab", 0)
    b.write_data(b"ba", 0)
    assert hub.log == [(1, LineData(b"ab")), (0, LineData(b"ba"))]


def test_repeated_links_do_not_duplicate_data() -> None:
    hub = RecordingHub()
    _, (a, _b) = build("--connect=A:B", "--bi-connect=A:B", "A", "B", hub=hub)
    a.write_data(b"once", 0)
    assert hub.log == [(1, LineData(b"once"))]


def test_connect_transitions_are_forwarded() -> None:
    hub = RecordingHub()
    _, (r, _lp) = build("--connect=R:L", "R", "L", hub=hub)
    for on in (True, True, False, False, False, True):
        r.write(Connect(on), 5)
    assert hub.of(1) == [Connect(True), Connect(False), Connect(True)]
    assert hub.of(0) == []


def test_xoff_written_to_l_is_read_on_r() -> None:
    hub = RecordingHub()
    _, (r, lp, _) = build("--connect=R:L,M", "R", "L", "M", hub=hub)
    lp.write(FlowControl(True), 3)
    lp.write(FlowControl(True), 4)  # counted, not forwarded again
    assert hub.log == [(0, FlowControl(True))]
    lp.write(FlowControl(False), 3)
    assert hub.log == [(0, FlowControl(True))]
    lp.write(FlowControl(False), 4)
    assert hub.log == [(0, FlowControl(True)), (0, FlowControl(False))]
    # An XOFF on R itself goes nowhere: R has no data link pointing at it.
    r.write(FlowControl(True), 1)
    assert hub.log == [(0, FlowControl(True)), (0, FlowControl(False))]


def test_other_messages_are_ignored_and_nothing_is_queued() -> None:
    hub = RecordingHub()
    _, (r, _lp) = build("--connect=R:L", "R", "L", hub=hub)
    r.write(SetBaud(9600), 1)
    assert hub.log == []
    assert r.queued_bytes() == 0
    r.write_data(b"", 1)
    assert hub.log == []


@pytest.mark.parametrize(
    ("args", "bad_arg", "text"),
    [
        (["--connect=A:X", "A"], "--connect=A:X", "Can't find fake port X"),
        (["--bi-connect=Y:A", "A"], "--bi-connect=Y:A", "Can't find fake port Y"),
        (["--connect=a:A", "A"], "--connect=a:A", "Can't find fake port a"),  # exact names
    ],
)
def test_unknown_name(args: list[str], bad_arg: str, text: str) -> None:
    with pytest.raises(UsageError) as info:
        build(*args)
    assert info.value.text == text
    assert info.value.arg == bad_arg


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        ("--connect=AB", "Missing ':' in link"),
        ("--connect=A,:B", "Empty port name in link"),
        ("--connect=A:", "Empty port name in link"),
        ("--bi-connect=:B", "Empty port name in link"),
        ("--connect", "This option needs a value: write --connect=<value>"),
    ],
)
def test_bad_link_syntax(arg: str, text: str) -> None:
    drv = ConnectorDriver(RecordingHub())  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        drv.config_arg(arg)
    assert info.value.text == text
    assert info.value.arg == arg


def test_other_arguments_are_not_ours() -> None:
    drv = ConnectorDriver(RecordingHub())  # type: ignore[arg-type]
    assert not drv.config_arg("--route=0:1")
    assert not drv.config_arg("--write-limit=5")


def test_duplicate_port_name() -> None:
    with pytest.raises(UsageError, match="Duplicate connector port name in 'A'"):
        build("A", "A")


# ---- loop detection ---------------------------------------------------------------


def test_route_back_to_r_is_a_loop() -> None:
    drv, _ = build("--connect=R:L", "R", "L")
    drv.routes_ready({0: (), 1: ()})  # no routes: fine
    with pytest.raises(UsageError) as info:
        drv.routes_ready({0: (), 1: (0,)})  # read on L goes to R, which feeds L
    assert info.value.text == "Loop detected on link R->L"
    assert str(info.value) == "Loop detected on link R->L"


def test_bi_connect_with_default_routes_is_a_loop() -> None:
    drv, _ = build("--bi-connect=A:B", "A", "B")
    routes = RouteBuilder().finish(2)
    with pytest.raises(UsageError, match="Loop detected on link"):
        drv.routes_ready(routes.data)


def test_loop_through_other_ports_and_two_links() -> None:
    # 0:A --link--> 1:B --route--> 2:C --link--> 3:D --route--> 0:A
    drv, _ = build("--connect=A:B", "--connect=C:D", "A", "B", "C", "D")
    with pytest.raises(UsageError, match=r"Loop detected on link (A->B|C->D)"):
        drv.routes_ready({0: (), 1: (2,), 2: (), 3: (0,)})
    drv.routes_ready({0: (), 1: (2,), 2: (), 3: ()})


def test_echo_route_on_a_linked_port_is_a_loop() -> None:
    drv, _ = build("--connect=A:A", "A")
    drv.routes_ready({0: ()})
    with pytest.raises(UsageError, match="Loop detected on link A->A"):
        drv.routes_ready({0: (0,)})


def test_chain_without_cycle() -> None:
    # The multiplexer shape: a serial port (0, not a connector here) feeds A,
    # A's link gives data to B, B routes to port 3 and back to 0.
    drv, ports = build("--bi-connect=A:B", "A", "B")
    extra = {9: (0,), 0: (), 1: (9,)}
    assert find_loop(ports, extra) is None
    drv.routes_ready(extra)


# ---- with the real hub: data and XOFF along routes ----------------------------------


class SinkPort(Port):
    """A port that records what is written to it and can be made to send."""

    def __init__(self, hub: Hub, index: int) -> None:
        super().__init__(hub, index, f"sink({index})")
        self.written: list[Message] = []

    def send_data(self, data: bytes) -> None:
        self.written.append(LineData(data))

    def write(self, msg: Message, src: int) -> None:
        if type(msg) is not LineData:
            self.written.append(msg)
        super().write(msg, src)


def test_through_the_hub() -> None:
    loop = asyncio.new_event_loop()
    try:
        hub = Hub(loop)
        src = SinkPort(hub, 0)
        hub.add_port(src)
        drv = ConnectorDriver(hub)
        assert drv.config_arg("--connect=R:L")
        r = drv.create_port(1, "R", {})
        lp = drv.create_port(2, "L", {})
        dst = SinkPort(hub, 3)
        for p in (r, lp, dst):
            hub.add_port(p)
        drv.config_stop(hub.ports)
        b = RouteBuilder()
        b.bi_route([0], [1])  # source <-> R (gives the fc route R -> source)
        b.bi_route([2], [3])  # L <-> destination
        routes = b.finish(4)
        hub.set_routes(routes)
        drv.routes_ready(routes.data)
        # Data from the source reaches the destination through R -> L.
        src.emit_data(b"payload")
        assert dst.written == [LineData(b"payload")]
        # The destination's XOFF reaches L, is re-read on R and throttles the source.
        dst.emit([FlowControl(True)])
        assert src.written == [FlowControl(True)]
        assert src.xoff_count == 1
        dst.emit([FlowControl(False)])
        assert src.written == [FlowControl(True), FlowControl(False)]
        assert src.xoff_count == 0
        # CONNECT from the source reaches the destination as CONNECT from L.
        src.emit([Connect(True)])
        assert dst.written == [LineData(b"payload"), Connect(True)]
    finally:
        loop.close()
