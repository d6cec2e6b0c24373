"""The udp driver: addresses, datagram framing (sans-IO), and real loopback sockets
(asyncio and uvloop loops): unicast, multicast, receive ports, --allow/--deny."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.udp import DatagramFramer, Role, UdpAddress, UdpDriver, UdpPort, parse_address
from hub.errors import UsageError
from hub.messages import FlowControl, LineData
from hub.options import option_names
from tests.unit.test_tcp import DEADLINE_S, SETTLE_S, FakeHub, run

__all__ = ["run"]  # the fixture, imported for the tests here

GROUP = "239.255.77.14"


# ---- addresses and options ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("127.0.0.1:10110", UdpAddress(Role.SEND, "127.0.0.1", 10110)),
        ("192.168.1.255:10110", UdpAddress(Role.SEND, "192.168.1.255", 10110)),
        ("chartplotter.local:10110", UdpAddress(Role.SEND, "chartplotter.local", 10110)),
        ("[::1]:10110", UdpAddress(Role.SEND, "::1", 10110)),
        ("[ff02::1%lo]:10110", UdpAddress(Role.SEND, "ff02::1%lo", 10110)),
        ("10110", UdpAddress(Role.RECEIVE, None, 10110)),
        ("@10110", UdpAddress(Role.RECEIVE, None, 10110)),
        ("@239.192.0.1:10110", UdpAddress(Role.RECEIVE, "239.192.0.1", 10110)),
        ("@127.0.0.1:domain", UdpAddress(Role.RECEIVE, "127.0.0.1", 53)),
        ("@[ff12::1]:5000", UdpAddress(Role.RECEIVE, "ff12::1", 5000)),
    ],
)
def test_parse_address(path: str, expected: UdpAddress) -> None:
    assert parse_address(path) == expected
    assert str(parse_address(str(expected))) == str(expected)


@pytest.mark.parametrize(
    "path",
    ["", "@", "host:0", "70000", "host:", ":5000", "::1:5000", "[::1]", "[nope]:5000", "bad host:1", "x:y"],
)
def test_invalid_addresses(path: str) -> None:
    with pytest.raises(UsageError, match="Invalid address") as info:
        parse_address(path)
    assert info.value.arg == path


def test_multicast_is_told_by_the_address() -> None:
    assert parse_address(f"{GROUP}:1").multicast and parse_address("[ff02::1]:1").multicast
    assert not parse_address("127.0.0.1:1").multicast and not parse_address("1").multicast


def test_usage_and_options() -> None:
    assert option_names(UdpDriver.USAGE) == {
        "--interface",
        "--frame",
        "--datagram-size",
        "--ttl",
        "--allow",
        "--deny",
        "--write-limit",
    }
    assert set(UdpDriver.DEFAULTS) == option_names(UdpDriver.USAGE)
    drv = UdpDriver(None)  # type: ignore[arg-type]
    for arg in ("--frame=line", "--datagram-size=512", "--ttl=4", "--allow=10.0.0.0/8", "--interface=::1"):
        assert drv.config_arg(arg)
    assert drv.options["--datagram-size"] == 512 and drv.options["--ttl"] == 4


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        ("--datagram-size=0", "Invalid --datagram-size value (1 to 65507)"),
        ("--datagram-size=70000", "Invalid --datagram-size value"),
        ("--ttl=256", "Invalid --ttl value (1 to 255)"),
        ("--frame=datagram", "Invalid --frame value"),
        ("--allow=10.0.0.1/8", "Invalid address or network"),
    ],
)
def test_bad_option_values_are_one_line(arg: str, text: str) -> None:
    with pytest.raises(UsageError) as info:
        UdpDriver(None).config_arg(arg)  # type: ignore[arg-type]
    assert text in str(info.value) and info.value.arg == arg


def test_interface_must_be_numeric() -> None:
    drv = UdpDriver(None)  # type: ignore[arg-type]
    drv.config_arg("--interface=localhost")
    with pytest.raises(UsageError, match="--interface must be an IP address"):
        drv.create_port(0, "127.0.0.1:5000", dict(drv.options))


# ---- framing ----------------------------------------------------------------------------


FRAMES = [
    # (size, framed, chunks written, datagrams sent, cut lines)
    (100, False, [b"abc", b"def"], [b"abc", b"def"], 0),
    (4, False, [b"abcdefghij"], [b"abcd", b"efgh", b"ij"], 0),
    (100, True, [b"$GPGGA*00\r\n"], [b"$GPGGA*00\r\n"], 0),
    (100, True, [b"$GPGGA", b"*00\r\n$GPRMC*", b"00\r\n"], [b"$GPGGA*00\r\n", b"$GPRMC*00\r\n"], 0),
    (10, True, [b"aaaa\nbbbb\ncccc\n"], [b"aaaa\nbbbb\n", b"cccc\n"], 0),
    (10, True, [b"aaaa\nbbbbbbbbbbbbbbb\ncc\n"], [b"aaaa\n", b"bbbbbbbbbb", b"bbbbb\ncc\n"], 1),
    (4, True, [b"abcdefghij", b"k\n"], [b"abcd", b"efgh", b"ijk\n"], 1),
    (4, True, [b"ab\n", b"cd"], [b"ab\n"], 0),
]


@pytest.mark.parametrize(("size", "framed", "chunks", "datagrams", "cut"), FRAMES)
def test_framing(size: int, framed: bool, chunks: list[bytes], datagrams: list[bytes], cut: int) -> None:
    f = DatagramFramer(size, framed)
    got = [d for c in chunks for d in f.push(c)]
    assert got == datagrams and f.cut_lines == cut


@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=20),
    cuts=st.lists(st.integers(0, 700), max_size=6),
    size=st.integers(1, 64),
)
def test_framed_datagrams_hold_whole_lines_unless_a_line_is_too_long(
    lines: list[bytes], cuts: list[int], size: int
) -> None:
    stream = b"".join(lines)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    f = DatagramFramer(size, framed=True)
    datagrams = [d for a, b in itertools.pairwise(points) for d in f.push(stream[a:b])]
    assert b"".join(datagrams) == stream and f.waiting == 0  # every line ends: nothing waits
    assert all(0 < len(d) <= size for d in datagrams)
    if all(len(line) <= size for line in lines):
        assert all(d.endswith(b"\n") for d in datagrams) and f.cut_lines == 0
    else:
        assert f.cut_lines == sum(1 for line in lines if len(line) > size)


# ---- on loopback sockets -----------------------------------------------------------------


def make_port(hub: FakeHub, *args: str, index: int = 0) -> UdpPort:
    drv = UdpDriver(hub)  # type: ignore[arg-type]
    *options, path = args
    for opt in options:
        assert drv.config_arg(opt), opt
    return drv.create_port(index, path, dict(drv.options))


async def started(hub: FakeHub, *args: str, index: int = 0) -> UdpPort:
    port = make_port(hub, *args, index=index)
    port.start()
    await hub.wait_for(lambda: port.connected, f"{port.name} open")
    return port


class Receiver:
    """A plain UDP socket, read in a thread-free way with a deadline."""

    def __init__(self, bind: tuple[str, int] = ("127.0.0.1", 0), group: str | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if group is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(bind)
        if group is not None:
            mreq = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def datagrams(self, n: int) -> list[bytes]:
        loop = asyncio.get_running_loop()
        got = []
        for _ in range(n):
            got.append(await asyncio.wait_for(loop.sock_recv(self.sock, 65536), DEADLINE_S))
        return got

    async def nothing(self) -> bool:
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65536), SETTLE_S)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


def test_sender_sends_whole_lines_per_datagram(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        rx = Receiver()
        port = await started(hub, "--frame=line", "--datagram-size=30", f"127.0.0.1:{rx.port}")
        try:
            assert port.framer.size == 30  # loopback's MTU allows more: the option is smaller
            port.write(LineData(b"$GPGGA,1*00\r\n$GPRMC,2*00\r\n$GPV"), 1)
            port.write(LineData(b"TG,3*00\r\n"), 1)
            assert await rx.datagrams(2) == [b"$GPGGA,1*00\r\n$GPRMC,2*00\r\n", b"$GPVTG,3*00\r\n"]
            assert port.datagrams_out == 2 and port.bytes_out == 39
            assert hub.connects(0) == [True]
        finally:
            port.close()
            rx.close()

    run(body)


def test_the_path_mtu_bounds_the_datagrams(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        hub = FakeHub()
        rx = Receiver()
        port = await started(hub, "--datagram-size=65507", f"127.0.0.1:{rx.port}")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("127.0.0.1", rx.port))
                mtu = probe.getsockopt(socket.IPPROTO_IP, 14)
            assert port.framer.size == min(65507, mtu - 28)
        finally:
            port.close()
            rx.close()

    run(body)


def test_replies_of_a_unicast_peer_enter_the_hub(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        rx = Receiver()
        port = await started(hub, f"127.0.0.1:{rx.port}")
        try:
            port.write(LineData(b"ping"), 1)
            (got,) = await rx.datagrams(1)
            assert got == b"ping"
            local = port.local
            assert local is not None
            rx.sock.sendto(b"pong", ("127.0.0.1", int(local.rsplit(":", 1)[1])))
            await hub.wait_for(lambda: hub.data(0) == b"pong", "the reply")
        finally:
            port.close()
            rx.close()

    run(body)


def test_nobody_listening_is_counted_and_logged_once(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "drivers.udp")

    async def body() -> None:
        hub = FakeHub()
        rx = Receiver()
        number = rx.port
        rx.close()  # nobody there: ICMP port unreachable comes back
        port = await started(hub, f"127.0.0.1:{number}")
        try:
            for _ in range(5):
                port.write(LineData(b"x"), 1)
                await asyncio.sleep(0.02)
            await hub.wait_for(lambda: port.send_errors >= 2, "ICMP errors")
            assert port.connected and "not delivered" in port.status()
        finally:
            port.close()

    run(body)
    assert caplog.text.count("was not delivered: Connection refused") == 1


def test_receive_port_takes_datagrams_and_answers_the_last_sender(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        port = await started(hub, "--interface=127.0.0.1", "@0")
        number = int((port.local or "").rsplit(":", 1)[1])
        a, b = Receiver(), Receiver()
        try:
            port.write(LineData(b"to nobody"), 1)
            assert port.unheard == 9
            a.sock.sendto(b"from a\n", ("127.0.0.1", number))
            await hub.wait_for(lambda: hub.data(0) == b"from a\n", "a's datagram")
            b.sock.sendto(b"from b\n", ("127.0.0.1", number))
            await hub.wait_for(lambda: hub.data(0) == b"from a\nfrom b\n", "b's datagram")
            port.write(LineData(b"answer"), 1)
            assert await b.datagrams(1) == [b"answer"] and await a.nothing()
            assert port.datagrams_in == 2
        finally:
            port.close()
            a.close()
            b.close()

    run(body)


def test_refused_senders_are_dropped_and_counted(run: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "drivers.udp")

    async def body() -> None:
        hub = FakeHub()
        port = await started(hub, "--interface=127.0.0.1", "--deny=127.0.0.1", "0")
        number = int((port.local or "").rsplit(":", 1)[1])
        tx = Receiver()
        try:
            for _ in range(3):
                tx.sock.sendto(b"let me in", ("127.0.0.1", number))
            await hub.wait_for(lambda: port.refused == 3, "three refusals")
            assert hub.data(0) == b"" and port.refused_bytes == 27 and port.datagrams_in == 0
            port.write(LineData(b"no reply to the refused"), 1)
            assert await tx.nothing()
            assert "refused 3 (27 B)" in port.status()
            assert port.snapshot()["datagrams"]["refused"] == 3
        finally:
            port.close()
            tx.close()

    run(body)
    assert caplog.text.count("dropped a datagram from 127.0.0.1 (not allowed by --allow/--deny)") == 1
    assert "refused 3 datagrams (27 B)" in caplog.text


def test_multicast_on_loopback(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        other = Receiver(("", 0), group=None)
        number = other.port
        other.close()
        listener = Receiver((GROUP, number), group=GROUP)
        rx = await started(hub, "--interface=127.0.0.1", f"@{GROUP}:{number}", index=1)
        tx = await started(hub, "--interface=127.0.0.1", "--frame=line", f"{GROUP}:{number}", index=0)
        try:
            tx.write(LineData(b"$GPGGA*00\r\n"), 5)
            # both members of the group get it: the hub's receive port and a plain socket
            assert await listener.datagrams(1) == [b"$GPGGA*00\r\n"]
            await hub.wait_for(lambda: hub.data(1) == b"$GPGGA*00\r\n", "the group's datagram")
            assert rx.status().startswith(f"receiving on {GROUP}:{number}")
        finally:
            tx.close()
            rx.close()
            listener.close()

    run(body)


def test_reading_paused_holds_datagrams_until_resumed(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        port = await started(hub, "--interface=127.0.0.1", "0")
        number = int((port.local or "").rsplit(":", 1)[1])
        tx = Receiver()
        try:
            port.write(FlowControl(True), 1)
            tx.sock.sendto(b"one", ("127.0.0.1", number))
            tx.sock.sendto(b"two", ("127.0.0.1", number))
            await asyncio.sleep(SETTLE_S)
            assert hub.data(0) == b""
            port.write(FlowControl(False), 1)
            await hub.wait_for(lambda: hub.data(0) == b"onetwo", "the held datagrams")
        finally:
            port.close()
            tx.close()

    run(body)


def test_close_counts_a_partial_line_as_unsent(run: Any) -> None:
    async def body() -> None:
        hub = FakeHub()
        rx = Receiver()
        port = await started(hub, "--frame=line", f"127.0.0.1:{rx.port}")
        port.write(LineData(b"no line end"), 1)
        assert port.queued_bytes() == 11
        port.close()
        assert port.lost_total == 11 and not port.connected
        rx.close()

    run(body)
