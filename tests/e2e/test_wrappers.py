"""The wrapper commands end to end: multiplexer, com2tcp-esc, com2tcp, and ratelimit pacing.

Each test starts the real commands (`python -m hub.commands.<name>`, or the hub
for ratelimit) with pty pairs standing in for serial devices and loopback TCP.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import serial

from .conftest import DEADLINE_S, Hub, PtyDevice, free_port, recv_exactly, wait_for

# ---- helpers ---------------------------------------------------------------------------


class WrapperHub(Hub):
    """A running wrapper command (multiplexer, com2tcp, ...); output collected as Hub's."""

    def __init__(self, command: str, args: list[str]):
        self.args = args
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"hub.commands.{command}", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


@pytest.fixture
def start_cmd(pty_device: Callable[[], PtyDevice]) -> Iterator[Callable[..., Hub]]:
    """Start a wrapper command; all are stopped (by pid) before the pty devices close."""
    hubs: list[Hub] = []

    def start(command: str, *args: str, wait_ports: int | None = None) -> Hub:
        hub = WrapperHub(command, list(args))
        hubs.append(hub)
        if wait_ports:
            hub.wait_started(wait_ports)
        return hub

    yield start
    for hub in hubs:
        hub.stop()


def print_args(command: str, *args: str) -> list[str]:
    """The hub4com arguments a wrapper prints with --print-args."""
    result = subprocess.run(
        [sys.executable, "-m", f"hub.commands.{command}", "--print-args", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=True,
    )
    argv = shlex.split(result.stdout)
    assert argv[0] == "hub4com"
    return argv[1:]


def open_app(path, baud: int = 115200, timeout: float = 0.2) -> serial.Serial:
    """Open a hub pty link as an application does."""
    wait_for(lambda: os.path.exists(path), what=f"{path} to exist")
    return serial.Serial(str(path), baud, timeout=timeout)


def app_read(app: serial.Serial, n: int, timeout: float = DEADLINE_S) -> bytes:
    """Read exactly `n` bytes from an application's port or fail at the deadline."""
    buf = bytearray()
    end = time.monotonic() + timeout
    while len(buf) < n:
        buf += app.read(n - len(buf))
        if len(buf) < n and time.monotonic() > end:
            raise AssertionError(f"application read: got {len(buf)} of {n} bytes")
    return bytes(buf)


def line_of(dev: PtyDevice) -> tuple[int, bool]:
    """(termios speed code, two stop bits) of a pty device, as the hub set them."""
    attrs = termios.tcgetattr(dev.slave)
    return attrs[5], bool(attrs[2] & termios.CSTOPB)


class Parallel:
    """Run callables in threads; re-raise the first failure in the caller."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.results: dict[str, object] = {}

    def run(self, name: str, fn: Callable[[], object]) -> None:
        def body() -> None:
            try:
                self.results[name] = fn()
            except BaseException as exc:
                self.errors.append(exc)

        t = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def join(self, timeout: float = 2 * DEADLINE_S) -> dict[str, object]:
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))
        if self.errors:
            raise self.errors[0]
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, f"still running after {timeout}s: {alive}"
        return self.results


# ---- multiplexer ---------------------------------------------------------------------


def test_multiplexer_three_subports_over_tcp(start_cmd, pty_device, tmp_path):
    devices = [pty_device() for _ in range(3)]
    port = free_port()
    server = start_cmd(
        "multiplexer",
        "--link-type",
        "tcp",
        "--interface",
        "127.0.0.1",
        str(port),
        "--mode",
        "server",
        *(d.path for d in devices),
        wait_ports=10,
    )
    links = [tmp_path / f"sub{i}" for i in range(3)]
    client = start_cmd(
        "multiplexer", "--link-type", "tcp", f"127.0.0.1:{port}", *map(str, links), wait_ports=10
    )
    server.wait_line("TCP(0) connected")
    client.wait_line("TCP(0) connected")
    apps = [open_app(p) for p in links]
    try:
        # Each device follows the baud rate its application opened the port with.
        for d in devices:
            wait_for(lambda d=d: line_of(d) == (termios.B115200, False), what="115200 baud on each device")

        # Three pairs, both directions, all at once; different data everywhere.
        size = 48 * 1024
        up = [os.urandom(size) for _ in range(3)]
        down = [os.urandom(size) for _ in range(3)]
        jobs = Parallel()
        for i in range(3):
            app, dev = apps[i], devices[i]
            jobs.run(f"app{i}-write", lambda app=app, data=up[i]: app.write(data))
            jobs.run(f"dev{i}-write", lambda dev=dev, data=down[i]: dev.write(data))
            jobs.run(f"app{i}-read", lambda app=app: app_read(app, size))
            jobs.run(f"dev{i}-read", lambda dev=dev: dev.read(size))
        got = jobs.join()
        for i in range(3):
            assert got[f"dev{i}-read"] == up[i], f"device {i} got other data than application {i} sent"
            assert got[f"app{i}-read"] == down[i], f"application {i} got other data than device {i} sent"

        # RFC 2217 line settings per sub-port: application 1 sets 9600 baud, 2 stop bits.
        before = [line_of(d) for d in devices]
        apps[1].baudrate = 9600
        apps[1].stopbits = serial.STOPBITS_TWO
        wait_for(
            lambda: line_of(devices[1]) == (termios.B9600, True), what="9600 baud, 2 stop bits on device 1"
        )
        time.sleep(0.3)
        assert line_of(devices[0]) == before[0]
        assert line_of(devices[2]) == before[2]
        # Data still flows on the changed sub-port.
        apps[1].write(b"after the change")
        assert devices[1].read(16) == b"after the change"
    finally:
        for a in apps:
            a.close()
    assert "Write lost" not in server.output + client.output


# ---- com2tcp-esc -------------------------------------------------------------------


def test_com2tcp_esc_carries_baud_rate_and_modem_lines(start_cmd, start_hub, pty_device, tmp_path):
    """Client: an application on a pty link. Server: a device. Baud rate and DSR cross the link."""
    device = pty_device()
    port = free_port()
    # The server runs from a --load file: the arguments com2tcp-esc prints, plus a
    # trace of what its escparse decodes from the TCP stream.
    args = print_args("com2tcp_esc", "--interface", "127.0.0.1", device.path, str(port))
    parse = args.index("--create-filter=escparse,tcp,parse:--request-esc-mode=no")
    trace = tmp_path / "server.trace"
    args[parse + 1 : parse + 1] = ["--create-filter=trace,tcp,ESC"]
    load = tmp_path / "server.load"
    load.write_text("\n".join([f"--trace-file={trace}", *args]) + "\n")
    server = start_hub(f"--load={load}", wait_ports=2)
    link = tmp_path / "vcom"
    client = start_cmd("com2tcp_esc", "--pty", str(link), "127.0.0.1", str(port), wait_ports=2)
    server.wait_line("TCP(1) connected")
    client.wait_line("TCP(1) connected")
    assert line_of(device)[0] == termios.B19200  # the serial driver's default

    app = open_app(link, baud=9600)
    try:
        # The application's baud rate (remote baud rate of the pty) becomes an RBR
        # record, and the server sets its device to it.
        wait_for(lambda: line_of(device) == (termios.B9600, False), what="9600 baud on the device")
        # The application opening the port raises CTS, DSR and DCD: an MST record, of
        # which the server's pinmap asks for CTS and DSR (its RTS and DTR follow them).
        wait_for(lambda: "MODEM_STATUS SET[CTS DSR] CLR[]" in trace.read_text(), what="DSR on in the trace")
        assert "RBR_STATUS 9600" in trace.read_text()
        app.baudrate = 57600
        wait_for(lambda: line_of(device) == (termios.B57600, False), what="57600 baud on the device")
        # Data both ways, 0xFF bytes included (escaped as FF 00 on the wire).
        app.write(b"\xff\x00\xff\x03up")
        assert device.read(6) == b"\xff\x00\xff\x03up"
        device.write(b"down\xff\x10\xff")
        assert app_read(app, 7) == b"down\xff\x10\xff"
    finally:
        app.close()
    off = "MODEM_STATUS SET[] CLR[CTS DSR]"
    wait_for(lambda: off in trace.read_text().split("SET[CTS DSR] CLR[]", 1)[1], what="DSR off in the trace")


# ---- com2tcp ------------------------------------------------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
BINARY, TTYPE = 0, 24


def _expect(sock: socket.socket, wanted: bytes, buf: bytearray, timeout: float = DEADLINE_S) -> None:
    """Read from `sock` into `buf` until `wanted` is in it; remove everything up to its end."""
    sock.settimeout(0.1)
    end = time.monotonic() + timeout
    while wanted not in buf:
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {wanted!r}; got {bytes(buf)!r}")
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        if not chunk:
            raise AssertionError(f"connection closed waiting for {wanted!r}; got {bytes(buf)!r}")
        buf += chunk
    del buf[: buf.index(wanted) + len(wanted)]


def test_com2tcp_telnet_server(start_cmd, pty_device):
    device = pty_device()
    port = free_port()
    start_cmd(
        "com2tcp",
        "--telnet",
        "--terminal",
        "vt100",
        "--ignore-dsr",
        "--interface",
        "127.0.0.1",
        device.path,
        str(port),
        wait_ports=2,
    )
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as c:
        buf = bytearray()
        _expect(c, bytes((IAC, DO, BINARY)), buf)  # the hub's opening requests
        c.sendall(bytes((IAC, DONT, BINARY, IAC, WONT, BINARY, IAC, DO, TTYPE)))
        _expect(c, bytes((IAC, WILL, TTYPE)), buf)
        c.sendall(bytes((IAC, SB, TTYPE, 1, IAC, SE)))
        _expect(c, bytes((IAC, SB, TTYPE, 0)) + b"vt100" + bytes((IAC, SE)), buf)
        device.write(b"hi\xff!")
        _expect(c, b"hi\xff\xff!", buf)  # IAC doubled on the telnet side
        c.sendall(b"ab\xff\xffc")
        assert device.read(4) == b"ab\xffc"


def _listener(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def _no_connection(srv: socket.socket, seconds: float) -> None:
    srv.settimeout(seconds)
    with pytest.raises(TimeoutError):
        srv.accept()[0].close()


def test_com2tcp_awakening_sequence(start_cmd, pty_device):
    """Raw client: connects only after the device sends the sequence, again after each one."""
    device = pty_device()
    port = free_port()
    with _listener(port) as srv:
        hub = start_cmd("com2tcp", "--awak-seq", "WAKE", device.path, "127.0.0.1", str(port), wait_ports=2)
        device.write(b"noise WA")
        _no_connection(srv, 0.5)
        device.write(b"KE after\xff")
        srv.settimeout(DEADLINE_S)
        conn, _ = srv.accept()
        with conn:
            assert recv_exactly(conn, 7) == b" after\xff"  # raw: no telnet escaping
            conn.sendall(b"back")
            assert device.read(4) == b"back"
        hub.wait_line("TCP(1) disconnected")
        device.write(b"lost, then WAKE again")
        conn, _ = srv.accept()
        with conn:
            assert recv_exactly(conn, 6) == b" again"


def test_com2tcp_pty_connects_while_an_application_has_it_open(start_cmd, tmp_path):
    """With --pty, DSR is the application's open state: com2tcp's connect-on-DSR."""
    port = free_port()
    link = tmp_path / "vcom"
    with _listener(port) as srv:
        hub = start_cmd("com2tcp", "--pty", str(link), "127.0.0.1", str(port), wait_ports=2)
        _no_connection(srv, 0.3)
        app = open_app(link)
        srv.settimeout(DEADLINE_S)
        conn, _ = srv.accept()
        with conn:
            app.write(b"from the app")
            assert recv_exactly(conn, 12) == b"from the app"
            conn.sendall(b"to the app")
            assert app_read(app, 10) == b"to the app"
            app.close()
            conn.settimeout(DEADLINE_S)
            assert conn.recv(100) == b"", "the hub disconnects when the application closes the port"
        hub.wait_line("TCP(1) disconnected")


# ---- ratelimit ----------------------------------------------------------------------


def test_ratelimit_paces_a_pty_and_follows_a_baud_change(start_hub, tmp_path):
    """9600 8N1 is 960 bytes/s; a baud change made mid-stream applies to the data after it.

    The application on `in` writes; its baud rate drives `out` through linectl, and
    ratelimit, before linectl on `out`, paces to what linectl sets.
    """
    src, dst = tmp_path / "in", tmp_path / "out"
    hub = start_hub(
        "--create-filter=ratelimit:--queue-limit=65536",
        "--create-filter=linectl",
        "--use-driver=pty",
        str(src),
        str(dst),
        "--add-filters=1:ratelimit",
        "--add-filters=1:linectl",
        wait_ports=2,
    )
    reader = open_app(dst, timeout=0.05)
    writer = open_app(src, baud=9600)
    hub.wait_line("connected", count=2)
    first, second = 1920, 3840  # 2 s at 9600 8N1, then 1 s at 38400 8N1
    arrivals: list[tuple[float, int]] = []

    def read_all() -> None:
        got = 0
        end = time.monotonic() + 4 * DEADLINE_S
        while got < first + second and time.monotonic() < end:
            chunk = reader.read(max(1, reader.in_waiting))  # returns as soon as data is there
            if chunk:
                got += len(chunk)
                arrivals.append((time.monotonic(), got))

    try:
        time.sleep(0.2)  # let the 9600 baud of the writer reach ratelimit
        thread = threading.Thread(target=read_all, daemon=True)
        thread.start()
        writer.write(os.urandom(first))
        writer.flush()
        time.sleep(0.3)  # the hub has read it all; most of it waits in ratelimit
        writer.baudrate = 38400
        writer.write(os.urandom(second))
        thread.join(4 * DEADLINE_S)
    finally:
        writer.close()
        reader.close()
    assert arrivals and arrivals[-1][1] == first + second, f"got {arrivals[-1:]}"
    t0 = arrivals[0][0]
    t_first = next(t for t, n in arrivals if n >= first)
    t_end = arrivals[-1][0]
    # Never ahead of the line: in no interval between two reads did more arrive than
    # 960 bytes/s allow, give or take a few 10 ms slices (timing jitter of the reads).
    ahead = 0.0
    lowest = float("inf")
    for t, n in arrivals:
        if n > first:
            break
        ahead = max(ahead, n - 960 * t - lowest)
        lowest = min(lowest, n - 960 * t)
    assert ahead < 40, f"{ahead:.0f} bytes ahead of 960 bytes/s"
    slow = (first - 10) / 960
    assert slow * 0.97 <= t_first - t0 <= 2 * first / 960, f"first part took {t_first - t0:.2f}s"
    fast = second / 3840
    assert fast * 0.95 <= t_end - t_first <= 2 * fast, f"second part took {t_end - t_first:.2f}s"
