"""The tcp-multi driver on real loopback sockets (asyncio and uvloop loops)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from drivers._sessions import Frame, Policy, SlowClient
from drivers.tcpmulti import TcpMultiDriver, TcpMultiPort, parse_listen_address
from hub.errors import PortError, UsageError
from hub.messages import Connect, FlowControl, LineData, Message, SetBaud
from hub.netsec import Verdict
from hub.options import option_names, parse_options
from tests.tlscerts import Pki, pki_or_skip

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on CPython/POSIX
    uvloop = None

DEADLINE_S = 5.0
#: How long a negative check ("nothing arrived") waits.
SETTLE_S = 0.2


# ---- helpers -----------------------------------------------------------------


class FakeHub:
    """Records what the port reports; tests wait on it with a deadline."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.log: list[Message] = []
        self._changed = asyncio.Event()

    def received(self, port: int, msgs: list[Message]) -> None:
        self.log.extend(msgs)
        self._changed.set()

    def data(self) -> bytes:
        return b"".join(m.data for m in self.log if type(m) is LineData)  # type: ignore[union-attr]

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.log if type(m) is kind]

    async def wait_for(self, pred: Callable[[], object], what: str = "", timeout: float = DEADLINE_S) -> None:
        deadline = self.loop.time() + timeout
        while not pred():
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what or pred}; log: {self.log[-10:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))


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


def make_port(hub: FakeHub, *options: str, path: str = "127.0.0.1:0") -> TcpMultiPort:
    drv = TcpMultiDriver(hub)
    for opt in options:
        assert drv.config_arg(opt), opt
    return drv.create_port(1, path, dict(drv.options))


def port_number(port: TcpMultiPort) -> int:
    assert port.address is not None
    return int(port.address.rsplit(":", 1)[1])


class Client:
    """An asyncio stream client of the port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    async def read(self, n: int) -> bytes:
        return await asyncio.wait_for(self.reader.readexactly(n), DEADLINE_S)

    async def nothing(self) -> bool:
        """True if nothing arrives within SETTLE_S."""
        try:
            data = await asyncio.wait_for(self.reader.read(1000), SETTLE_S)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected {data!r}")

    async def closed(self) -> bool:
        """True once the port closed the connection (EOF or reset)."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), DEADLINE_S)
        except ConnectionResetError:
            return True
        return rest == b"" or self.reader.at_eof()

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await asyncio.wait_for(self.writer.wait_closed(), DEADLINE_S)


async def connect(port: TcpMultiPort, hub: FakeHub, expect: int | None = None) -> Client:
    """Connect a client; wait until the port counts `expect` sessions (default: one more)."""
    want = len(port.sessions) + 1 if expect is None else expect
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port_number(port)), DEADLINE_S
    )
    await hub.wait_for(lambda: len(port.sessions) == want, f"{want} sessions")
    return Client(reader, writer)


async def started(hub: FakeHub, *options: str, path: str = "127.0.0.1:0") -> TcpMultiPort:
    port = make_port(hub, *options, path=path)
    port.start()
    await asyncio.sleep(0)  # the server starts serving
    return port


# ---- options and addresses -----------------------------------------------------------


def test_usage_lists_every_option():
    names = option_names(TcpMultiDriver.USAGE)
    assert names >= {
        "--interface",
        "--max-clients",
        "--kick-oldest",
        "--no-kick-oldest",
        "--recv-from",
        "--send-to",
        "--active-hold",
        "--slow-client",
        "--send-timeout",
        "--frame",
        "--idle-timeout",
        "--keepalive",
        "--sndbuf",
        "--buffer",
        "--write-limit",
    }
    assert set(TcpMultiDriver.DEFAULTS) <= names
    assert "[default:" not in TcpMultiDriver.USAGE


GOOD_OPTIONS = [
    ("--recv-from=Last-Active", "--recv-from", Policy.LAST_ACTIVE),
    ("--send-to=none", "--send-to", Policy.NONE),
    ("--slow-client=block", "--slow-client", SlowClient.BLOCK),
    ("--frame=line", "--frame", Frame.LINE),
    ("--max-clients=3", "--max-clients", 3),
    ("--idle-timeout=0.5", "--idle-timeout", 0.5),
    ("--buffer=4096", "--buffer", 4096),
    ("--write-limit=0", "--write-limit", 0),
    ("--interface=::1", "--interface", "::1"),
    ("--kick-oldest", "--kick-oldest", True),
]


@pytest.mark.parametrize(("arg", "key", "value"), GOOD_OPTIONS)
def test_options(arg, key, value):
    drv = TcpMultiDriver(None)  # type: ignore[arg-type]
    assert drv.config_arg(arg)
    assert drv.options[key] == value


@pytest.mark.parametrize(
    "arg",
    [
        "--recv-from=some",
        "--send-to=",
        "--slow-client=wait",
        "--frame=packet",
        "--max-clients=-1",
        "--idle-timeout=soon",
        "--buffer=1k",
        "--send-timeout=1.5",
        "--write-limit=x",
    ],
)
def test_bad_option_values(arg):
    drv = TcpMultiDriver(None)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        drv.config_arg(arg)
    assert info.value.arg == arg


def test_kick_oldest_can_be_turned_off_again():
    drv = TcpMultiDriver(None)  # type: ignore[arg-type]
    drv.config_arg("--kick-oldest")
    drv.config_arg("--no-kick-oldest")
    assert drv.options["--kick-oldest"] is False


def test_other_drivers_options_are_not_taken():
    drv = TcpMultiDriver(None)  # type: ignore[arg-type]
    assert not drv.config_arg("--baud=9600")
    assert parse_options(TcpMultiDriver.USAGE, ["--frame=line"]) == {"--frame": "line"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("7000", (None, 7000)),
        ("0", (None, 0)),
        ("127.0.0.1:7000", ("127.0.0.1", 7000)),
        ("[::1]:7000", ("::1", 7000)),
        ("localhost:7000", ("localhost", 7000)),
        ("telnet", (None, 23)),
    ],
)
def test_listen_address(path, expected):
    assert parse_listen_address(path) == expected


@pytest.mark.parametrize(
    "path", ["", "70000", "-1", "::1:7000", "[::1]7000", "[x]:1", ":7000", "a b:1", "1.2.3:x"]
)
def test_bad_listen_address(path):
    with pytest.raises(UsageError) as info:
        parse_listen_address(path)
    assert info.value.arg == path
    assert info.value.text.startswith("Invalid address")


def test_listen_address_says_what_is_wrong_with_the_port():
    with pytest.raises(UsageError, match=r"port 70000 is out of range \(0 to 65535\)"):
        parse_listen_address("127.0.0.1:70000")
    with pytest.raises(UsageError, match="'seventy' is not a port number or service name"):
        parse_listen_address("seventy")


def test_send_timeout_defaults_by_mode():
    drv = TcpMultiDriver(None)  # type: ignore[arg-type]
    drv.config_arg("--slow-client=disconnect")
    assert drv.create_port(0, "0", dict(drv.options)).sessions.config.send_timeout_s == 5.0
    drv.config_arg("--slow-client=block")
    assert drv.create_port(1, "0", dict(drv.options)).sessions.config.send_timeout_s == 0.0
    drv.config_arg("--send-timeout=250")
    assert drv.create_port(2, "0", dict(drv.options)).sessions.config.send_timeout_s == 0.25


# ---- listening ----------------------------------------------------------------------------


def test_listen_failure_is_a_port_error(run):
    async def body():
        hub = FakeHub()
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = make_port(hub, path=f"127.0.0.1:{busy.getsockname()[1]}")
            with pytest.raises(PortError) as info:
                port.start()
            assert "Cannot listen on 127.0.0.1:" in str(info.value)
            port.close()

    run(body)


def test_ipv6_loopback(run):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")

    async def body():
        hub = FakeHub()
        try:
            port = await started(hub, path="[::1]:0")
        except PortError as exc:
            pytest.skip(f"no IPv6 loopback: {exc}")
        reader, writer = await asyncio.open_connection("::1", port_number(port))
        await hub.wait_for(lambda: len(port.sessions) == 1)
        port.write_data(b"six", 0)
        assert await asyncio.wait_for(reader.readexactly(3), DEADLINE_S) == b"six"
        writer.close()
        port.close()

    run(body)


# ---- fan-out, connect state, policies ------------------------------------------------------


def test_fan_out_and_connect_state(run, caplog):
    async def body():
        hub = FakeHub()
        port = await started(hub)
        clients = [await connect(port, hub) for _ in range(5)]
        assert [m.on for m in hub.of(Connect)] == [True]
        chunk = b"$GPGGA,1*00\r\n" * 100
        port.write_data(chunk, 0)
        for c in clients:
            assert await c.read(len(chunk)) == chunk
        port.write_signal(SetBaud(4800))  # raw TCP: ignored
        for c in clients[:4]:
            await c.close()
        await hub.wait_for(lambda: len(port.sessions) == 1)
        assert [m.on for m in hub.of(Connect)] == [True]
        await clients[4].close()
        await hub.wait_for(lambda: [m.on for m in hub.of(Connect)] == [True, False])
        assert "0 clients" in port.status()
        port.close()

    with caplog.at_level(logging.INFO, logger="drivers.tcpmulti"):
        run(body)
    assert "TCPM(1): client 5 connected from 127.0.0.1:" in caplog.text
    assert "disconnected after" in caplog.text and "out 1.3 kB" in caplog.text


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("all", b"abc"), ("none", b""), ("first", b"a"), ("last", b"c")],
)
def test_recv_from(run, policy, expected):
    async def body():
        hub = FakeHub()
        port = await started(hub, f"--recv-from={policy}")
        clients = [await connect(port, hub) for _ in range(3)]
        for c, data in zip(clients, (b"a", b"b", b"c"), strict=True):
            c.send(data)
            await hub.wait_for(lambda c=c: c_in(port, c) == 1, "input counted")
        assert bytes(sorted(hub.data())) == expected
        assert port.sessions.discarded_in == 3 - len(expected)
        port.close()

    run(body)


def c_in(port: TcpMultiPort, client: Client) -> int:
    """Bytes the port read from `client`'s session (found by its local port)."""
    local = client.writer.get_extra_info("sockname")[1]
    for s in port.sessions.sessions:
        if s.peer.endswith(f":{local}"):
            return s.bytes_in
    return -1


@pytest.mark.parametrize(
    ("policy", "receivers"),
    [("all", [0, 1, 2]), ("none", []), ("first", [0]), ("last", [2]), ("last-active", [1])],
)
def test_send_to(run, policy, receivers):
    async def body():
        hub = FakeHub()
        port = await started(hub, f"--send-to={policy}")
        clients = [await connect(port, hub) for _ in range(3)]
        clients[1].send(b"!")
        await hub.wait_for(lambda: hub.data() == b"!")
        port.write_data(b"news\n", 0)
        for i, c in enumerate(clients):
            if i in receivers:
                assert await c.read(5) == b"news\n"
            else:
                assert await c.nothing()
        port.close()

    run(body)


def test_last_active_switching_between_two_writers(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--recv-from=last-active", "--send-to=last-active", "--active-hold=300")
        a = await connect(port, hub)
        b = await connect(port, hub)
        a.send(b"A1")
        await hub.wait_for(lambda: hub.data() == b"A1")
        port.write_data(b"reply-1\n", 0)
        assert await a.read(8) == b"reply-1\n"
        b.send(b"B1")  # A holds the floor: ignored
        await hub.wait_for(lambda: port.sessions.discarded_in == 2)
        await asyncio.sleep(0.4)  # A quiet for longer than the hold
        b.send(b"B2")
        await hub.wait_for(lambda: hub.data() == b"A1B2")
        port.write_data(b"reply-2\n", 0)
        assert await b.read(8) == b"reply-2\n"
        assert await a.nothing()
        a.send(b"A2")  # now B holds the floor
        await hub.wait_for(lambda: port.sessions.discarded_in == 4)
        assert hub.data() == b"A1B2"
        port.close()

    run(body)


# ---- admission and timeouts ----------------------------------------------------------------


def test_max_clients_refuses(run, caplog):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--max-clients=2")
        a = await connect(port, hub)
        b = await connect(port, hub)
        reader, writer = await asyncio.open_connection("127.0.0.1", port_number(port))
        assert await Client(reader, writer).closed()
        assert port.sessions.refused == 1 and len(port.sessions) == 2
        port.write_data(b"still\n", 0)
        assert await a.read(6) == b"still\n"
        assert "1 refused" in port.status()
        await b.close()
        port.close()

    with caplog.at_level(logging.INFO, logger="drivers.tcpmulti"):
        run(body)
    assert "refused a client from 127.0.0.1:" in caplog.text
    assert "2 clients is the maximum (--max-clients)" in caplog.text


def test_kick_oldest(run, caplog):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--max-clients=1", "--kick-oldest")
        old = await connect(port, hub)
        new = await connect(port, hub, expect=1)
        await hub.wait_for(lambda: port.sessions.kicked == 1)
        assert await old.closed()
        port.write_data(b"hi\n", 0)
        assert await new.read(3) == b"hi\n"
        # the port stayed connected throughout
        assert [m.on for m in hub.of(Connect)] == [True]
        port.close()

    with caplog.at_level(logging.INFO, logger="drivers.tcpmulti"):
        run(body)
    assert "(kicked for a new client)" in caplog.text


def test_idle_timeout(run, caplog):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--idle-timeout=0.3")
        quiet = await connect(port, hub)
        talker = await connect(port, hub)
        t0 = hub.loop.time()
        for _ in range(8):
            talker.send(b".")
            await asyncio.sleep(0.1)
        assert await quiet.closed()
        assert 0.3 <= hub.loop.time() - t0 < 2.0
        assert len(port.sessions) == 1  # the talker stays
        port.close()

    with caplog.at_level(logging.INFO, logger="drivers.tcpmulti"):
        run(body)
    assert "(idle timeout)" in caplog.text


def test_buffer_while_no_client(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--buffer=21", "--frame=line")
        port.write_data(b"x\n", 0)  # puts the stream at a line start
        port.write_data(b"$A*00\r\n$B*00\r\n", 0)
        port.write_data(b"$C*00\r\n$D*00\r\n", 0)  # does not fit: C is the last line kept
        first = await connect(port, hub)
        second = await connect(port, hub)
        port.write_data(b"$E*00\r\n", 0)
        assert await first.read(28) == b"$A*00\r\n$B*00\r\n$C*00\r\n$E*00\r\n"
        assert await second.read(7) == b"$E*00\r\n"
        port.close()

    run(body)


def test_nothing_is_lost_without_clients_or_buffer(run):
    async def body():
        hub = FakeHub()
        port = await started(hub)
        port.write_data(b"nobody", 0)
        assert port.lost_total == 0 and port.sessions.unheard == 6
        port.close()

    run(body)


def test_write_limit_zero_discards_everything(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--write-limit=0")
        c = await connect(port, hub)
        port.write_data(b"gone", 0)
        assert await c.nothing()
        assert port.lost_total == 4
        c.send(b"in")  # input still works
        await hub.wait_for(lambda: hub.data() == b"in")
        port.close()

    run(body)


# ---- slow clients -----------------------------------------------------------------------


def stalled_client(port: TcpMultiPort) -> socket.socket:
    """A blocking client with a tiny receive buffer that never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect(("127.0.0.1", port_number(port)))
    return s


def recv_all(s: socket.socket, n: int, quiet_s: float = 0.5) -> bytes:
    """Read up to `n` bytes; stop early once nothing came for `quiet_s`."""
    s.settimeout(quiet_s)
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except TimeoutError:
            break
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


LINES = [b"$GPTXT,%06d,payload-payload-payload*00\r\n" % i for i in range(4000)]


def test_drop_isolates_a_stalled_client(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--frame=line", "--write-limit=8192", "--sndbuf=4096")
        port.write_data(b"\n", 0)
        fast = await connect(port, hub)
        stalled = stalled_client(port)
        await hub.wait_for(lambda: len(port.sessions) == 2)
        for i in range(0, len(LINES), 100):
            chunk = b"".join(LINES[i : i + 100])
            port.write_data(chunk, 0)
            assert await fast.read(len(chunk)) == chunk
        assert port.sessions.dropped_lines > 0
        assert port.lost_total == port.sessions.dropped_bytes
        assert "dropped" in port.status()
        # the stalled client resumes: whole lines, in order, a gap where it lost some
        got = await hub.loop.run_in_executor(None, recv_all, stalled, len(b"".join(LINES)))
        assert got, "the stalled client got nothing at all"
        lines = got.splitlines(keepends=True)
        assert all(line in LINES for line in lines[:-1])
        numbers = [int(line[7:13]) for line in lines if line in LINES]
        assert numbers == sorted(numbers) and len(numbers) < len(LINES)
        stalled.close()
        port.close()

    run(body)


def test_block_is_lossless_and_sends_xoff_xon(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--slow-client=block", "--write-limit=30000", "--sndbuf=4096")
        port.fc_sources = frozenset({0})
        slow = stalled_client(port)
        await hub.wait_for(lambda: len(port.sessions) == 1)
        data = b"".join(LINES[:2000])
        for i in range(0, len(data), 4096):
            port.write_data(data[i : i + 4096], 0)
        assert hub.of(FlowControl) == [FlowControl(True)]
        assert port.lost_total == 0
        got = await hub.loop.run_in_executor(None, recv_all, slow, len(data))
        assert got == data
        await hub.wait_for(lambda: hub.of(FlowControl) == [FlowControl(True), FlowControl(False)], "XON")
        slow.close()
        port.close()

    run(body)


def test_disconnect_closes_a_stalled_client(run, caplog):
    async def body():
        hub = FakeHub()
        port = await started(
            hub, "--slow-client=disconnect", "--send-timeout=200", "--write-limit=4096", "--sndbuf=4096"
        )
        fast = await connect(port, hub)
        slow = stalled_client(port)
        await hub.wait_for(lambda: len(port.sessions) == 2)
        deadline = hub.loop.time() + DEADLINE_S
        while len(port.sessions) == 2 and hub.loop.time() < deadline:
            port.write_data(LINES[0] * 50, 0)
            await fast.read(len(LINES[0]) * 50)
            await asyncio.sleep(0.01)
        assert len(port.sessions) == 1
        slow.close()
        port.close()

    with caplog.at_level(logging.INFO, logger="drivers.tcpmulti"):
        run(body)
    assert "(send timeout)" in caplog.text


def test_input_is_held_while_the_hub_says_xoff(run):
    async def body():
        hub = FakeHub()
        port = await started(hub)
        c = await connect(port, hub)
        port.write(FlowControl(True), 0)
        c.send(b"wait")
        await asyncio.sleep(SETTLE_S)
        assert hub.data() == b""
        late = await connect(port, hub)  # joins while paused
        late.send(b"!")
        port.write(FlowControl(False), 0)
        await hub.wait_for(lambda: sorted(hub.data()) == sorted(b"wait!"))
        port.close()

    run(body)


def test_close_ends_every_session(run):
    async def body():
        hub = FakeHub()
        port = await started(hub)
        clients = [await connect(port, hub) for _ in range(3)]
        port.close()
        for c in clients:
            assert await c.closed()
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", int(port.address.split(":")[1])), 2)
        port.close()  # twice is harmless

    run(body)


# ---- security (hub.netsec, as in the tcp driver) ---------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return pki_or_skip(tmp_path_factory.mktemp("pki"))


def test_exposure_warning_only_for_every_interface():
    drv = TcpMultiDriver(None)  # type: ignore[arg-type]
    open_port = drv.create_port(3, "7000", dict(drv.options))
    assert any("TCPM(3) listens on port 7000 of every network interface" in w for w in open_port.warnings)
    assert drv.create_port(4, "127.0.0.1:7000", dict(drv.options)).warnings == []
    drv.config_arg("--allow=192.168.1.0/24")
    assert drv.create_port(5, "7000", dict(drv.options)).warnings == []


def test_tls_options_without_a_certificate_are_an_error():
    drv = TcpMultiDriver(None)  # type: ignore[arg-type]
    drv.config_arg("--tls-verify=none")
    with pytest.raises(UsageError):
        drv.create_port(0, "127.0.0.1:0", dict(drv.options))


def test_deny_resets_before_a_session(run, caplog):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--deny=127.0.0.0/8")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_number(port))
        except ConnectionResetError:
            pass  # reset before the connect call returned
        else:
            assert await Client(reader, writer).closed()
        await hub.wait_for(lambda: port.gate.counts[Verdict.DENIED] == 1, "the refusal")
        assert port.sessions.accepted == 0 and hub.of(Connect) == []
        port.close()

    with caplog.at_level(logging.INFO, logger="drivers.tcpmulti"):
        run(body)
    assert "refused connection from 127.0.0.1:" in caplog.text
    assert "not allowed by --allow/--deny" in caplog.text


def test_max_connections_keeps_the_rest_in_the_backlog(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--max-connections=2")
        a = await connect(port, hub)
        b = await connect(port, hub)
        reader, writer = await asyncio.open_connection("127.0.0.1", port_number(port))
        await asyncio.sleep(SETTLE_S)
        assert len(port.sessions) == 2  # the third waits in the kernel's backlog
        await a.close()
        await hub.wait_for(lambda: port.sessions.accepted == 3, "the third session")
        port.write_data(b"x", 0)
        assert await Client(reader, writer).read(1) == b"x"
        await b.close()
        port.close()

    run(body)


def test_tls_with_client_certificates(run, pki):
    import ssl

    async def body():
        hub = FakeHub()
        port = await started(
            hub, f"--tls-cert={pki.server_cert}", f"--tls-key={pki.server_key}", f"--tls-ca={pki.ca}"
        )
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
        clients = []
        for _ in range(3):
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port_number(port), ssl=ctx, server_hostname="localhost"),
                DEADLINE_S,
            )
            clients.append(Client(reader, writer))
        await hub.wait_for(lambda: len(port.sessions) == 3)
        port.write_data(b"$GPGGA*00\r\n", 0)
        for c in clients:
            assert await c.read(11) == b"$GPGGA*00\r\n"
        clients[0].send(b"up")
        await hub.wait_for(lambda: hub.data() == b"up")
        # without a client certificate: no session
        bare = ssl.create_default_context(cafile=str(pki.ca))
        with contextlib.suppress(OSError, ssl.SSLError):
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    "127.0.0.1", port_number(port), ssl=bare, server_hostname="localhost"
                ),
                DEADLINE_S,
            )
            with contextlib.suppress(OSError, ssl.SSLError):
                await asyncio.wait_for(reader.read(), DEADLINE_S)
        await hub.wait_for(lambda: port.gate.handshake_failures == 1, "a failed handshake")
        assert len(port.sessions) == 3
        for c in clients:
            await c.close()
        port.close()

    run(body)


def test_socket_options_of_a_session(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--keepalive=30", "--sndbuf=8192")
        c = await connect(port, hub)
        sock = port.sessions.sessions[0].handle.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 8192  # Linux doubles it
        await c.close()
        port.close()

    run(body)


def test_keepalive_interval_and_count_of_a_session(run):
    async def body():
        hub = FakeHub()
        port = await started(hub, "--keepalive=7", "--keepalive-interval=2", "--keepalive-count=4")
        c = await connect(port, hub)
        sock = port.sessions.sessions[0].handle.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 2
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 15_000
        await c.close()
        port.close()

    run(body)


def test_usage_text_defines_each_option_once():
    """A description line starting with an option would define it twice for docopt."""
    assert parse_options(TcpMultiDriver.USAGE, ["--interface=127.0.0.1"]) == {"--interface": "127.0.0.1"}
    for name in option_names(TcpMultiDriver.USAGE):
        assert len(re.findall(rf"^\s*{name}(?![\w-])", TcpMultiDriver.USAGE, re.MULTILINE)) == 1, name
