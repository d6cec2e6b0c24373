"""Connection options of the tcp driver on real loopback sockets (asyncio and uvloop
loops): keepalive timing, --idle-timeout, --buffer and --frame while nobody is
connected, --listen=on-demand.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest

from drivers import _netopts
from drivers._netopts import Keepalive
from drivers.tcp import State, TcpDriver, TcpPort
from drivers.tcpmulti import TcpMultiDriver
from hub.errors import PortError, UsageError
from hub.messages import Connect, LineData
from tests.unit.test_tcp import (
    DEADLINE_S,
    SETTLE_S,
    FakeHub,
    Server,
    close_all,
    close_writer,
    make_ports,
    open_client,
    port_of,
    read_exactly,
    run,
)

__all__ = ["run"]  # the fixture, imported for the tests here


def sock_of(port: TcpPort) -> socket.socket:
    transport = port._transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    assert sock is not None
    return sock


def keepalive_of(sock: socket.socket) -> tuple[int, int, int, int, int]:
    get = sock.getsockopt
    return (
        get(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        get(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        get(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        get(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        get(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
    )


# ---- keepalive ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, []),
        (
            {"--keepalive": 30},
            [("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3), ("TCP_USER_TIMEOUT", 60_000)],
        ),
        (
            {"--keepalive": 7, "--keepalive-interval": 2, "--keepalive-count": 4},
            [("TCP_KEEPIDLE", 7), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 4), ("TCP_USER_TIMEOUT", 15_000)],
        ),
        (
            {"--keepalive": 2},
            [("TCP_KEEPIDLE", 2), ("TCP_KEEPINTVL", 1), ("TCP_KEEPCNT", 3), ("TCP_USER_TIMEOUT", 5_000)],
        ),
        ({"--keepalive-count": 5}, [("TCP_KEEPCNT", 5)]),
    ],
)
def test_keepalive_settings(options: dict[str, int], expected: list[tuple[str, int]]) -> None:
    assert Keepalive.from_options(options).settings() == expected


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        ("--keepalive=-1", "Invalid --keepalive value (seconds, 0 to 32767)"),
        ("--keepalive=40000", "Invalid --keepalive value (seconds, 0 to 32767)"),
        ("--keepalive-interval=1.5", "Invalid --keepalive-interval value"),
        ("--keepalive-count=128", "Invalid --keepalive-count value (probes, 0 to 127)"),
        ("--idle-timeout=soon", "Invalid --idle-timeout value"),
    ],
)
@pytest.mark.parametrize("driver", [TcpDriver, TcpMultiDriver])
def test_bad_keepalive_values_are_one_line(arg: str, text: str, driver: Any) -> None:
    with pytest.raises(UsageError) as info:
        driver(None).config_arg(arg)
    assert text in str(info.value) and info.value.arg == arg


def test_both_tcp_drivers_share_the_option_texts() -> None:
    for driver in (TcpDriver, TcpMultiDriver):
        assert _netopts.KEEPALIVE_USAGE in driver.USAGE
        assert set(_netopts.DEFAULTS) <= set(driver.DEFAULTS)


def test_keepalive_values_read_back_on_a_listener_and_a_client(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        await server.start()
        opts = ["--keepalive=7", "--keepalive-interval=2", "--keepalive-count=4"]
        ports = make_ports(hub, "--interface=127.0.0.1", *opts, "*0", f"*127.0.0.1:{server.port}")
        listener, client = ports
        try:
            listener.start()
            client.start()
            _, writer = await open_client(port_of(listener.listen_address))
            await hub.wait_for(lambda: listener.state is State.CONNECTED, "the listener's session")
            await hub.wait_for(lambda: client.state is State.CONNECTED, "the client's connection")
            for port in ports:
                assert keepalive_of(sock_of(port)) == (1, 7, 2, 4, 15_000)
                assert sock_of(port).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            await close_writer(writer)
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_without_keepalive_options_the_system_timing_stays(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        with socket.socket() as probe:
            system = probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        ports = make_ports(hub, "--interface=127.0.0.1", "*0")
        try:
            ports[0].start()
            _, writer = await open_client(port_of(ports[0].listen_address))
            await hub.wait_for(lambda: ports[0].state is State.CONNECTED, "a session")
            sock = sock_of(ports[0])
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == system
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


# ---- --idle-timeout ----------------------------------------------------------------


def test_idle_session_is_closed_at_the_timeout(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "drivers.tcp")

    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "--idle-timeout=1", "*0")
        (port,) = ports
        try:
            port.start()
            reader, writer = await open_client(port_of(port.listen_address))
            await hub.wait_for(lambda: hub.connects(0) == [True], "CONNECT(TRUE)")
            start = asyncio.get_running_loop().time()
            # Traffic either way keeps the session: 8 x 0.2 s is past the timeout.
            for i in range(8):
                await asyncio.sleep(0.2)
                if i % 2:
                    writer.write(b"x")
                else:
                    port.write(LineData(b"y"), 5)
                    assert await read_exactly(reader, 1) == b"y"
            assert port.state is State.CONNECTED
            await hub.wait_for(lambda: hub.connects(0) == [True, False], "the idle close")
            assert asyncio.get_running_loop().time() - start >= 1.6 + 1.0 - 0.05
            assert await asyncio.wait_for(reader.read(), DEADLINE_S) == b""
            assert port.state is State.IDLE  # offered again
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)
    assert "no data for 1 s (--idle-timeout)" in caplog.text


def test_idle_client_reconnects_by_its_policy(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        await server.start()
        ports = make_ports(hub, "--idle-timeout=0.3", f"*127.0.0.1:{server.port}")
        try:
            ports[0].start()
            await server.wait_for(lambda: len(server.transports) == 2, "a second connection")
            assert hub.connects(0)[:2] == [True, False]
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_no_idle_timeout_by_default(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "*0")
        try:
            ports[0].start()
            assert ports[0]._idle is None
            _, writer = await open_client(port_of(ports[0].listen_address))
            await hub.wait_for(lambda: hub.connects(0) == [True], "CONNECT(TRUE)")
            await asyncio.sleep(SETTLE_S)
            assert hub.connects(0) == [True]
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


# ---- --buffer and --frame ---------------------------------------------------------


def test_buffered_data_goes_to_the_first_client_in_whole_lines(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "--buffer=38", "--frame=line", "*0")
        (port,) = ports
        try:
            port.start()
            for chunk in (b"ial line\n$GPGGA,1*00\r\n", b"$GPRMC,2*00\r\n$GP", b"GSA,3*00\r\n$GPVTG,4"):
                port.write(LineData(chunk), 5)
            # kept: GGA and RMC (26 B); GSA does not fit, so nothing after it is kept
            assert port.unheard == len(b"ial line\n") + len(b"$GPGSA,3*00\r\n") + len(b"$GPVTG,4")
            assert port.bytes_out == 26
            reader, writer = await open_client(port_of(port.listen_address))
            await hub.wait_for(lambda: port.state is State.CONNECTED, "a session")
            port.write(LineData(b"*00\r\n$GPGGA,5*00\r\n"), 5)  # the rest of VTG is skipped
            want = b"$GPGGA,1*00\r\n$GPRMC,2*00\r\n$GPGGA,5*00\r\n"
            assert await read_exactly(reader, len(want)) == want
            assert port.unheard == 9 + 13 + 8 + 5
            assert port.lost_total == 0
            await close_writer(writer)
            await hub.wait_for(lambda: port.state is State.IDLE, "the end of the session")
            # between sessions the buffer collects again, for the next client
            port.write(LineData(b"$GPRMC,6*00\r\n"), 5)
            reader, writer = await open_client(port_of(port.listen_address))
            assert await read_exactly(reader, 13) == b"$GPRMC,6*00\r\n"
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


def test_buffer_of_an_on_demand_client_goes_before_what_it_held(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        server = Server()
        await server.start()
        ports = make_ports(hub, "--buffer=100", f"127.0.0.1:{server.port}")
        (port,) = ports
        try:
            port.start()
            port.write(LineData(b"kept "), 5)  # nobody asked for a connection: the buffer keeps it
            assert port.unheard == 0 and server.transports == []
            port.write(Connect(True), 5)
            port.write(LineData(b"held"), 5)  # held while connecting
            await server.wait_for(lambda: bytes(server.received) == b"kept held", "kept, then held data")
        finally:
            close_all(ports)
            await server.stop()

    run(body)


def test_frame_line_without_buffer_starts_a_client_at_a_line_start(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        ports = make_ports(hub, "--interface=127.0.0.1", "--frame=line", "*0")
        (port,) = ports
        try:
            port.start()
            port.write(LineData(b"one\ntw"), 5)
            reader, writer = await open_client(port_of(port.listen_address))
            await hub.wait_for(lambda: port.state is State.CONNECTED, "a session")
            port.write(LineData(b"o\nthree\n"), 5)
            assert await read_exactly(reader, 6) == b"three\n"
            assert port.unheard == 6 + 2
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


# ---- --listen=on-demand --------------------------------------------------------------


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def refused(number: int) -> bool:
    try:
        _, writer = await open_client(number)
    except ConnectionRefusedError:
        return True
    await close_writer(writer)
    return False


def test_on_demand_listener_listens_only_while_a_connection_is_wanted(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        number = free_tcp_port()
        ports = make_ports(hub, "--interface=127.0.0.1", "--listen=on-demand", f"{number}")
        (port,) = ports
        try:
            port.start()
            assert port.listen_address is None and await refused(number)
            assert port.status() == f"not listening on port {number} until a connection is wanted"
            assert port.problem() is None and port.port_state().value == "waiting"
            port.write(Connect(True), 5)
            assert port.listen_address == f"127.0.0.1:{number}"
            reader, writer = await open_client(number)
            await hub.wait_for(lambda: port.state is State.CONNECTED, "a session")
            port.write(LineData(b"hi"), 5)
            assert await read_exactly(reader, 2) == b"hi"
            port.write(Connect(False), 5)  # not wanted: no socket, and the session half-closes
            assert port.listen_address is None and await refused(number)
            assert await asyncio.wait_for(reader.read(), DEADLINE_S) == b""
            await close_writer(writer)
            port.write(Connect(True), 5)
            _, writer = await open_client(number)
            await close_writer(writer)
        finally:
            close_all(ports)

    run(body)


def test_on_demand_listener_with_a_bad_address_fails_at_start(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            number = taken.getsockname()[1]
            ports = make_ports(hub, "--interface=127.0.0.1", "--listen=o", f"{number}")
            with pytest.raises(PortError, match=r"Cannot listen on 127\.0\.0\.1:"):
                ports[0].start()
            close_all(ports)

    run(body)


@pytest.mark.parametrize(
    ("arg", "ok"), [("--listen=ALWAYS", True), ("--listen=on", True), ("--listen=x", False)]
)
def test_listen_option_values(arg: str, ok: bool) -> None:
    drv = TcpDriver(None)  # type: ignore[arg-type]
    if ok:
        assert drv.config_arg(arg)
    else:
        with pytest.raises(UsageError, match="Invalid --listen value"):
            drv.config_arg(arg)
