"""Tests of the tcp driver on real loopback sockets (asyncio and uvloop loops)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from drivers import _netopts, tcp
from drivers.tcp import (
    Reconnect,
    State,
    TcpAddress,
    TcpDriver,
    TcpPort,
    parse_address,
)
from hub import netsec as _netsec
from hub.errors import PortError, UsageError
from hub.messages import Connect, FlowControl, LineData, Message
from hub.options import option_names

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/POSIX
    uvloop = None

DEADLINE_S = 5.0
#: How long a negative check ("nothing happened") waits.
SETTLE_S = 0.2


# ---- helpers -----------------------------------------------------------------


class FakeHub:
    """Records what ports report; tests wait on it with a deadline."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.log: list[tuple[int, Message]] = []
        self._changed = asyncio.Event()

    def received(self, port: int, msgs: list[Message]) -> None:
        self.log.extend((port, m) for m in msgs)
        self._changed.set()

    def messages(self, port: int, kind: type | None = None) -> list[Message]:
        return [m for p, m in self.log if p == port and (kind is None or type(m) is kind)]

    def data(self, port: int) -> bytes:
        return b"".join(m.data for m in self.messages(port, LineData))  # type: ignore[union-attr]

    def connects(self, port: int) -> list[bool]:
        return [m.on for m in self.messages(port, Connect)]  # type: ignore[union-attr]

    async def wait_for(self, pred: Callable[[], bool], what: str = "", timeout: float = DEADLINE_S) -> None:
        deadline = self.loop.time() + timeout
        while not pred():
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what or pred}; log: {self.log}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


LOOPS = ["asyncio", "uvloop"] if uvloop is not None else ["asyncio"]


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Awaitable[Any]]], Any]:
    """Run an async test body on a fresh loop of each kind, with an overall deadline."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def _run(body: Callable[[], Awaitable[Any]]) -> Any:
        async def guarded() -> Any:
            return await asyncio.wait_for(body(), 30)

        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(guarded())

    return _run


def make_ports(hub: FakeHub, *args: str, driver: TcpDriver | None = None) -> list[TcpPort]:
    """Parse a command line fragment the way the hub does: options are sticky."""
    drv = driver or TcpDriver(hub)
    ports = []
    for arg in args:
        if arg.startswith("--"):
            assert drv.config_arg(arg)
        else:
            ports.append(drv.create_port(len(ports), arg, dict(drv.options)))
    return ports


def port_of(address: str | None) -> int:
    assert address is not None
    return int(address.rsplit(":", 1)[1])


async def open_client(
    port: int, host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(host, port), DEADLINE_S)


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(n), DEADLINE_S)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await asyncio.wait_for(writer.wait_closed(), DEADLINE_S)


def close_all(ports: list[TcpPort]) -> None:
    for p in ports:
        p.close()


class Server:
    """A plain asyncio server standing in for a remote peer of a client port."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.transports: list[asyncio.Transport] = []
        self.eof = False
        self.server: asyncio.Server | None = None
        self.port = 0
        self._changed = asyncio.Event()

    async def start(self, port: int = 0) -> int:
        outer = self

        class Proto(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                outer.transports.append(transport)  # type: ignore[arg-type]
                outer._changed.set()

            def data_received(self, data: bytes) -> None:
                outer.received += data
                outer._changed.set()

            def eof_received(self) -> bool:
                outer.eof = True
                outer._changed.set()
                return True

        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(Proto, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for t in self.transports:
            t.close()
        self.transports.clear()
        await asyncio.wait_for(self.server.wait_closed(), DEADLINE_S)

    async def wait_for(self, pred: Callable[[], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while not pred():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"server timed out waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


# ---- address and option parsing ----------------------------------------------

VALID_ADDRESSES = [
    ("7000", TcpAddress(None, 7000)),
    ("*7000", TcpAddress(None, 7000, permanent=True)),
    ("!7000", TcpAddress(None, 7000, reject=True)),
    ("/7000", TcpAddress(None, 7000, busy_until_zero=True)),
    ("/!*7000/3", TcpAddress(None, 7000, True, True, True, 3)),
    ("*7000/-2", TcpAddress(None, 7000, permanent=True, priority=-2)),
    ("7000/+4", TcpAddress(None, 7000, priority=4)),
    ("telnet", TcpAddress(None, 23)),
    ("0", TcpAddress(None, 0)),
    ("localhost:7000", TcpAddress("localhost", 7000)),
    ("*127.0.0.1:telnet", TcpAddress("127.0.0.1", 23, permanent=True)),
    ("[::1]:7000", TcpAddress("::1", 7000)),
    ("*[fe80::1%eth0]:7000", TcpAddress("fe80::1%eth0", 7000, permanent=True)),
    ("gps-1.example.org.:65535", TcpAddress("gps-1.example.org.", 65535)),
    ("!/host:1", TcpAddress("host", 1, reject=True, busy_until_zero=True)),
]

INVALID_ADDRESSES = [
    ("", "Invalid address: no port number"),
    ("*", "Invalid address: no port number"),
    ("no-such-service-x", "Invalid address: 'no-such-service-x' is not a port number or service name"),
    ("70000", "Invalid address: port 70000 is out of range (0 to 65535)"),
    (":7000", "Invalid address"),
    ("host:", "Invalid address: no port number"),
    ("host:0", "Invalid address: port 0 is out of range (1 to 65535)"),
    ("host:65536", "Invalid address: port 65536 is out of range (1 to 65535)"),
    ("host:7000/2", "Invalid address: '7000/2' is not a port number or service name"),
    ("host:no-such-service-x", "Invalid address: 'no-such-service-x' is not a port number or service name"),
    ("bad host:7000", "Invalid address"),
    ("-host:7000", "Invalid address"),
    ("1.2.3.456:7000", "Invalid address"),
    ("::1:7000", "Invalid address"),
    ("[::1]", "Invalid address"),
    ("[::1]7000", "Invalid address"),
    ("[::1:7000", "Invalid address"),
    ("[127.0.0.1]:7000", "Invalid address"),
    ("[zz::1]:7000", "Invalid address"),
    ("7000/", "Invalid priority"),
    ("7000/x", "Invalid priority"),
    ("7000/1/2", "Invalid priority"),
    ("7000/1.5", "Invalid priority"),
]


@pytest.mark.parametrize(("path", "expected"), VALID_ADDRESSES)
def test_parse_valid_address(path: str, expected: TcpAddress) -> None:
    assert parse_address(path) == expected


@pytest.mark.parametrize(("path", "text"), INVALID_ADDRESSES)
def test_parse_invalid_address(path: str, text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_address(path)
    assert info.value.arg == path
    assert info.value.text == text
    assert str(info.value) == f"{text} in '{path}'"


def test_create_port_raises_for_bad_address() -> None:
    drv = TcpDriver(hub=None)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="Invalid priority in '7000/x'"):
        drv.create_port(0, "7000/x", dict(drv.options))


VALID_OPTIONS = [
    ("--reconnect=d", "--reconnect", Reconnect.DEFAULT),
    ("--reconnect=Default", "--reconnect", Reconnect.DEFAULT),
    ("--RECONNECT=N", "--reconnect", Reconnect.NO),
    ("--reconnect=no", "--reconnect", Reconnect.NO),
    ("--reconnect=250", "--reconnect", 250),
    ("--reconnect=0", "--reconnect", 0),
    ("--interface=127.0.0.1", "--interface", "127.0.0.1"),
    ("--interface=::1", "--interface", "::1"),
    ("--interface=[::1]", "--interface", "::1"),
    ("--interface=0:0::0", "--interface", "::"),
    ("--interface=LocalHost", "--interface", "localhost"),
    ("--interface=", "--interface", None),
    ("--write-limit=0", "--write-limit", 0),
    ("--write-limit=2048", "--write-limit", 2048),
]

INVALID_OPTIONS = [
    ("--reconnect=x", "Invalid reconnect time"),
    ("--reconnect=-1", "Invalid reconnect time"),
    ("--reconnect=nope", "Invalid reconnect time"),
    ("--reconnect=", "Invalid reconnect time"),
    ("--interface=bad name", "Invalid interface"),
    ("--interface=[127.0.0.1]", "Invalid interface"),
    ("--interface=1.2.3.456", "Invalid interface"),
    ("--write-limit=-5", "Invalid --write-limit value (a number of bytes, 0 discards all writes)"),
    ("--write-limit=lots", "Invalid --write-limit value (a number of bytes, 0 discards all writes)"),
    ("--reconnect", "This option needs a value: write --reconnect=<value>"),
]


@pytest.mark.parametrize(("arg", "key", "value"), VALID_OPTIONS)
def test_valid_option(arg: str, key: str, value: object) -> None:
    drv = TcpDriver(hub=None)  # type: ignore[arg-type]
    assert drv.config_arg(arg)
    assert drv.options[key] == value


@pytest.mark.parametrize(("arg", "text"), INVALID_OPTIONS)
def test_invalid_option(arg: str, text: str) -> None:
    drv = TcpDriver(hub=None)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        drv.config_arg(arg)
    assert info.value.text == text
    assert info.value.arg == arg


def test_other_arguments_are_not_ours() -> None:
    drv = TcpDriver(hub=None)  # type: ignore[arg-type]
    assert not drv.config_arg("--baud=9600")
    assert not drv.config_arg("7000")


def test_usage_declares_the_options() -> None:
    security = set(_netsec.DEFAULTS)
    assert option_names(TcpDriver.USAGE) == {
        "--interface",
        "--reconnect",
        "--write-limit",
        "--read-only",
        "--read-write",
        "--buffer",
        "--frame",
        "--listen",
        "--password-file",
        "--password-timeout",
        *_netopts.DEFAULTS,
        *security,
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["*host:1"], 0.0),
        (["host:1"], None),
        (["--reconnect=no", "*host:1"], None),
        (["--reconnect=250", "*host:1"], 0.25),
        (["--reconnect=250", "host:1"], 0.25),
        (["--reconnect=250", "*7000"], None),
    ],
)
def test_reconnect_delay(args: list[str], expected: float | None) -> None:
    (port,) = make_ports(None, *args)  # type: ignore[arg-type]
    assert port.reconnect_s == expected


def test_display_name_and_sticky_options() -> None:
    ports = make_ports(None, "--write-limit=100", "host:1", "7000", "--write-limit=0", "7001")  # type: ignore[arg-type]
    assert [p.name for p in ports] == ["TCP(0)", "TCP(1)", "TCP(2)"]
    assert [p.write_limit for p in ports] == [100, 100, 0]


# ---- listeners -----------------------------------------------------------------


def test_listener_data_both_ways(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*0")
        (port,) = ports
        port.start()
        try:
            assert port.listen_address is not None
            assert port.listen_address.startswith("127.0.0.1:")
            reader, writer = await open_client(port_of(port.listen_address))
            await hub.wait_for(lambda: hub.connects(0) == [True], "CONNECT(TRUE)")
            assert port.state is State.CONNECTED and port.connected
            writer.write(b"hello")
            await hub.wait_for(lambda: hub.data(0) == b"hello", "data in")
            port.write(LineData(b"world"), 5)
            assert await read_exactly(reader, 5) == b"world"
            await close_writer(writer)
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "CONNECT(FALSE)")
            assert port.state is State.IDLE and not port.connected
        finally:
            close_all(ports)

    run(body)


def test_three_slots_on_one_port(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*0", "*0", "*0")
        for p in ports:
            p.start()
        try:
            addresses = {p.listen_address for p in ports}
            assert len(addresses) == 1  # one shared socket
            number = port_of(ports[0].listen_address)
            clients = []
            for i in range(3):
                clients.append(await open_client(number))
                await hub.wait_for(lambda i=i: hub.connects(i) == [True], f"slot {i}")
            for i, (_, writer) in enumerate(clients):
                writer.write(b"from %d" % i)
            for i in range(3):
                await hub.wait_for(lambda i=i: hub.data(i) == b"from %d" % i, f"data on slot {i}")
            ports[1].write(LineData(b"only one"), 0)
            assert await read_exactly(clients[1][0], 8) == b"only one"
            # Slot 0 frees up and serves a fourth client; the others go on.
            await close_writer(clients[0][1])
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "slot 0 free")
            reader4, writer4 = await open_client(number)
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "slot 0 reused")
            ports[0].write(LineData(b"4th"), 1)
            assert await read_exactly(reader4, 3) == b"4th"
            ports[2].write(LineData(b"3rd"), 1)
            assert await read_exactly(clients[2][0], 3) == b"3rd"
            for _, w in [*clients[1:], (reader4, writer4)]:
                await close_writer(w)
        finally:
            close_all(ports)

    run(body)


def test_deferred_accept(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*0")
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            _, writer_a = await open_client(number)
            await hub.wait_for(lambda: hub.connects(0) == [True], "first client")
            # The second handshake completes in the kernel's backlog; nobody accepts it.
            reader_b, writer_b = await open_client(number)
            writer_b.write(b"early")
            await asyncio.sleep(SETTLE_S)
            assert hub.connects(0) == [True]
            assert hub.data(0) == b""
            await close_writer(writer_a)
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "second client")
            await hub.wait_for(lambda: hub.data(0) == b"early", "second client's data")
            port.write(LineData(b"hi b"), 1)
            assert await read_exactly(reader_b, 4) == b"hi b"
            await close_writer(writer_b)
        finally:
            close_all(ports)

    run(body)


def test_reject_while_not_connected(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "!0")
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            # The reset may even beat the client's own connect completion.
            with contextlib.suppress(ConnectionError):
                reader, writer = await open_client(number)
                try:
                    assert await asyncio.wait_for(reader.read(), DEADLINE_S) == b""
                finally:
                    writer.close()
            assert hub.log == []
            assert port.state is State.IDLE
            # Somebody asks for a connection: now the port takes one.
            port.write(Connect(True), 3)
            reader, writer = await open_client(number)
            await hub.wait_for(lambda: hub.connects(0) == [True], "accepted")
            # Not permanent: the counter falling to 0 half-closes the connection.
            port.write(Connect(False), 3)
            assert await asyncio.wait_for(reader.read(), DEADLINE_S) == b""
            await close_writer(writer)
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "closed")
        finally:
            close_all(ports)

    run(body)


def test_priorities_then_command_line_order(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*0/1", "*0/5", "*0", "*0/5")
        for p in ports:
            p.start()
        try:
            number = port_of(ports[0].listen_address)

            def up() -> list[int]:
                return [i for i in range(4) if hub.connects(i) == [True]]

            order: list[int] = []
            writers = []
            for k in range(4):
                _, w = await open_client(number)
                writers.append(w)
                await hub.wait_for(lambda k=k: len(up()) == k + 1, f"accept {k}")
                order.extend(i for i in up() if i not in order)
            assert order == [1, 3, 0, 2]
            for w in writers:
                await close_writer(w)
        finally:
            close_all(ports)

    run(body)


def test_busy_until_counter_is_zero(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*/0")
        (port,) = ports
        port.start()
        try:
            port.write(Connect(True), 7)
            number = port_of(port.listen_address)
            _, writer_a = await open_client(number)
            await hub.wait_for(lambda: hub.connects(0) == [True], "first session")
            await close_writer(writer_a)
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "first session over")
            assert port.state is State.WAITING
            _, writer_b = await open_client(number)
            await asyncio.sleep(SETTLE_S)
            assert hub.connects(0) == [True, False]
            port.write(Connect(False), 7)
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "second session")
            await close_writer(writer_b)
        finally:
            close_all(ports)

    run(body)


def test_listen_failure_is_a_port_error(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            number = busy.getsockname()[1]
            (port,) = make_ports(hub, "--interface=127.0.0.1", f"*{number}")
            with pytest.raises(PortError) as info:
                port.start()
            assert info.value.port == "TCP(0)"
            assert "Cannot listen on 127.0.0.1:" in info.value.text
            port.close()

    run(body)


def test_close_stops_listening(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*0", "*0")
        for p in ports:
            p.start()
        number = port_of(ports[0].listen_address)
        reader, writer = await open_client(number)
        await hub.wait_for(lambda: hub.connects(0) == [True], "accepted")
        ports[0].close()
        assert await asyncio.wait_for(reader.read(), DEADLINE_S) == b""
        await close_writer(writer)
        # The socket stays while port 1 uses it, and goes with the last port.
        _, writer = await open_client(number)
        await hub.wait_for(lambda: hub.connects(1) == [True], "port 1 accepted")
        ports[1].close()
        ports[1].close()  # twice is harmless
        await close_writer(writer)
        with pytest.raises(OSError):
            await open_client(number)

    run(body)


def test_listener_on_host_name_interface(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=localhost", "*0")
        (port,) = ports
        port.start()  # resolves in the background
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE_S
            while port.listen_address is None:
                assert loop.time() < deadline, "listener never bound"
                await asyncio.sleep(0.01)
            host, _, number = port.listen_address.rpartition(":")
            _, writer = await open_client(int(number), host.strip("[]"))
            await hub.wait_for(lambda: hub.connects(0) == [True], "accepted")
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        drv = TcpDriver(hub)
        (listener,) = make_ports(hub, "--interface=::1", "*0", driver=drv)
        listener.start()
        number = port_of(listener.listen_address)
        assert listener.listen_address == f"[::1]:{number}"
        # The client is port 1 of the same hub.
        client = drv.create_port(1, f"*[::1]:{number}", dict(drv.options))
        client.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True] and hub.connects(1) == [True], "both up")
            assert client.peer == f"[::1]:{number}"
            client.write(LineData(b"v6 out"), 0)
            await hub.wait_for(lambda: hub.data(0) == b"v6 out", "client to listener")
            listener.write(LineData(b"v6 back"), 1)
            await hub.wait_for(lambda: hub.data(1) == b"v6 back", "listener to client")
        finally:
            close_all([client, listener])

    run(body)


def test_default_interface_takes_ipv4(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "*0")
        (port,) = ports
        port.start()
        try:
            _, writer = await open_client(port_of(port.listen_address))
            await hub.wait_for(lambda: hub.connects(0) == [True], "accepted")
            assert port.peer is not None and port.peer.startswith("127.0.0.1:")
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


# ---- clients -------------------------------------------------------------------


def test_client_reconnects_after_server_restart(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, f"*127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            await server.stop()
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "disconnected")
            # The reconnect attempts fail while the server is down, then succeed.
            await asyncio.sleep(SETTLE_S)
            await server.start(number)
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "reconnected")
            port.write(LineData(b"again"), 1)
            await server.wait_for(lambda: bytes(server.received) == b"again", "data after reconnect")
            await server.stop()
        finally:
            close_all(ports)

    run(body)


def test_connect_request_before_start_connects_once(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, f"*127.0.0.1:{number}")
        (port,) = ports
        port.write(Connect(True), 0)  # e.g. a serial port started first and came up
        port.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            await asyncio.sleep(SETTLE_S)
            assert len(server.transports) == 1
            assert not server.eof
            port.write(LineData(b"one"), 0)
            await server.wait_for(lambda: bytes(server.received) == b"one", "data")
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_client_buffers_while_connecting(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, f"*127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            assert port.state is State.CONNECTING
            port.write(LineData(b"queued "), 1)
            port.write(LineData(b"early"), 1)
            assert port.queued_bytes() == 12
            await server.wait_for(lambda: bytes(server.received) == b"queued early", "buffered data")
            assert port.lost_total == 0
            assert hub.connects(0) == [True]
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_buffer_crossing_high_water_sends_xoff(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, "--write-limit=30", f"*127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            port.write(LineData(b"x" * 25), 1)  # above 2/3 of 30
            assert hub.messages(0, FlowControl) == [FlowControl(True)]
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            assert hub.messages(0, FlowControl) == [FlowControl(True), FlowControl(False)]
            await server.wait_for(lambda: len(server.received) == 25, "data")
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_client_nobody_asked_to_connect_counts_data_as_unheard(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "127.0.0.1:9")
        (port,) = ports
        port.start()  # not permanent, nobody asked: no connect
        try:
            assert port.state is State.IDLE
            port.write(LineData(b"nobody"), 1)
            assert (port.lost_total, port.unheard, port.bytes_out) == (0, 6, 0)
            assert hub.log == []
        finally:
            close_all(ports)

    run(body)


def test_write_limit_zero_discards(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, "--write-limit=0", f"*127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            port.write(LineData(b"dropped"), 1)
            assert port.lost_total == 7
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_client_connects_on_request_and_half_closes(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "HALF_CLOSE_TIMEOUT_S", DEADLINE_S)  # a peer that closes: no hurry

    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, f"127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            await asyncio.sleep(SETTLE_S)
            assert server.transports == []
            port.write(Connect(True), 1)
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected on request")
            port.write(LineData(b"bye"), 1)
            port.write(Connect(False), 1)
            assert port.state is State.HALF_CLOSED
            await server.wait_for(lambda: server.eof, "half-close")
            assert bytes(server.received) == b"bye"
            # The port still reads until the peer closes.
            server.transports[0].write(b"last words")
            await hub.wait_for(lambda: hub.data(0) == b"last words", "data after half-close")
            await server.stop()
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "closed")
            await asyncio.sleep(SETTLE_S)
            assert port.state is State.IDLE  # counter 0 and not permanent: no reconnect
        finally:
            close_all(ports)
            with contextlib.suppress(AssertionError):
                await server.stop()

    run(body)


def dead_port() -> int:
    """A loopback port nobody listens on (connects are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until_not_connecting(port: TcpPort) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while port.state is State.CONNECTING:
        assert loop.time() < deadline, "connect attempt never ended"
        await asyncio.sleep(0.01)


def test_half_close_waits_at_most_the_timeout_for_the_peer(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()  # sees our EOF and never closes
        number = await server.start()
        ports = make_ports(hub, f"127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            port.write(Connect(True), 1)
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            port.write(Connect(False), 1)
            await server.wait_for(lambda: server.eof, "half-close")
            start = hub.loop.time()
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "closed by the timeout")
            assert hub.loop.time() - start >= tcp.HALF_CLOSE_TIMEOUT_S * 0.9
            assert port.state is State.IDLE
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_a_new_session_is_held_while_the_old_one_half_closes(run: Any) -> None:
    # Issue 11 item 2: the first bytes of the next session were lost here.
    async def body() -> None:
        hub = FakeHub()
        server = Server()  # slow: never closes after our EOF
        number = await server.start()
        ports = make_ports(hub, f"127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            port.write(Connect(True), 1)
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            port.write(LineData(b"one;"), 1)
            port.write(Connect(False), 1)
            assert port.state is State.HALF_CLOSED
            port.write(Connect(True), 1)  # the next session starts at once
            port.write(LineData(b"HELLO"), 1)
            port.write(LineData(b" again"), 1)
            assert port.lost_total == 0 and port.queued_bytes() == 11
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "the next connection")
            await server.wait_for(lambda: bytes(server.received) == b"one;HELLO again", "held data")
            assert len(server.transports) == 2
            assert (port.lost_total, port.unheard) == (0, 0)
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_data_is_held_while_waiting_to_reconnect(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, "--reconnect=300", f"*127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            for t in server.transports:
                t.close()  # the server ends the session; the port waits 300 ms
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "disconnected")
            assert port.state is State.IDLE and port._timer is not None
            port.write(LineData(b"while away"), 1)
            assert port.lost_total == 0 and port.queued_bytes() == 10
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "reconnected")
            await server.wait_for(lambda: bytes(server.received) == b"while away", "held data")
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_held_data_survives_failed_attempts_and_is_lost_when_nobody_wants_it(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        number = dead_port()
        ports = make_ports(hub, "--reconnect=0", f"127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            port.write(Connect(True), 1)
            port.write(LineData(b"first"), 1)
            await until_not_connecting(port)  # refused; a retry is due
            assert port._timer is not None or port.state is State.CONNECTING
            assert port.lost_total == 0 and port._pending_bytes == 5
            server = Server()
            await server.start(number)
            try:
                await server.wait_for(lambda: bytes(server.received) == b"first", "held data")
            finally:
                await server.stop()
            await hub.wait_for(lambda: hub.connects(0)[-1:] == [False], "server gone")
            port.write(LineData(b"second"), 1)  # held for the reconnect
            port.write(Connect(False), 1)  # nobody wants it any more: lost, counted
            assert (port.lost_total, port.unheard, port._pending_bytes) == (6, 0, 0)
            port.write(LineData(b"third"), 1)  # no connection wanted: unheard
            assert (port.lost_total, port.unheard) == (6, 5)
        finally:
            close_all(ports)

    run(body)


def test_failed_connect_without_reconnect(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--reconnect=no", "--write-limit=9", f"*127.0.0.1:{dead_port()}")
        (port,) = ports
        port.start()
        port.write(LineData(b"pending"), 1)  # above 2/3 of 9: XOFF
        try:
            assert hub.messages(0, FlowControl) == [FlowControl(True)]
            await until_not_connecting(port)
            assert port.state is State.IDLE
            assert port.lost_total == 7  # buffered data is lost with the attempt
            assert hub.messages(0, FlowControl) == [FlowControl(True), FlowControl(False)]
            assert hub.connects(0) == []  # never connected: no CONNECT(FALSE)
            assert port._timer is None
        finally:
            close_all(ports)

    run(body)


def test_every_connect_request_retries(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, f"127.0.0.1:{dead_port()}")
        (port,) = ports
        port.start()
        try:
            port.write(Connect(True), 1)
            assert port.state is State.CONNECTING
            await until_not_connecting(port)
            assert port.state is State.IDLE  # not permanent, no reconnect by default
            port.write(Connect(True), 2)  # counter 1 -> 2: hub4com tries again
            assert port.state is State.CONNECTING
            await until_not_connecting(port)
        finally:
            close_all(ports)

    run(body)


def test_counter_zero_while_connecting_gives_up(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, f"127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            port.write(Connect(True), 1)
            port.write(LineData(b"never sent"), 1)
            port.write(Connect(False), 1)
            assert port.state is State.IDLE
            assert port.lost_total == 10
            await asyncio.sleep(SETTLE_S)
            assert server.transports == []
            assert hub.log == []
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_xoff_pauses_reading_across_reconnect(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        number = await server.start()
        ports = make_ports(hub, f"*127.0.0.1:{number}")
        (port,) = ports
        port.write(FlowControl(True), 1)  # paused before it ever connects
        port.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            await server.wait_for(lambda: bool(server.transports), "server side")
            server.transports[0].write(b"held")
            await asyncio.sleep(SETTLE_S)
            assert hub.data(0) == b""
            port.write(FlowControl(False), 1)
            await hub.wait_for(lambda: hub.data(0) == b"held", "resumed")
            # Paused again while disconnected; the pause holds for the next connection.
            # (While reading is paused a peer's close goes unnoticed until reading
            # resumes or a write fails: the kernel holds the FIN behind the data.)
            await server.stop()
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "disconnected")
            port.write(FlowControl(True), 2)
            await server.start(number)
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "reconnected")
            await server.wait_for(lambda: bool(server.transports), "server side again")
            server.transports[0].write(b" again")
            await asyncio.sleep(SETTLE_S)
            assert hub.data(0) == b"held"
            port.write(FlowControl(False), 2)
            await hub.wait_for(lambda: hub.data(0) == b"held again", "resumed again")
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_port_repr_and_status(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*0", "host.invalid:1")
        ports[0].start()
        try:
            assert ports[0].status().startswith("listening on 127.0.0.1:")
            assert "TCP(0)" in repr(ports[0])
            assert ports[1].status() == "not connected"
            assert "host.invalid:1" in repr(ports[1])
        finally:
            close_all(ports)

    run(body)
