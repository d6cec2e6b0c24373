"""Sharing one GPS end to end: gps-share and the tcp-multi listener, with real ptys,
loopback sockets, the simulated GPS and gpsd.

Every wait has a deadline; every process is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import json
import os
import random
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.sim import nmea_sentence
from hub.commands import gps_share

from .conftest import Hub, PtyDevice, free_port, wait_for

try:
    import pynmea2
except ImportError:  # pragma: no cover - a test extra
    pynmea2 = None

GPSD = shutil.which("gpsd") or ("/usr/sbin/gpsd" if os.access("/usr/sbin/gpsd", os.X_OK) else None)


# ---- the tcp-multi entry point ---------------------------------------------------


@pytest.fixture(autouse=True)
def tcp_multi_registered(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure child processes find the tcp-multi driver.

    Until the package metadata declares the entry point (pyproject.toml), a
    tiny dist-info on PYTHONPATH declares it for the processes these tests start.
    """
    eps = importlib.metadata.entry_points(group="hub4com.drivers")
    if any(ep.name == "tcp-multi" for ep in eps):
        return
    root = tmp_path_factory.getbasetemp() / "tcp-multi-entry-point"
    info = root / "hub4com_tcp_multi_test-0.dist-info"
    if not info.exists():
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hub4com-tcp-multi-test\nVersion: 0\n")
        (info / "entry_points.txt").write_text(
            "[hub4com.drivers]\ntcp-multi = drivers.tcpmulti:TcpMultiDriver\n"
        )
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *([path] if path else [])]))


# ---- processes ---------------------------------------------------------------------


class GpsShare(Hub):
    """A running gps-share process (the same helpers as a hub4com process)."""

    def __init__(self, args: list[str]):  # not super().__init__: that starts hub4com
        self.args = args
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.commands.gps_share", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


@pytest.fixture
def start() -> Iterator[Callable[..., Hub]]:
    """Start gps-share (`gps_share=True`) or hub4com; stopped by pid at the end."""
    procs: list[Hub] = []

    def run(*args: str, gps_share: bool = True, wait_ports: int | None = None) -> Hub:
        proc = GpsShare(list(args)) if gps_share else Hub(list(args))
        procs.append(proc)
        if wait_ports:
            proc.wait_started(wait_ports)
        return proc

    yield run
    for proc in procs:
        proc.stop()


def listen_port(proc: Hub, index: int) -> int:
    """The port number TCPM(index) listens on, from its log line."""
    proc.wait_line(f"TCPM({index}): listening on")
    for line in proc.lines:
        m = re.search(rf"TCPM\({index}\): listening on .*:(\d+)$", line)
        if m:
            return int(m.group(1))
    raise AssertionError(proc.output)


# ---- NMEA ---------------------------------------------------------------------------


def nmea_ok(line: bytes) -> bool:
    """A whole sentence with a valid checksum ('$...*HH' CR LF)."""
    if not (line.startswith((b"$", b"!")) and line.endswith(b"\r\n")):
        return False
    body, star, hh = line[1:-2].rpartition(b"*")
    if not star or len(hh) != 2:
        return False
    cs = 0
    for b in body:
        cs ^= b
    if f"{cs:02X}".encode() != hh.upper():
        return False
    if pynmea2 is not None:
        pynmea2.parse(line.decode("ascii").strip(), check=True)
    return True


def payload(n: int) -> list[bytes]:
    """Numbered NMEA sentences with valid checksums."""
    return [nmea_sentence(f"GPTXT,01,01,02,sentence {i:05d} of the test stream") for i in range(n)]


GGA_TIME = re.compile(rb"^\$GPGGA,(\d\d)(\d\d)(\d\d\.\d\d),")


def gga_times(data: bytes) -> list[float]:
    out = []
    for line in data.split(b"\n"):
        m = GGA_TIME.match(line)
        if m:
            out.append(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
    return out


# ---- readers --------------------------------------------------------------------------


def open_pty_app(path: Path | str) -> int:
    """Open a hub pty link as an application would (raw, non-blocking)."""
    wait_for(lambda: os.path.exists(path), what=f"{path} to exist")
    return os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


def read_until(
    sources: dict[object, int | socket.socket], want: Callable[[dict[object, bytes]], bool], timeout: float
) -> dict[object, bytes]:
    """Read every socket and fd into a buffer until `want(buffers)` or the deadline."""
    sel = selectors.DefaultSelector()
    bufs: dict[object, bytearray] = {}
    for key, src in sources.items():
        sel.register(src, selectors.EVENT_READ, key)
        bufs[key] = bytearray()
    end = time.monotonic() + timeout
    try:
        while not want({k: bytes(v) for k, v in bufs.items()}):
            left = end - time.monotonic()
            if left <= 0:
                sizes = {k: len(v) for k, v in bufs.items()}
                raise AssertionError(f"timed out reading; bytes so far: {sizes}")
            for sk, _ in sel.select(min(left, 0.2)):
                src = sources[sk.data]
                try:
                    chunk = src.recv(65536) if isinstance(src, socket.socket) else os.read(src, 65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if not chunk:
                    sel.unregister(src)
                    continue
                bufs[sk.data] += chunk
    finally:
        sel.close()
    return {k: bytes(v) for k, v in bufs.items()}


def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


# ---- fan-out -------------------------------------------------------------------------------


def test_50_tcp_clients_and_two_ptys_get_the_same_stream(start, tmp_path):
    dev = PtyDevice()
    app1, app2 = tmp_path / "gps-app1", tmp_path / "gps-app2"
    port = free_port()
    gs = start(
        dev.path,
        "--pty",
        str(app1),
        "--pty",
        str(app2),
        "--tcp",
        f"127.0.0.1:{port}",
        "--status=1",
        wait_ports=4,
    )
    clients: list[socket.socket] = []
    fds: list[int] = []
    try:
        # A first client learns when the hub has read the priming lines: from
        # then on the stream is at a line start and every later byte counts.
        clients.append(connect(port))
        gs.wait_line("(1 now)")
        dev.write(b"$PRIME,1*00\r\n$PRIME,2*00\r\n")
        got = read_until({0: clients[0]}, lambda b: b[0].endswith(b"$PRIME,2*00\r\n"), 10)
        assert got[0] == b"$PRIME,2*00\r\n"
        clients += [connect(port) for _ in range(49)]
        gs.wait_line("(50 now)")
        fds = [open_pty_app(app1), open_pty_app(app2)]
        gs.wait_line("gps-app1(1) connected")
        gs.wait_line("gps-app2(2) connected")

        lines = payload(2000)
        stream = b"".join(lines)
        rng = random.Random(5)
        writer = threading.Thread(target=_write_in_pieces, args=(dev, stream, rng), daemon=True)
        writer.start()
        sources: dict[object, int | socket.socket] = {i: c for i, c in enumerate(clients)}
        sources.update({"app1": fds[0], "app2": fds[1]})
        got = read_until(sources, lambda b: all(len(v) >= len(stream) for v in b.values()), 30)
        writer.join(10)
        for key, data in got.items():
            assert data == stream, f"reader {key} got a different stream"
        assert all(nmea_ok(line) for line in got[0].splitlines(keepends=True))
        gs.wait_line("50 clients (50 so far)")  # the --status line
        assert "dropped" not in gs.output
    finally:
        for c in clients:
            c.close()
        for fd in fds:
            os.close(fd)
        dev.close()


def _write_in_pieces(dev: PtyDevice, data: bytes, rng: random.Random) -> None:
    """Write `data` to the device in pieces of random sizes (sentences get split),
    at about 100 kB/s: far above any GPS, yet a pace 50 readers in one test
    process keep up with on a loaded 2-core machine (the clients may drop)."""
    i = 0
    while i < len(data):
        n = rng.randint(1, 3000)
        dev.write(data[i : i + n])
        i += n
        time.sleep(n / 100_000)


# ---- a stalled client at 10 Hz ----------------------------------------------------------------


def test_a_stalled_client_does_not_disturb_the_others(start):
    port = free_port()
    hub = start(
        "--use-driver=sim",
        "--rate=10",
        "gps",
        "--use-driver=tcp-multi",
        "--frame=line",
        "--write-limit=4096",
        "--sndbuf=4096",
        f"127.0.0.1:{port}",
        gps_share=False,
        wait_ports=2,
    )
    readers = [connect(port) for _ in range(4)]
    stalled = connect(port, rcvbuf=2048)
    hub.wait_line("(5 now)")
    arrivals: dict[int, list[tuple[float, bytes]]] = {i: [] for i in range(len(readers))}
    stop = threading.Event()

    def read_on_time() -> None:
        sel = selectors.DefaultSelector()
        partial = {i: b"" for i in arrivals}
        for i, r in enumerate(readers):
            r.setblocking(False)
            sel.register(r, selectors.EVENT_READ, i)
        while not stop.is_set():
            for key, _ in sel.select(0.05):
                try:
                    chunk = readers[key.data].recv(65536)
                except BlockingIOError:
                    continue
                now = time.monotonic()
                *whole, partial[key.data] = (partial[key.data] + chunk).split(b"\n")
                arrivals[key.data] += [(now, line + b"\n") for line in whole]
        sel.close()

    thread = threading.Thread(target=read_on_time, daemon=True)
    thread.start()
    try:
        stalled.settimeout(5)
        first = stalled.recv(4096)  # it reads a little, then stops for 10 s
        t_stall = time.monotonic()
        time.sleep(10)
        after = read_until({0: stalled}, lambda b: time.monotonic() - t_stall > 11.5, 5)[0]
        stop.set()
        thread.join(5)
        stalled.close()
        hub.wait_line("dropped")
    finally:
        stop.set()
        for r in readers:
            r.close()
    hub.wait_line(") disconnected after", count=5)
    # every other client got every sentence on time, the same stream
    streams = [b"".join(line for _, line in arrivals[i]) for i in arrivals]
    shortest = min(len(s) for s in streams)
    assert shortest > 30 * 400, "the readers got less than 3 s of data"
    assert all(s[:shortest] == streams[0][:shortest] for s in streams)
    for i, lines in arrivals.items():
        ggas = [t for t, line in lines if line.startswith(b"$GPGGA")]
        gaps = [b - a for a, b in itertools.pairwise(ggas)]
        assert max(gaps) < 0.5, f"reader {i} waited {max(gaps):.2f} s for a sentence"
        assert all(nmea_ok(line) for _, line in lines)
    closing = {
        n: [line for line in hub.lines if f"client {n} " in line and "disconnected" in line]
        for n in range(1, 6)
    }
    for n in range(1, 5):
        assert closing[n] and "dropped" not in closing[n][0], closing[n]
    # the stalled one: whole sentences only, with a gap where it lost some, counted
    got = first + after
    lines = got.split(b"\n")[:-1]  # what follows the last LF was still on its way
    assert lines and all(nmea_ok(line + b"\n") for line in lines)
    times = gga_times(got)
    assert max(b - a for a, b in itertools.pairwise(times)) > 1.0, "no sentences were dropped"
    assert re.search(r"dropped \d+ lines", closing[5][0]), hub.output


def test_a_stalled_pty_application_does_not_disturb_the_other(start, tmp_path):
    """gps-share's ptys (--frame=line --slow-client=drop): an application that stops
    reading loses whole sentences, counted; the other one keeps receiving on time."""
    app1, app2 = tmp_path / "gps-app1", tmp_path / "gps-app2"
    gs = start("--demo", "--rate=10", "--pty", str(app1), "--pty", str(app2), "--status=1", wait_ports=3)
    reader, stalled = open_pty_app(app1), open_pty_app(app2)
    gs.wait_line("gps-app1(1) connected")
    gs.wait_line("gps-app2(2) connected")
    arrivals: list[tuple[float, bytes]] = []
    stop = threading.Event()

    def read_on_time() -> None:
        partial = b""
        sel = selectors.DefaultSelector()
        sel.register(reader, selectors.EVENT_READ)
        while not stop.is_set():
            if not sel.select(0.05):
                continue
            try:
                chunk = os.read(reader, 65536)
            except BlockingIOError:
                continue
            now = time.monotonic()
            *whole, partial = (partial + chunk).split(b"\n")
            arrivals.extend((now, line + b"\n") for line in whole)
        sel.close()

    thread = threading.Thread(target=read_on_time, daemon=True)
    thread.start()
    try:
        # The stalled application reads a few sentences, then nothing for 12 s: at
        # about 4.4 kB/s its queue (16 KiB) and the kernel's pty buffer (about
        # 18 KiB) fill after some 8 s, and it loses sentences from then on.
        first = read_until({0: stalled}, lambda b: b[0].count(b"\n") >= 5, 5)[0]
        t_stall = time.monotonic()
        time.sleep(12)
        gs.wait_line("gps-app2(2) application connected")  # a --status line ...
        status = [line for line in gs.lines if "gps-app2(2) application connected" in line]
        assert "not reading" in status[-1] and "dropped" in status[-1], status[-1]
        after = read_until({0: stalled}, lambda b: time.monotonic() - t_stall > 13.5, 5)[0]
        stop.set()
        thread.join(5)
    finally:
        stop.set()
        os.close(reader)
        os.close(stalled)
    gs.wait_line("gps-app2(2): the application closed")
    gs.wait_line("gps-app1(1): the application closed")
    # the other application got every sentence on time
    assert len(arrivals) > 30 * 10, "the reader got less than 3 s of data"
    ggas = [t for t, line in arrivals if line.startswith(b"$GPGGA")]
    gaps = [b - a for a, b in itertools.pairwise(ggas)]
    assert max(gaps) < 0.5, f"the reader waited {max(gaps):.2f} s for a sentence"
    assert all(nmea_ok(line) for _, line in arrivals)
    # Every epoch the receiver sent reached the reader: a gap in its GPS times is an
    # epoch the simulator itself skipped because its timer was late (a loaded machine).
    times = gga_times(b"".join(line for _, line in arrivals))
    gaps_in_time = sum(round((b - a) * 10) - 1 for a, b in itertools.pairwise(times))
    gs.wait_line("epochs sent", count=gs.output.count("epochs sent") + 1)  # a status line from after
    skipped = [int(n) for n in re.findall(r"epochs sent, (\d+) skipped", gs.output)]
    assert gaps_in_time <= (skipped[-1] if skipped else 0), "the reader lost sentences"
    # the stalled one: whole sentences only, with a gap where it lost some, counted
    got = first + after
    lines = got.split(b"\n")[:-1]  # what follows the last LF was still on its way
    assert lines and all(nmea_ok(line + b"\n") for line in lines)
    times = gga_times(got)
    assert max(b - a for a, b in itertools.pairwise(times)) > 1.0, "no sentences were dropped"
    closing = {
        n: [line for line in gs.lines if f"gps-app{n}({n}): the application closed" in line] for n in (1, 2)
    }
    assert "dropped" not in closing[1][0], closing[1]
    assert re.search(r"dropped \d+ lines", closing[2][0]), gs.output


# ---- late joiners ------------------------------------------------------------------------------


def test_a_late_joiner_starts_at_a_sentence(start):
    dev = PtyDevice()
    port = free_port()
    gs = start(dev.path, "--tcp", str(port), wait_ports=2)
    try:
        early = connect(port)
        gs.wait_line("(1 now)")
        dev.write(b"$PRIME*00\r\n")
        gga, rmc, vtg = payload(3)
        dev.write(gga + rmc[:20])
        got = read_until({0: early}, lambda b: b[0].endswith(rmc[:20]), 10)[0]
        assert got == gga + rmc[:20]
        late = connect(port)
        gs.wait_line("(2 now)")
        dev.write(rmc[20:] + vtg)
        got = read_until({0: early, 1: late}, lambda b: b[0].endswith(vtg) and b[1].endswith(vtg), 10)
        assert got[1] == vtg
        assert got[0] == rmc[20:] + vtg
        assert nmea_ok(got[1])
        early.close()
        late.close()
    finally:
        dev.close()


def test_late_joiners_on_the_simulated_gps_get_whole_checked_sentences(start):
    port = free_port()
    gs = start("--demo", "--rate=20", "--tcp", str(port), wait_ports=2)
    got = []
    for i in range(4):
        time.sleep(0.13 * (i + 1))
        c = connect(port)
        data = read_until({0: c}, lambda b: b[0].count(b"\n") >= 20, 10)[0]
        c.close()
        got.append(data)
    gs.wait_line("(1 now)", count=4)
    for data in got:
        assert data.startswith(b"$GP")
        assert all(nmea_ok(line) for line in data.splitlines(keepends=True)[:-1])


# ---- applications on ptys: read-only, baud rates, the writer ------------------------------------


def test_apps_are_read_only_and_their_baud_rates_stay_local(start, tmp_path):
    dev = PtyDevice()
    app1, app2 = tmp_path / "app1", tmp_path / "app2"
    gs = start(
        dev.path, "--baud=4800", "--pty", str(app1), "--pty", str(app2), "--writer", "app2", wait_ports=3
    )
    fd1, fd2 = open_pty_app(app1), open_pty_app(app2)
    try:
        gs.wait_line("app1(1) connected")
        gs.wait_line("app2(2) connected")
        speed_before = termios.tcgetattr(dev.slave)[4]
        assert speed_before == termios.B4800
        # the applications set baud rates of their own
        for fd, speed in ((fd1, termios.B9600), (fd2, termios.B38400)):
            attrs = termios.tcgetattr(fd)
            attrs[4] = attrs[5] = speed
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        dev.write(b"$PRIME*00\r\n")
        sentence = payload(1)[0]
        dev.write(sentence)
        got = read_until({1: fd1, 2: fd2}, lambda b: all(v.endswith(sentence) for v in b.values()), 10)
        assert all(v.endswith(sentence) for v in got.values())
        assert termios.tcgetattr(dev.slave)[4] == termios.B4800, "an application's baud rate reached the GPS"
        # app1 is read-only; app2, the writer, reaches the GPS
        os.write(fd1, b"$PMTK220,100*2F\r\n")
        os.write(fd2, b"$PMTK251,38400*27\r\n")
        assert dev.read(19) == b"$PMTK251,38400*27\r\n"
        time.sleep(0.3)
        with pytest.raises(BlockingIOError):
            os.read(dev.master, 100)
        assert termios.tcgetattr(dev.slave)[4] == termios.B4800
    finally:
        os.close(fd1)
        os.close(fd2)
        dev.close()


# ---- gpsd -------------------------------------------------------------------------------


def _gpsd_shm_ids() -> set[int]:
    """SysV shm segments with gpsd's keys ("GPSD" and NTP0..NTP7)."""
    keys = {0x47505344, *range(0x4E545030, 0x4E545038)}
    ids = set()
    try:
        with open("/proc/sysvipc/shm") as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[0]) in keys:
                    ids.add(int(fields[1]))
    except OSError:
        pass
    return ids


@contextlib.contextmanager
def gpsd_serving(source: str, tmp_path: Path) -> Iterator[int]:
    """gpsd reading `source` read-only (-b), in the foreground; yields its JSON port.

    Stopped by its pid at the end; shared memory segments it made are removed.
    """
    gpsd_port = free_port()
    shm_before = _gpsd_shm_ids()
    assert GPSD is not None
    gpsd = subprocess.Popen(
        [
            GPSD, "-N", "-n", "-b", "-S", str(gpsd_port), "-F", str(tmp_path / "gpsd.sock"),
            "-P", str(tmp_path / "gpsd.pid"), source,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield gpsd_port
    finally:
        gpsd.send_signal(signal.SIGTERM)
        try:
            gpsd.wait(5)
        except subprocess.TimeoutExpired:
            gpsd.kill()
            gpsd.wait(5)
        for shmid in _gpsd_shm_ids() - shm_before:
            subprocess.run(["ipcrm", "-m", str(shmid)], check=False, capture_output=True)


def gpsd_fix(gpsd_port: int, timeout: float = 15) -> dict[str, Any]:
    """The first position fix (TPV, mode 2 or 3) gpsd reports on its JSON port."""
    sock = wait_for(lambda: _try_connect(gpsd_port), timeout=10, what="gpsd's port")
    assert isinstance(sock, socket.socket)
    with sock:
        sock.settimeout(10)
        sock.sendall(b'?WATCH={"enable":true,"json":true};\n')
        end = time.monotonic() + timeout
        for line in sock.makefile("rb"):
            obj = json.loads(line)
            if obj.get("class") == "TPV" and obj.get("mode", 0) >= 2:
                return dict(obj)
            if time.monotonic() > end:
                break
    raise AssertionError("gpsd reported no position")


@pytest.mark.interop
@pytest.mark.skipif(GPSD is None, reason="gpsd is not installed (Debian package gpsd)")
def test_gpsd_reads_one_pty_while_another_app_reads_the_other(start, tmp_path):
    app_gpsd, app_other = tmp_path / "gps-gpsd", tmp_path / "gps-other"
    gs = start("--demo", "--rate=5", "--pty", str(app_gpsd), "--pty", str(app_other), wait_ports=3)
    wait_for(lambda: app_gpsd.exists(), what="the pty link")
    with gpsd_serving(str(app_gpsd), tmp_path) as gpsd_port:
        other = open_pty_app(app_other)
        try:
            gs.wait_line("gps-gpsd(1) connected", timeout=10)
            fix = gpsd_fix(gpsd_port)
            assert abs(fix["lat"] - 52.52) < 0.1 and abs(fix["lon"] - 13.405) < 0.1
            assert fix["device"] == str(app_gpsd)
            # meanwhile the other application got whole sentences of its own
            data = read_until({0: other}, lambda b: b[0].count(b"\n") >= 10, 10)[0]
            assert all(nmea_ok(line) for line in data.splitlines(keepends=True)[1:-1])
        finally:
            os.close(other)


def _try_connect(port: int) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return None


# ---- the command line ------------------------------------------------------------------


def test_print_args(capsys):
    assert (
        gps_share.main(
            [
                "/dev/ttyUSB0",
                "--pty",
                "/tmp/gps-app1",
                "--pty=/tmp/gps-app2",
                "--tcp",
                "10110",
                "--print-args",
            ]
        )
        == 0
    )
    assert shlex.split(capsys.readouterr().out) == [
        "hub4com",
        "--route=0:All",
        "--no-default-fc-route=All:All",
        "--use-driver=serial",
        "--baud=4800",
        "--octs=off",
        "/dev/ttyUSB0",
        "--use-driver=pty",
        "--frame=line",
        "--slow-client=drop",
        "--write-limit=16384",
        "/tmp/gps-app1",
        "/tmp/gps-app2",
        "--use-driver=tcp-multi",
        "--interface=127.0.0.1",
        "--frame=line",
        "--slow-client=drop",
        "--write-limit=16384",
        "--sndbuf=8192",
        "--recv-from=none",
        "10110",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--writer=gps-app2"], ["--route=2:0"]),
        (["--writer=/tmp/gps-app1"], ["--route=1:0"]),
        (["--writer=tcp"], ["--route=3:0", "--recv-from=last-active", "--active-hold=1000"]),
        (["--status"], ["--status-interval=5"]),
        (["--status=0.5", "-q"], ["--status-interval=0.5", "-q"]),
        (["--interface=::"], ["--interface=::"]),
        (["--baud=c"], ["--baud=c"]),
        (["--http", "8080"], ["--http=8080"]),
        (["--http=[::1]:8080"], ["'--http=[::1]:8080'"]),  # shell-quoted
    ],
)
def test_print_args_options(capsys, args, expected):
    argv = ["/dev/gps", "--pty", "/tmp/gps-app1", "--pty", "/tmp/gps-app2", "--tcp", "10110", *args]
    assert gps_share.main([*argv, "--print-args"]) == 0
    out = capsys.readouterr().out.split()
    assert all(e in out for e in expected), out


def test_print_args_demo(capsys):
    assert gps_share.main(["--demo", "--rate=10", "--tcp", "0.0.0.0:10110", "--print-args"]) == 0
    out = capsys.readouterr().out.split()
    assert out[out.index("--use-driver=sim") : out.index("--use-driver=sim") + 3] == [
        "--use-driver=sim",
        "--rate=10",
        "gps",
    ]
    assert out[-1] == "0.0.0.0:10110"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--demo"], "nothing to share to"),
        (["--demo", "--pty", "/tmp/a", "--writer=b"], "names no --pty path"),
        (["--demo", "--pty", "/tmp/x/a", "--pty", "/tmp/y/a", "--writer=a"], "more than one --pty"),
        (["--demo", "--pty", "/tmp/a", "--writer=tcp"], "needs a --tcp port"),
        (["--demo", "--pty", "/tmp/a", "--status=x"], "invalid --status value"),
        (["/dev/gps", "--pty", "/tmp/a", "--rate=5"], "--rate is for the simulated receiver"),
        (["--demo", "--pty", "/tmp/a", "--pty", "/tmp/a"], "the same --pty path"),
        (["--demo", "--pty", "/tmp/a", "--bogus"], "unknown option --bogus"),
        ([], "missing arguments"),
        (["--demo", "--demo"], "option --demo given twice"),
        # the user's own --tcp value, not the hub4com address made of it
        (["--demo", "--tcp", "seventy"], "'seventy' is not a --tcp port"),
        (["--demo", "--tcp", "127.0.0.1:70000"], "--tcp port 70000 is out of range (1 to 65535)"),
        (["--demo", "--tcp", "[::1]:x"], "'x' is not a --tcp port"),
        (["--demo", "--udp", "127.0.0.1:seventy"], "'seventy' is not a --udp port"),
    ],
)
def test_bad_command_lines(capsys, args, message):
    assert gps_share.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.endswith("(see gps-share --help)\n")
    assert len(err.splitlines()) == 1 and "Option(" not in err


def test_help(capsys):
    assert gps_share.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage:") and "--writer=<name>" in out


def test_start_up_prints_what_it_set_up(start, tmp_path):
    port = free_port()
    gs = start("--demo", "--pty", str(tmp_path / "nav"), "--tcp", str(port), wait_ports=3)
    gs.wait_line(f"gps-share: application port {tmp_path / 'nav'} (read-only)")
    gs.wait_line(f"gps-share: TCP clients on 127.0.0.1:{port} (read-only; whole sentences)")
    assert listen_port(gs, 2) == port
    assert gs.stop() == 0
