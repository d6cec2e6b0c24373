"""The hub's data path shortcuts (issue 15) keep what the long way does.

Data without filters on its way skips the message object (Hub.received_data); a
port whose driver reports its high-water mark skips queued_bytes() until it is
paused; every port type runs its own copy of the data-path methods.
"""

from __future__ import annotations

from typing import Any

from hub.messages import LineData
from hub.port import Drop, Port
from hub.tap import Direction

from .fakes import FakePort, new_loop, registry
from .test_tcp import run

__all__ = ["run"]  # the fixture, imported for the test here


def make(argv: list[str]) -> Any:
    from hub.cli import build

    return build(argv, new_loop(), registry())


class Watermarked(FakePort):
    """A port with a queue that pauses itself above high water, as tcp and serial do."""

    reports_high_water = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.queue = 0
        self.asked = 0

    def send_data(self, data: bytes) -> None:
        super().send_data(data)
        self.queue += len(data)
        if self.queue > self.high_water:
            self.set_write_paused(True)

    def queued_bytes(self) -> int:
        self.asked += 1
        return self.queue


def test_received_data_is_received_of_one_line() -> None:
    long_way, short_way = make(["a", "b"]).hub, make(["a", "b"]).hub
    long_way.received(0, [LineData(b"x"), LineData(b"y")])  # two messages: the chain
    short_way.received_data(0, b"x")
    short_way.received(0, [LineData(b"y")])  # one: the fast path
    for hub in (long_way, short_way):
        b = hub.ports[1]
        assert b.written == [LineData(b"x"), LineData(b"y")]
        assert (b.msgs_out, b.bytes_out) == (2, 2)


def test_emit_data_counts_taps_and_reaches_the_destination() -> None:
    hub = make(["a", "b"]).hub
    a, b = hub.ports
    seen: list[tuple[Direction, bytes]] = []

    class Tap:
        def data(self, direction: Direction, data: bytes, session: Any, src: Any = None) -> None:
            seen.append((direction, data))

    for port in (a, b):
        port.taps = Tap()  # type: ignore[assignment]
    a.emit_data(b"hello")
    assert b.written == [LineData(b"hello")]
    assert (a.bytes_in, a.msgs_in, b.bytes_out, b.msgs_out) == (5, 1, 5, 1)
    assert seen == [(Direction.IN, b"hello"), (Direction.OUT, b"hello")]


def test_a_port_without_received_data_in_its_hub_gets_messages() -> None:
    got: list[Any] = []

    class OldHub:
        loop = new_loop()

        def received(self, port: int, msgs: list[Any]) -> None:
            got.append((port, msgs))

    FakePort(OldHub(), 3, "p", {}).emit_data(b"z")
    assert got == [(3, [LineData(b"z")])]


def test_a_watermarked_port_asks_for_its_queue_only_while_paused() -> None:
    hub = make(["a", "b"]).hub
    port = Watermarked(hub, 1, "w", {"--write-limit": 300})
    port.write_data(b"x" * 150, 0)  # below high water (200): nobody asks
    assert port.asked == 0 and not port._write_paused
    port.write_data(b"x" * 100, 0)  # 250 queued: above high water, the port paused
    assert port._write_paused and port.asked == 0
    port.write_data(b"x" * 100, 0)  # paused: asked, 250 <= 300, accepted
    port.write_data(b"x" * 100, 0)  # 350 > 300 and no flow-control route: lost
    assert port.asked == 2 and port.queue == 350
    assert port.drops == {Drop.QUEUE_FULL: 100} and port.bytes_out == 350


def test_other_ports_ask_for_their_queue_every_time() -> None:
    hub = make(["a", "b"]).hub
    port = hub.ports[1]
    asked = []
    port.queued_bytes = lambda: asked.append(1) or 0  # type: ignore[method-assign]
    port.write_data(b"x", 0)
    port.write_data(b"y", 0)
    assert len(asked) == 2


def test_each_port_type_runs_its_own_copy_of_the_data_path() -> None:
    from drivers.serial import SerialPort
    from drivers.tcp import TcpPort

    for name in ("emit_data", "deliver_data", "write_data"):
        # (code objects compare by value: count distinct objects)
        codes = {
            id(getattr(cls, name).__code__) for cls in (Port, FakePort, Watermarked, SerialPort, TcpPort)
        }
        assert len(codes) == 5, name
        assert getattr(TcpPort, name).__doc__ == getattr(Port, name).__doc__


def test_tcp_data_in_keeps_an_idle_timeout_away(run: Any) -> None:
    """The protocol's shortcut to emit_data still touches --idle-timeout's clock."""
    import asyncio

    from drivers.tcp import State
    from tests.unit.test_tcp import FakeHub, close_all, close_writer, make_ports, open_client, port_of

    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "--idle-timeout=0.6", "*0")
        (port,) = ports
        try:
            port.start()
            _, writer = await open_client(port_of(port.listen_address))
            await hub.wait_for(lambda: port.state is State.CONNECTED, "a session")
            for _ in range(8):  # 8 x 0.15 s of data in only: twice the timeout
                writer.write(b"x")
                await asyncio.sleep(0.15)
            assert port.state is State.CONNECTED
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)
