"""UDP end to end (issue 14): the real commands, loopback sockets, ptys, and gpsd.

gps-share --udp sends whole NMEA sentences per datagram; gpsd reads a udp://
source the hub feeds; multicast on the loopback interface; a receive port
feeding a pty (and answering its sender); refused senders dropped and counted;
packetize --gap measured on the wire with kernel receive timestamps. Every
wait has a deadline; every process is stopped by its pid.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct

import pytest

from .conftest import DEADLINE_S
from .test_gps_share import GPSD, gpsd_fix, gpsd_serving, nmea_ok, start
from .test_network import open_app, read_app
from .test_security import loopback2

__all__ = ["start"]  # the fixture, imported for the tests here

GROUP = "239.255.77.15"
#: Linux: receive timestamps in nanoseconds (struct timespec) with each datagram.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def udp_socket(bind: tuple[str, int], group: str | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if group is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(bind)
    if group is not None:
        mreq = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.settimeout(DEADLINE_S)
    return sock


def datagrams(sock: socket.socket, n: int) -> list[bytes]:
    return [sock.recv(65536) for _ in range(n)]


def whole_sentences(datagram: bytes) -> bool:
    lines = datagram.split(b"\n")
    return lines[-1] == b"" and all(nmea_ok(line + b"\n") for line in lines[:-1])


def test_gps_share_sends_whole_sentences_per_datagram(start):
    with udp_socket(("127.0.0.1", 0)) as rx:
        number = rx.getsockname()[1]
        gs = start("--demo", "--rate=10", "--udp", f"127.0.0.1:{number}", wait_ports=2)
        gs.wait_line("UDP(1) sends to 127.0.0.1:")
        got = datagrams(rx, 30)
    # The first datagram may start mid-epoch, never mid-sentence.
    bad = [d for d in got if not whole_sentences(d)]
    assert not bad, f"datagrams with a partial or broken sentence: {bad[:3]}"
    assert sum(d.count(b"\n") for d in got) >= 30
    assert gs.stop() == 0


def test_multicast_on_the_loopback_interface(start):
    number = free_udp_port()
    with udp_socket((GROUP, number), group=GROUP) as member:
        hub = start(
            "--use-driver=sim",
            "--rate=10",
            "gps",
            "--use-driver=udp",
            "--interface=127.0.0.1",
            "--frame=line",
            f"{GROUP}:{number}",
            gps_share=False,
            wait_ports=2,
        )
        got = datagrams(member, 10)
        assert all(whole_sentences(d) for d in got)
        assert hub.stop() == 0


def test_a_receive_port_feeds_a_pty_and_answers_its_sender(start, tmp_path):
    link = tmp_path / "nmea-in"
    number = free_udp_port()
    hub = start(
        "--use-driver=udp",
        "--interface=127.0.0.1",
        f"{number}",
        "--use-driver=pty",
        str(link),
        gps_share=False,
        wait_ports=2,
    )
    hub.wait_line(f"UDP(0) receives on 127.0.0.1:{number}")
    fd = open_app(link)
    with udp_socket(("127.0.0.1", 0)) as sender:
        try:
            hub.wait_line("nmea-in(1) connected")
            sender.sendto(b"$GPGGA,1*00\r\n", ("127.0.0.1", number))
            assert read_app(fd, 13) == b"$GPGGA,1*00\r\n"
            os.write(fd, b"ACK\r\n")  # the application answers: back to the sender
            assert sender.recv(100) == b"ACK\r\n"
        finally:
            os.close(fd)
    assert hub.stop() == 0


def test_refused_senders_are_dropped_and_counted(start, tmp_path):
    if not loopback2():
        pytest.skip("127.0.0.2 is not a local address here")
    link = tmp_path / "nmea-in"
    number = free_udp_port()
    hub = start(
        "--status-interval=0.2",
        "--use-driver=udp",
        "--interface=127.0.0.1",
        "--allow=127.0.0.2",
        f"{number}",
        "--use-driver=pty",
        str(link),
        gps_share=False,
        wait_ports=2,
    )
    fd = open_app(link)
    try:
        hub.wait_line("nmea-in(1) connected")
        with udp_socket(("127.0.0.1", 0)) as stranger, udp_socket(("127.0.0.2", 0)) as friend:
            for _ in range(3):
                stranger.sendto(b"$GPGGA,evil*00\r\n", ("127.0.0.1", number))
            hub.wait_line("refused 3 (48 B)")
            friend.sendto(b"$GPGGA,good*00\r\n", ("127.0.0.1", number))
            assert read_app(fd, 16) == b"$GPGGA,good*00\r\n", "only the admitted sender's data"
    finally:
        os.close(fd)
    assert hub.stop() == 0
    hub.wait_line("dropped a datagram from 127.0.0.1 (not allowed by --allow/--deny)")
    hub.wait_line("refused 3 datagrams (48 B)")


def test_packet_gap_measured_on_the_wire(start, pty_device):
    """packetize --gap: the kernel's receive timestamps of the datagrams are the hub's
    send times on loopback, whatever this test's own scheduling."""
    dev = pty_device()
    with udp_socket(("127.0.0.1", 0)) as rx:
        rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        number = rx.getsockname()[1]
        hub = start(
            "--create-filter=packetize:--end-byte=LF --gap=200",
            "--add-filters=0:packetize",
            "--octs=off",
            dev.path,
            "--use-driver=udp",
            f"127.0.0.1:{number}",
            gps_share=False,
            wait_ports=2,
        )
        hub.wait_line("UDP(1) sends to")
        lines = [b"$GPGGA,%d*00\r\n" % i for i in range(5)]
        dev.write(b"".join(lines))  # one write: five packets
        stamps = []
        got = []
        for _ in lines:
            data, anc, _, _ = rx.recvmsg(65536, 1024)
            got.append(data)
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    stamps.append(sec + nsec / 1e9)
    assert got == lines, "one packet per line, in order"
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # At least the gap, less the event loop's clock granularity (uvloop reads the clock
    # once per loop iteration): without --gap the five would leave within microseconds.
    assert len(gaps) == 4 and min(gaps) >= 0.2 - 0.01, f"gaps on the wire: {gaps}"
    print(f"packet gaps on the wire: {', '.join(f'{g * 1000:.1f} ms' for g in gaps)}")
    assert hub.stop() == 0


@pytest.mark.interop
@pytest.mark.skipif(GPSD is None, reason="gpsd is not installed (Debian package gpsd)")
def test_gpsd_reads_a_udp_source_the_hub_feeds(start, tmp_path):
    number = free_udp_port()
    with gpsd_serving(f"udp://127.0.0.1:{number}", tmp_path) as gpsd_port:
        gs = start("--demo", "--rate=5", "--udp", f"127.0.0.1:{number}", wait_ports=2)
        fix = gpsd_fix(gpsd_port)
        assert abs(fix["lat"] - 52.52) < 0.1 and abs(fix["lon"] - 13.405) < 0.1
        assert fix["device"] == f"udp://127.0.0.1:{number}"
        assert gs.stop() == 0
