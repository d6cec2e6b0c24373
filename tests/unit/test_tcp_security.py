"""Security options of the tcp driver on real loopback sockets (asyncio and uvloop loops):
TLS listeners and clients, --allow/--deny, --max-rate, --max-connections, --read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from typing import Any

import pytest

from drivers import tcp
from drivers.tcp import State, TcpDriver, TcpPort
from hub.errors import UsageError
from hub.messages import Connect, FlowControl, LineData, RemoteBaudStatus
from tests.tlscerts import Pki, pki_or_skip
from tests.unit.test_tcp import (
    DEADLINE_S,
    SETTLE_S,
    FakeHub,
    close_all,
    close_writer,
    make_ports,
    port_of,
    read_exactly,
    run,
)

__all__ = ["run"]  # the fixture, imported for the tests here


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return pki_or_skip(tmp_path_factory.mktemp("pki"))


def listener_tls(pki: Pki) -> list[str]:
    return [f"--tls-cert={pki.server_cert}", f"--tls-key={pki.server_key}", f"--tls-ca={pki.ca}"]


def client_ctx(pki: Pki, cert: bool = True, other: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        if other:
            ctx.load_cert_chain(pki.other_client_cert, pki.other_client_key)
        else:
            ctx.load_cert_chain(pki.client_cert, pki.client_key)
    return ctx


async def tls_client(
    number: int, ctx: ssl.SSLContext, local: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection(
            "127.0.0.1",
            number,
            ssl=ctx,
            server_hostname="127.0.0.1",
            local_addr=(local, 0) if local else None,
        ),
        DEADLINE_S,
    )


async def refused(open_: Any, send: bytes = b"let me in") -> None:
    """Connect (a coroutine giving reader, writer), send, and expect the connection to end."""
    try:
        reader, writer = await open_
    except (ConnectionError, ssl.SSLError):
        return  # refused before the client finished connecting
    try:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            writer.write(send)
            await writer.drain()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            assert await asyncio.wait_for(reader.read(100), DEADLINE_S) == b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await asyncio.wait_for(writer.wait_closed(), DEADLINE_S)


async def until(pred: Any, what: str, timeout: float = DEADLINE_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def gate_of(port: TcpPort) -> Any:
    assert port._listener is not None
    return port._listener.gate


def loopback2() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
    except OSError:
        return False
    return True


# ---- options ----------------------------------------------------------------------------


def test_usage_lines_starting_with_an_option_are_options() -> None:
    """A wrapped description line starting with --x would declare --x twice for docopt."""
    section = TcpDriver.USAGE.partition("Options:")[2]
    names = [ln.split()[0].split("=")[0] for ln in section.splitlines() if ln.lstrip().startswith("--")]
    assert len(names) == len(set(names)), names


def test_read_only_is_sticky_and_read_write_resets() -> None:
    ports = make_ports(None, "1", "--read-only", "2", "host:3", "--read-write", "4")  # type: ignore[arg-type]
    assert [p.read_only for p in ports] == [False, True, True, False]


def test_security_options_are_sticky(pki: Pki) -> None:
    ports = make_ports(
        None,  # type: ignore[arg-type]
        "--allow=127.0.0.1,::1",
        "--max-rate=7",
        *listener_tls(pki),
        "7000",
        "--allow=",
        "--tls-cert=",
        "--tls-key=",
        "--tls-ca=",
        "7001",
    )
    a, b = ports
    assert a.policy.access.allow and a.policy.max_rate == 7 and a.ssl_context is not None
    assert a.policy.authenticates
    assert not b.policy.access.allow and b.policy.max_rate == 7 and b.ssl_context is None


@pytest.mark.parametrize(
    ("args", "arg", "text"),
    [
        (["--tls-cert=/nonexistent.pem"], "--tls-cert=/nonexistent.pem", "Cannot read the TLS certificate"),
        (["--allow=10.0.0.1/8"], "--allow=10.0.0.1/8", "Invalid address or network '10.0.0.1/8'"),
        (["--deny=nobody"], "--deny=nobody", "Invalid address or network 'nobody'"),
        (["--max-rate=fast"], "--max-rate=fast", "Invalid connection rate"),
        (["--max-connections=0"], "--max-connections=0", "Invalid connection limit"),
        (["--tls-timeout=-1"], "--tls-timeout=-1", "Invalid TLS timeout"),
        (["--tls-verify=maybe"], "--tls-verify=maybe", "Invalid TLS verification"),
        (["--tls-verify=none", "host:1"], "host:1", "--tls-verify=none set but TLS is off"),
        (["--tls-server-name=x.example", "host:1"], "host:1", "--tls-server-name set but TLS is off"),
    ],
)
def test_option_errors_are_one_line(args: list[str], arg: str, text: str) -> None:
    with pytest.raises(UsageError) as info:
        make_ports(None, *args)  # type: ignore[arg-type]
    assert info.value.arg == arg
    assert info.value.text.startswith(text)
    assert "\n" not in str(info.value)


def test_tls_listener_needs_a_certificate(pki: Pki) -> None:
    with pytest.raises(UsageError, match="A TLS listener needs --tls-cert"):
        make_ports(None, f"--tls-ca={pki.ca}", "7000")  # type: ignore[arg-type]
    # A client with only a CA is fine: it checks the server and shows no certificate.
    (client,) = make_ports(None, f"--tls-ca={pki.ca}", "host:7000")  # type: ignore[arg-type]
    assert client.ssl_context is not None


def test_ports_on_one_address_need_the_same_policy(pki: Pki) -> None:
    with pytest.raises(UsageError) as info:
        make_ports(None, "--interface=127.0.0.1", "*7000", "--allow=127.0.0.1", "*7000")  # type: ignore[arg-type]
    assert info.value.arg == "*7000"
    assert "need the same TLS, --allow, --deny" in info.value.text
    # Another port number, or the same policy again, is fine.
    make_ports(None, "*7000", "--allow=127.0.0.1", "*7001", "*7001")  # type: ignore[arg-type]


def test_start_warnings(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.tcp")
    open_all, local, allowed, certs = make_ports(
        None,  # type: ignore[arg-type]
        "7000",
        "--interface=127.0.0.1",
        "7001",
        "--interface=",
        "--allow=10.0.0.0/8",
        "7002",
        "--allow=",
        *listener_tls(pki),
        "7003",
    )
    assert any("every network interface" in w for w in open_all.warnings)
    assert local.warnings == allowed.warnings == certs.warnings == ()
    (client,) = make_ports(None, f"--tls-ca={pki.ca}", "--tls-verify=none", "host:1")  # type: ignore[arg-type]
    assert client.warnings == ("TCP(0) does not verify the TLS server host:1 (--tls-verify=none)",)


# ---- TLS listeners -------------------------------------------------------------------------


def test_tls_listener_with_client_certificate(run: Any, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="drivers.tcp")

    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", *listener_tls(pki), "*0")
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            reader, writer = await tls_client(number, client_ctx(pki))
            await hub.wait_for(lambda: hub.connects(0) == [True], "CONNECT(TRUE)")
            writer.write(b"over tls")
            await hub.wait_for(lambda: hub.data(0) == b"over tls", "data in")
            port.write(LineData(b"and back"), 1)
            assert await read_exactly(reader, 8) == b"and back"
            assert gate_of(port).limit.active == 1
            await close_writer(writer)
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "CONNECT(FALSE)")
            await until(lambda: gate_of(port).limit.active == 0, "the ticket back")
        finally:
            close_all(ports)

    run(body)
    assert "(TLS, client certificates required)" in caplog.text
    assert "peer 'hub client')" in caplog.text


@pytest.mark.parametrize("kind", ["no certificate", "other CA", "plain TCP"])
def test_tls_listener_refuses_strangers(
    run: Any, pki: Pki, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.tcp")

    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", *listener_tls(pki), "*0")
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            if kind == "plain TCP":
                opening = asyncio.open_connection("127.0.0.1", number)
            else:
                opening = tls_client(number, client_ctx(pki, cert=kind != "no certificate", other=True))
            await refused(opening)
            await until(lambda: gate_of(port).handshake_failures == 1, "the failure counted")
            await asyncio.sleep(SETTLE_S)
            assert hub.log == []  # no CONNECT, no data
            assert port.state is State.IDLE
            # The port is still there for a client that belongs.
            _reader, writer = await tls_client(number, client_ctx(pki))
            await hub.wait_for(lambda: hub.connects(0) == [True], "a good client")
            writer.write(b"ok")
            await hub.wait_for(lambda: hub.data(0) == b"ok", "its data")
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)
    assert "TLS handshake with 127.0.0.1:" in caplog.text


def test_slow_handshake_does_not_hold_the_port(run: Any, pki: Pki) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "--tls-timeout=0.5", *listener_tls(pki), "*0")
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            silent = socket.create_connection(("127.0.0.1", number))  # never says hello
            await asyncio.sleep(SETTLE_S)
            _reader, writer = await tls_client(number, client_ctx(pki))
            await hub.wait_for(lambda: hub.connects(0) == [True], "the good client while one is silent")
            await until(lambda: gate_of(port).handshake_failures == 1, "the silent one timed out")
            silent.settimeout(DEADLINE_S)
            with contextlib.suppress(ConnectionError):
                assert silent.recv(10) == b""
            silent.close()
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


def test_max_connections_holds_handshakes_in_the_backlog(run: Any, pki: Pki) -> None:
    async def body() -> None:
        hub = FakeHub()
        args = ["--interface=127.0.0.1", "--tls-timeout=0.6", "--max-connections=1", *listener_tls(pki), "*0"]
        ports = make_ports(hub, *args)
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            silent = socket.create_connection(("127.0.0.1", number))
            await until(lambda: gate_of(port).limit.full, "the silent one holds the only place")
            started = asyncio.get_running_loop().time()
            good = asyncio.ensure_future(tls_client(number, client_ctx(pki)))
            await asyncio.sleep(SETTLE_S)
            assert hub.connects(0) == [] and not good.done()  # waits in the backlog
            _reader, writer = await good
            await hub.wait_for(lambda: hub.connects(0) == [True], "accepted after the timeout")
            assert asyncio.get_running_loop().time() - started >= 0.3
            silent.close()
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


def test_established_tls_connection_waits_for_a_port(run: Any, pki: Pki) -> None:
    """Two handshakes race for one idle port: the second waits, unread, for the next one."""

    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", *listener_tls(pki), "*0")
        (port,) = ports
        port.start()
        listener = port._listener
        assert listener is not None
        ctx = client_ctx(pki)
        raw_a = socket.create_connection(("127.0.0.1", port_of(port.listen_address)))
        raw_b = socket.create_connection(("127.0.0.1", port_of(port.listen_address)))
        for raw in (raw_a, raw_b):
            raw.settimeout(DEADLINE_S)
        try:
            await until(lambda: len(listener._handshakes) == 2, "both in their handshake")
            a = await asyncio.to_thread(ctx.wrap_socket, raw_a, server_hostname="127.0.0.1")
            await hub.wait_for(lambda: hub.connects(0) == [True], "the first one")
            b = await asyncio.to_thread(ctx.wrap_socket, raw_b, server_hostname="127.0.0.1")
            await asyncio.to_thread(b.sendall, b"early")
            await until(lambda: len(listener._ready) == 1, "the second one waiting")
            await asyncio.sleep(SETTLE_S)
            assert hub.connects(0) == [True] and hub.data(0) == b""
            await asyncio.to_thread(a.close)
            await hub.wait_for(lambda: hub.connects(0) == [True, False, True], "the second one")
            await hub.wait_for(lambda: hub.data(0) == b"early", "its early data")
            port.write(LineData(b"hi b"), 1)
            assert await asyncio.to_thread(b.recv, 4) == b"hi b"
            await asyncio.to_thread(b.close)
            await until(lambda: listener.gate.limit.active == 0, "tickets back")
        finally:
            raw_a.close()
            raw_b.close()
            close_all(ports)

    run(body)


def test_reject_port_refuses_tls_while_not_connected(run: Any, pki: Pki) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", *listener_tls(pki), "!0")
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            await refused(asyncio.open_connection("127.0.0.1", number))
            assert hub.log == [] and gate_of(port).handshake_failures == 0
            port.write(Connect(True), 3)
            reader, writer = await tls_client(number, client_ctx(pki))
            await hub.wait_for(lambda: hub.connects(0) == [True], "accepted")
            # Not permanent: the counter falling to 0 ends the session (TLS cannot half-close).
            port.write(Connect(False), 3)
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                assert await asyncio.wait_for(reader.read(), DEADLINE_S) == b""
            await close_writer(writer)
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "closed")
            await until(lambda: gate_of(port).limit.active == 0, "the ticket back")
        finally:
            close_all(ports)

    run(body)


def test_close_drops_handshakes(run: Any, pki: Pki) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", *listener_tls(pki), "*0")
        (port,) = ports
        port.start()
        number = port_of(port.listen_address)
        listener = port._listener
        assert listener is not None
        silent = [socket.create_connection(("127.0.0.1", number)) for _ in range(3)]
        await until(lambda: len(listener._handshakes) == 3, "three handshakes")
        port.close()
        assert listener._handshakes == {} and listener.sock is None
        await asyncio.sleep(SETTLE_S)
        assert listener.gate.limit.active == 0
        for s in silent:
            s.settimeout(DEADLINE_S)
            with contextlib.suppress(ConnectionError):
                assert s.recv(10) == b""
            s.close()

    run(body)


# ---- address lists and rates -----------------------------------------------------------------


@pytest.mark.skipif(not loopback2(), reason="127.0.0.2 is not a local address here")
@pytest.mark.parametrize("option", ["--allow=127.0.0.1/32,::1", "--deny=127.0.0.2"])
def test_address_lists(run: Any, option: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.tcp")

    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", option, "*0")
        (port,) = ports
        port.start()
        try:
            number = port_of(port.listen_address)
            for _ in range(3):
                await refused(asyncio.open_connection("127.0.0.1", number, local_addr=("127.0.0.2", 0)))
            await asyncio.sleep(SETTLE_S)
            assert hub.log == []
            assert gate_of(port).counts[tcp.Verdict.DENIED] == 3
            _, writer = await asyncio.open_connection("127.0.0.1", number)
            await hub.wait_for(lambda: hub.connects(0) == [True], "the allowed address")
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)
    refusals = [r for r in caplog.records if "refused connection from 127.0.0.2:" in r.getMessage()]
    assert len(refusals) == 1  # once per address and interval


def test_allow_list_on_a_dual_stack_listener(run: Any) -> None:
    """Without --interface the listener is "::"; its IPv4 peers match IPv4 entries."""

    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--allow=127.0.0.1", "*0")
        (port,) = ports
        port.start()
        try:
            assert port.warnings == ()  # allow-listed: no exposure warning
            _, writer = await asyncio.open_connection("127.0.0.1", port_of(port.listen_address))
            await hub.wait_for(lambda: hub.connects(0) == [True], "an IPv4 peer on a dual-stack socket")
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


def test_max_rate(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "--max-rate=2", "*0", "*0", "*0")
        for p in ports:
            p.start()
        try:
            number = port_of(ports[0].listen_address)
            writers = []
            for i in range(2):
                _, w = await asyncio.open_connection("127.0.0.1", number)
                writers.append(w)
                await hub.wait_for(lambda i=i: hub.connects(i) == [True], f"client {i}")
            await refused(asyncio.open_connection("127.0.0.1", number))
            await asyncio.sleep(SETTLE_S)
            assert hub.connects(2) == []
            assert gate_of(ports[0]).counts[tcp.Verdict.RATE_LIMITED] == 1
            await asyncio.sleep(0.6)  # one token back
            _, w = await asyncio.open_connection("127.0.0.1", number)
            writers.append(w)
            await hub.wait_for(lambda: hub.connects(2) == [True], "a later attempt")
            for w in writers:
                await close_writer(w)
        finally:
            close_all(ports)

    run(body)


# ---- read-only ports -------------------------------------------------------------------------


def test_read_only_port_discards_what_it_reads(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "--read-only", "*0")
        (port,) = ports
        port.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(port.listen_address))
            await hub.wait_for(lambda: hub.connects(0) == [True], "CONNECT is still reported")
            sent = b"\xff\xfa\x2c\x01\x00\x00\x04\xb0\xff\xf0 set baud, DTR, anything"
            writer.write(sent)
            port.write(LineData(b"observe"), 1)
            assert await read_exactly(reader, 7) == b"observe"
            # The peer's bytes reach the port's filters (telnet negotiates); the hub
            # routes only what passes the port's gate: nothing but CONNECT.
            await hub.wait_for(lambda: hub.data(0) == sent, "the input read")
            assert port.observer and port.gate_in is not None
            assert port.gate_in([m for _, m in hub.log]) == [Connect(True)]
            assert port.gate_in([RemoteBaudStatus(1200), FlowControl(True)]) == []
            assert port.discarded_in == len(sent) and port.ignored_requests == 1
            assert "read-only" in repr(port)
            await close_writer(writer)
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "disconnect reported")
        finally:
            close_all(ports)

    run(body)


# ---- TLS clients -------------------------------------------------------------------------------


async def tls_server(pki: Pki, received: bytearray, names: list[str]) -> asyncio.Server:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cert = writer.get_extra_info("peercert") or {}
        names.extend(v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName")
        writer.write(b"welcome")
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await reader.read(100):
                received.extend(chunk)
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)


def client_tls(pki: Pki) -> list[str]:
    return [f"--tls-cert={pki.client_cert}", f"--tls-key={pki.client_key}", f"--tls-ca={pki.ca}"]


@pytest.mark.parametrize("name", [None, "localhost"])
def test_tls_client_port(run: Any, pki: Pki, name: str | None) -> None:
    async def body() -> None:
        hub = FakeHub()
        received = bytearray()
        names: list[str] = []
        server = await tls_server(pki, received, names)
        number = server.sockets[0].getsockname()[1]
        extra = [f"--tls-server-name={name}"] if name else []
        ports = make_ports(hub, *client_tls(pki), *extra, f"*127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True], "connected")
            await hub.wait_for(lambda: hub.data(0) == b"welcome", "the server's greeting")
            port.write(LineData(b"from the hub"), 1)
            await until(lambda: bytes(received) == b"from the hub", "data at the server")
            assert names == ["hub client"]
        finally:
            close_all(ports)
            server.close()

    run(body)


def test_tls_client_checks_the_host_name(run: Any, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.tcp")

    async def body() -> None:
        hub = FakeHub()
        server = await tls_server(pki, bytearray(), [])
        number = server.sockets[0].getsockname()[1]
        ports = make_ports(hub, *client_tls(pki), "--tls-server-name=wrong.example", f"*127.0.0.1:{number}")
        (port,) = ports
        port.start()
        try:
            await until(lambda: port._failures >= 1, "the failed attempt")
            assert hub.connects(0) == []
        finally:
            close_all(ports)
            server.close()

    run(body)
    assert "cannot connect to 127.0.0.1:" in caplog.text
    assert "Hostname mismatch, certificate is not valid for 'wrong.example'" in caplog.text


def test_tls_between_our_own_ports(run: Any, pki: Pki) -> None:
    async def body() -> None:
        hub = FakeHub()
        drv = TcpDriver(hub)
        (listener,) = make_ports(hub, "--interface=127.0.0.1", *listener_tls(pki), "*0", driver=drv)
        listener.start()
        number = port_of(listener.listen_address)
        for arg in (*client_tls(pki), "--tls-server-name=localhost"):
            assert drv.config_arg(arg)
        client = drv.create_port(1, f"*127.0.0.1:{number}", dict(drv.options))
        client.start()
        try:
            await hub.wait_for(lambda: hub.connects(0) == [True] and hub.connects(1) == [True], "both up")
            client.write(LineData(b"ping"), 0)
            await hub.wait_for(lambda: hub.data(0) == b"ping", "client to listener")
            listener.write(LineData(b"pong"), 1)
            await hub.wait_for(lambda: hub.data(1) == b"pong", "listener to client")
        finally:
            close_all([client, listener])

    run(body)


# ---- bounded buffers ----------------------------------------------------------------------------


class _StubbornTransport:
    """A transport that ignores pause_reading (to test the held-data bound)."""

    def __init__(self) -> None:
        self.aborted = False

    def pause_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def test_data_held_while_paused_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "_HELD_MAX_BYTES", 1000)
    (port,) = make_ports(None, "*0")  # type: ignore[arg-type]
    proto = tcp._TcpProtocol(port)
    port._proto = proto
    transport = _StubbornTransport()
    port._transport = transport  # type: ignore[assignment]
    port.xoff_count = 1
    for _ in range(3):
        port._data_received(proto, b"x" * 300)
    assert not transport.aborted
    port._data_received(proto, b"x" * 300)
    assert transport.aborted
    assert port._held_bytes == 1200
