"""Per-session filters and policies on multi-client ports, against pyserial's RFC 2217 client.

Several RFC 2217 clients on one device (a pty standing in for it): every client
negotiates on its own, the writer's settings reach the device's termios, the
observers are answered with the device's values; flow control and the
configured settings after a session; read-only observers; a seeded fuzz of
hostile COM-PORT sequences over many sessions.
"""

from __future__ import annotations

import os
import random
import re
import socket
import termios
import time
from pathlib import Path

import pytest
import serial

from filters._telnet import ComPort, encode_comport

from .conftest import DEADLINE_S, PtyDevice, free_port, wait_for
from .test_rfc2217 import device_termios, read_all

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
IAC, SB, SE, WILL, DO = 255, 250, 240, 251, 253


def rfc2217(port: int, **kw: object) -> serial.SerialBase:
    return serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", timeout=DEADLINE_S, **kw)


def nothing_from(dev: PtyDevice, wait_s: float = 0.3) -> bool:
    """True if the device got no byte within `wait_s` (what it got is read away)."""
    time.sleep(wait_s)
    try:
        return os.read(dev.master, 65536) == b""
    except BlockingIOError:
        return True


def cflag(dev: PtyDevice) -> int:
    return termios.tcgetattr(dev.slave)[2]


def iflag(dev: PtyDevice) -> int:
    return termios.tcgetattr(dev.slave)[0]


def test_three_rfc2217_clients_share_one_device(start_command, pty_device):
    """The issue's scenario: all three open; each gets the device's data; only the
    writer (the first, --recv-from first) changes the device; the others are told
    the device's values and their data goes nowhere."""
    dev = pty_device()
    port = free_port()
    hub = start_command(
        "--max-clients", "3", "--recv-from", "first", "--interface", "127.0.0.1", dev.path, str(port)
    )
    clients = [rfc2217(port, baudrate=19200) for _ in range(3)]  # the serial default
    try:
        writer, observers = clients[0], clients[1:]
        writer.baudrate = 57600
        assert device_termios(dev) == (termios.B57600, False)
        for obs in observers:
            with pytest.raises(ValueError, match="remote rejected value for option 'baudrate'"):
                obs.baudrate = 38400
        assert device_termios(dev)[0] == termios.B57600

        dev.write(b"to everyone \xff\n")
        for c in clients:
            assert read_all(c, 14) == b"to everyone \xff\n"
        writer.write(b"from the writer\xff")
        assert dev.read(16) == b"from the writer\xff"
        for i, obs in enumerate(observers):
            obs.write(b"observer %d" % i)
        assert nothing_from(dev)
    finally:
        for c in clients:
            c.close()
    for n in (2, 3):
        hub.wait_line(f"TCPM(1): client {n} (")
    assert "requests not applied (observer)" in hub.output
    assert "Filters TCPM(1) <-> telnet" in hub.output and "(for each session)" in hub.output
    assert "Traceback" not in hub.output


@pytest.mark.parametrize("kind", ["tcp slot", "tcp-multi"])
def test_read_only_observers_negotiate(kind, start_command, pty_device):
    """--read-only ports complete telnet and RFC 2217 negotiation; their requests are
    answered with the device's values and not applied; their data is discarded."""
    dev = pty_device()
    port = free_port()
    if kind == "tcp slot":
        load = f"--load={ROOT / 'examples' / 'com2tcp-rfc2217-server.txt'},_BEGIN_,_END_:{dev.path},{port}"
        hub = start_command("--interface=127.0.0.1", "--read-only", load, hub4com=True)
    else:
        hub = start_command("--read-only", "--interface", "127.0.0.1", dev.path, str(port))
    c = rfc2217(port, baudrate=19200)
    try:
        dev.write(b"watch this\n")
        assert read_all(c, 11) == b"watch this\n"
        with pytest.raises(ValueError, match="remote rejected value for option 'baudrate'"):
            c.baudrate = 115200
        assert device_termios(dev)[0] == termios.B19200
        c.write(b"let me write")
        assert nothing_from(dev)
    finally:
        c.close()
    assert "Traceback" not in hub.output


def test_flow_control_and_settings_restored_after_the_session(start_command, pty_device):
    """SET-CONTROL flow control reaches the device; when the client goes, the device is
    back at its configured settings and the next client starts from them."""
    dev = pty_device()
    port = free_port()
    hub = start_command("--interface", "127.0.0.1", dev.path, str(port))
    c = rfc2217(port, baudrate=115200, rtscts=True)
    try:
        assert device_termios(dev)[0] == termios.B115200
        assert cflag(dev) & termios.CRTSCTS
        c.rtscts = False
        c.xonxoff = True
        assert not cflag(dev) & termios.CRTSCTS
        assert iflag(dev) & termios.IXON and iflag(dev) & termios.IXOFF
    finally:
        c.close()
    hub.wait_line("back to the configured settings")
    wait_for(lambda: device_termios(dev)[0] == termios.B19200, what="the configured 19200")
    assert not cflag(dev) & termios.CRTSCTS and not iflag(dev) & (termios.IXON | termios.IXOFF)
    c = rfc2217(port, baudrate=19200)  # no flow control asked: the device has none
    try:
        dev.write(b"fresh\n")
        assert read_all(c, 6) == b"fresh\n"
    finally:
        c.close()
    assert "Traceback" not in hub.output


# ---- hostile COM-PORT sequences over many sessions ------------------------------------------

SETTINGS = (ComPort.SET_BAUDRATE, ComPort.SET_DATASIZE, ComPort.SET_PARITY, ComPort.SET_STOPSIZE)


def hostile_session(rnd: random.Random) -> bytes:
    """A client that agrees to COM-PORT and then sends nonsense, some of it cut off."""
    parts = [bytes((IAC, WILL, 44, IAC, DO, 0, IAC, WILL, 0))]
    for _ in range(rnd.randrange(1, 12)):
        pick = rnd.random()
        if pick < 0.3:
            value = rnd.choice([0, 1, 4294967295, 2**31, 2**31 - 1, 7, 50, rnd.getrandbits(32)])
            parts.append(encode_comport(ComPort.SET_BAUDRATE, value, server=False))
        elif pick < 0.55:
            cmd = rnd.choice(SETTINGS[1:])
            parts.append(bytes((IAC, SB, 44, cmd, rnd.randrange(256), IAC, SE)))
        elif pick < 0.7:
            parts.append(bytes((IAC, SB, 44, ComPort.SET_CONTROL, rnd.randrange(256), IAC, SE)))
        elif pick < 0.8:
            parts.append(bytes((IAC, SB, 44, rnd.randrange(256))) + rnd.randbytes(rnd.randrange(8)))
            parts.append(bytes((IAC, SE)))
        elif pick < 0.9:
            parts.append(rnd.randbytes(rnd.randrange(1, 64)))
        else:
            parts.append(bytes((IAC, SB, 44, ComPort.SET_BAUDRATE, 0xFF)))  # cut mid-value
    return b"".join(parts)


def proc_usage(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open fds) of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def test_hostile_comport_fuzz_leaves_the_device_usable(start_command, pty_device):
    dev = pty_device()
    port = free_port()
    hub = start_command("--max-clients", "0", "--interface", "127.0.0.1", dev.path, str(port))
    # One normal session first, so that start-up allocations are behind us.
    c = rfc2217(port, baudrate=9600)
    c.close()
    hub.wait_line("back to the configured settings")
    rss_before, fds_before = proc_usage(hub.proc.pid)
    rnd = random.Random(2217)
    sessions = 300
    batch = 6
    for done in range(batch, sessions + 1, batch):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) for _ in range(batch)]
        for s in socks:
            s.sendall(hostile_session(rnd))
        for s in socks:
            if rnd.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        # one batch at a time, below the listener's --max-rate of 100 connections a second
        hub.wait_line("disconnected after", count=done + 1)
        time.sleep(0.06)
    assert hub.proc.poll() is None
    while not nothing_from(dev, 0.1):  # the data the hostile clients sent
        pass

    c = rfc2217(port, baudrate=9600)
    try:
        assert device_termios(dev) == (termios.B9600, False)
        assert cflag(dev) & termios.CSIZE == termios.CS8 and not cflag(dev) & termios.PARENB
        dev.write(b"still here \xff\n")
        assert read_all(c, 13) == b"still here \xff\n"
        c.write(b"and back\n")
        assert dev.read(9) == b"and back\n"
    finally:
        c.close()
    hub.wait_line("disconnected after", count=sessions + 2)
    rss_after, fds_after = proc_usage(hub.proc.pid)
    assert fds_after == fds_before
    assert rss_after - rss_before < 8 * 1024, f"RSS grew from {rss_before} to {rss_after} KiB"
    assert "Traceback" not in hub.output
    assert hub.proc.poll() is None


def test_com2tcp_rfc2217_initial_settings_are_the_configured_ones(start_command, pty_device):
    """--baud/--parity of com2tcp-rfc2217: the device starts there, and a session's change
    is undone when it ends (--restore)."""
    dev = pty_device()
    port = free_port()
    hub = start_command("--baud", "115200", "--stop", "2", "--interface", "127.0.0.1", dev.path, str(port))
    assert device_termios(dev) == (termios.B115200, True)
    c = rfc2217(port, baudrate=9600, stopbits=serial.STOPBITS_TWO)
    try:
        assert device_termios(dev) == (termios.B9600, True)
    finally:
        c.close()
    hub.wait_line("back to the configured settings")
    wait_for(lambda: device_termios(dev) == (termios.B115200, True), what="115200 again")
