"""Network security end to end: the real command, pty devices, loopback sockets.

TLS with client certificates (a Python ssl client, socat's OPENSSL address, and
our own RFC 2217 client over TLS), refused strangers (no certificate, another
CA, a denied address), a connection storm next to a live session, the TLS
client mode, read-only observers and the start-up warning. Certificates are
made by the test (cryptography, else the openssl command) in a temporary
directory. Every wait has a deadline; every process started here is stopped
by its pid.
"""

from __future__ import annotations

import itertools
import os
import re
import select
import shlex
import shutil
import socket
import ssl
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from tests.tlscerts import Pki, pki_or_skip

from .conftest import DEADLINE_S, Hub, PtyDevice, free_port, recv_exactly, run_hub, wait_for

#: How long a "nothing arrives" check waits.
QUIET_S = 0.5


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return pki_or_skip(tmp_path_factory.mktemp("pki"))


def listener_tls(pki: Pki) -> list[str]:
    return [f"--tls-cert={pki.server_cert}", f"--tls-key={pki.server_key}", f"--tls-ca={pki.ca}"]


def client_tls(pki: Pki) -> list[str]:
    return [f"--tls-cert={pki.client_cert}", f"--tls-key={pki.client_key}", f"--tls-ca={pki.ca}"]


def tls_connect(
    port: int, pki: Pki, cert: bool = True, other: bool = False, source: str | None = None
) -> ssl.SSLSocket:
    """A Python ssl client; raises ssl.SSLError or OSError if refused during the handshake."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        ctx.load_cert_chain(
            *((pki.other_client_cert, pki.other_client_key) if other else (pki.client_cert, pki.client_key))
        )
    raw = socket.socket()
    raw.settimeout(DEADLINE_S)
    try:
        if source:
            raw.bind((source, 0))
        raw.connect(("127.0.0.1", port))
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


def quiet(dev: PtyDevice, seconds: float = QUIET_S) -> bytes:
    """What the device got within `seconds` (expected: nothing)."""
    time.sleep(seconds)
    try:
        return os.read(dev.master, 65536)
    except BlockingIOError:
        return b""


def start_tls_listener(
    start_hub: Callable[..., Hub], dev: PtyDevice, pki: Pki, *extra: str
) -> tuple[Hub, int]:
    port = free_port()
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        *listener_tls(pki),
        *extra,
        f"*{port}",
        wait_ports=2,
    )
    return hub, port


def loopback2() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
    except OSError:
        return False
    return True


# ---- TLS sessions that work -------------------------------------------------------------


def test_tls_session_with_client_certificate(start_hub, pty_device, pki):
    dev = pty_device()
    hub, port = start_tls_listener(start_hub, dev, pki)
    with tls_connect(port, pki) as c:
        hub.wait_line("TCP(1) accepted connection from 127.0.0.1:")
        assert c.version() in ("TLSv1.2", "TLSv1.3")
        payload = bytes(range(256)) * 256
        dev.write(payload)
        assert recv_exactly(c, len(payload)) == payload
        c.sendall(payload)
        assert dev.read(len(payload)) == payload
    assert any("peer 'hub client')" in line for line in hub.lines)
    assert any(
        "Listening on 127.0.0.1:" in line and "client certificates required" in line for line in hub.lines
    )
    assert not any("every network interface" in line for line in hub.lines)


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (apt-get install socat)")
def test_socat_openssl_client(start_hub, pty_device, pki):
    dev = pty_device()
    hub, port = start_tls_listener(start_hub, dev, pki)
    address = f"OPENSSL:127.0.0.1:{port},cert={pki.client_cert},key={pki.client_key},cafile={pki.ca}"
    proc = subprocess.Popen(
        ["socat", "-", address], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        hub.wait_line("TCP(1) accepted connection from 127.0.0.1:")
        socat_both_ways(proc, dev)
    finally:
        proc.kill()
        proc.wait(5)


def socat_both_ways(proc: subprocess.Popen[bytes], dev: PtyDevice) -> None:
    """A line from socat's stdin reaches the device, and one from the device socat's stdout."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"from socat\n")
    proc.stdin.flush()
    assert dev.read(11) == b"from socat\n"
    dev.write(b"to socat\n")
    got = b""
    end = time.monotonic() + DEADLINE_S
    while b"to socat\n" not in got:
        assert time.monotonic() < end, f"socat printed only {got!r}"
        if select.select([proc.stdout], [], [], 0.1)[0]:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"socat ended: {proc.stderr.read() if proc.stderr else b''!r}"
            got += chunk
    assert got == b"to socat\n"


@pytest.mark.interop
def test_rfc2217_over_tls_with_our_client(start_hub, pty_device, pki, tmp_path):
    """com2tcp-rfc2217's server and client, each with TLS options added: settings cross."""
    from .conftest import command_argv
    from .test_rfc2217 import device_termios

    far = pty_device()
    port = free_port()

    def hub_args(*args: str) -> list[str]:
        printed = subprocess.run(
            command_argv("--print-args", *args), capture_output=True, text=True, timeout=20, check=True
        ).stdout
        argv = shlex.split(printed)[1:]  # without "hub4com"
        return argv

    server = hub_args("--interface", "127.0.0.1", far.path, str(port))
    server[-1:-1] = listener_tls(pki)  # the options stand before the tcp port
    start_hub(*server, wait_ports=2)
    link = tmp_path / "vcom0"
    client = hub_args("--pty", str(link), "127.0.0.1", str(port))
    client[-1:-1] = client_tls(pki)
    hub = start_hub(*client, wait_ports=2)
    hub.wait_line("TCP(1) connected to 127.0.0.1:")
    assert any("(TLSv1." in line for line in hub.lines)
    app = serial.Serial(str(link), 9600, stopbits=serial.STOPBITS_TWO, timeout=DEADLINE_S)
    try:
        wait_for(lambda: device_termios(far) == (termios.B9600, True), what="9600 2 stop bits far away")
        app.baudrate = 57600
        wait_for(lambda: device_termios(far) == (termios.B57600, True), what="57600 far away")
        app.write(b"through tls \xff\xff")
        assert far.read(14) == b"through tls \xff\xff"
        far.write(b"and back")
        assert app.read(8) == b"and back"
    finally:
        app.close()


# ---- strangers are refused ---------------------------------------------------------------


def attempt(connect: Callable[[], socket.socket], secret: bytes = b"SECRET rm -rf /\r\n") -> str:
    """Connect, send `secret`, read: how it ended (the connection must not stay open)."""
    try:
        c = connect()
    except (ssl.SSLError, OSError) as exc:
        return f"refused during the handshake: {exc!r}"
    with c:
        try:
            c.sendall(secret)
            data = c.recv(100)
        except (ssl.SSLError, OSError) as exc:
            return f"refused after the handshake: {exc!r}"
        assert data == b"", f"a refused client read {data!r}"
        return "closed"


STRANGERS = {
    "no certificate": (
        [],
        lambda port, pki: tls_connect(port, pki, cert=False),
        "TLS handshake with 127.0.0.1:",
    ),
    "another CA": ([], lambda port, pki: tls_connect(port, pki, other=True), "TLS handshake with 127.0.0.1:"),
    "plain TCP": (
        [],
        lambda port, pki: socket.create_connection(("127.0.0.1", port), DEADLINE_S),
        "TLS handshake",
    ),
    "not on the allow list": (
        ["--allow=127.0.0.1/32,::1"],
        lambda port, pki: tls_connect(port, pki, source="127.0.0.2"),
        "refused connection from 127.0.0.2:",
    ),
    "on the deny list": (
        ["--deny=127.0.0.2/32"],
        lambda port, pki: tls_connect(port, pki, source="127.0.0.2"),
        "refused connection from 127.0.0.2:",
    ),
}


@pytest.mark.parametrize("kind", list(STRANGERS))
def test_strangers_are_refused(start_hub, pty_device, pki, kind):
    options, connect, logged = STRANGERS[kind]
    if "127.0.0.2" in logged and not loopback2():
        pytest.skip("127.0.0.2 is not a local address here")
    dev = pty_device()
    hub, port = start_tls_listener(start_hub, dev, pki, *options)
    for _ in range(3):
        attempt(lambda: connect(port, pki))
    assert quiet(dev) == b"", "a refused client's bytes reached the device"
    hub.wait_line(logged)
    assert sum(logged in line for line in hub.lines) == 1, "refusals are logged once per address"
    assert not any("TCP(1) connected" in line or "accepted connection" in line for line in hub.lines)
    # The listener is still up for a client that belongs.
    with tls_connect(port, pki) as c:
        c.sendall(b"welcome")
        assert dev.read(7) == b"welcome"
    assert hub.proc.poll() is None


# ---- a connection storm next to a live session -------------------------------------------


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


_RST = struct.pack("ii", 1, 0)


def storm(port: int, attempts: int, seconds: float, batch: int = 100) -> int:
    """`attempts` TCP connects to `port` over `seconds`, in batches; each lives until the
    next batch and is then closed with a reset. Returns how many connected."""
    interval = seconds * batch / attempts
    connected = 0
    previous: list[socket.socket] = []
    next_at = time.monotonic()
    for start in range(0, attempts, batch):
        socks = []
        for _ in range(min(batch, attempts - start)):
            s = socket.socket()
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
            s.connect_ex(("127.0.0.1", port))
            socks.append(s)
        _, writable, _ = select.select([], socks, [], interval)
        connected += sum(1 for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
        for s in previous:
            s.close()
        previous = socks
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    for s in previous:
        s.close()
    return connected


class Stream:
    """The device writes a counting stream; a client reads it and notes the longest gap."""

    CHUNK = 64

    def __init__(self, dev: PtyDevice, client: socket.socket):
        self.dev = dev
        self.client = client
        self.stop = threading.Event()
        self.sent = 0
        self.received = bytearray()
        self.arrivals: list[float] = []
        self.error: BaseException | None = None
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._write, self._read)]

    def _pattern(self, start: int, n: int) -> bytes:
        return bytes((start + i) % 251 for i in range(n))

    def _write(self) -> None:
        while not self.stop.is_set():
            self.dev.write(self._pattern(self.sent, self.CHUNK))
            self.sent += self.CHUNK
            time.sleep(0.005)

    def _read(self) -> None:
        self.client.settimeout(1.0)
        try:
            while not self.stop.is_set() or len(self.received) < self.sent:
                chunk = self.client.recv(65536)
                if not chunk:
                    raise AssertionError("the live session was closed")
                self.received += chunk
                self.arrivals.append(time.monotonic())
        except TimeoutError:
            if not self.stop.is_set():
                self.error = AssertionError("the live session stalled for 1 s")
        except BaseException as exc:
            self.error = exc

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(DEADLINE_S)
        if self.error is not None:
            raise self.error

    def longest_gap(self, since: float, until: float) -> float:
        times = [since, *(t for t in self.arrivals if since < t < until), until]
        return max(b - a for a, b in itertools.pairwise(times))


@pytest.mark.parametrize("mode", ["plain", "tls"])
def test_connection_storm_leaves_the_live_session_alone(start_hub, pty_device, pki, mode):
    dev = pty_device()
    port = free_port()
    if mode == "tls":
        # No rate limit: every storm connection gets a TLS handshake (bounded by the default
        # --max-connections), the costliest case.
        extra = [*listener_tls(pki), "--max-rate=0"]
    else:
        extra = ["--max-rate=5"]
    hub = start_hub(
        "--octs=off", dev.path, "--use-driver=tcp", "--interface=127.0.0.1", *extra, f"*{port}", f"*{port}",
        wait_ports=3,
    )  # fmt: skip
    pid = hub.proc.pid
    live = (
        tls_connect(port, pki) if mode == "tls" else socket.create_connection(("127.0.0.1", port), DEADLINE_S)
    )
    try:
        hub.wait_line("TCP(1) accepted connection")
        stream = Stream(dev, live)
        stream.start()
        time.sleep(0.5)
        fds_before, rss_before = _fds(pid), _rss_kib(pid)
        lines_before = len(hub.lines)
        started = time.monotonic()
        connected = storm(port, 2000, seconds=2.0)
        storm_s = time.monotonic() - started
        time.sleep(1.0)  # the hub may still be working through its backlog
        ended = time.monotonic()
        stream.finish()
        assert storm_s < 15, f"the storm took {storm_s:.1f} s"
        assert connected > 1500, f"only {connected} of 2000 storm connections were made"
        # The live session kept its steady stream, all of it, in order.
        assert bytes(stream.received) == stream._pattern(0, stream.sent)
        gap = stream.longest_gap(started, ended)
        assert gap < 0.5, f"the live session stalled for {gap:.2f} s during the storm"
        # File descriptors and memory come back; the log did not flood.
        wait_for(lambda: _fds(pid) <= fds_before, 10, f"fds back to {fds_before} (now {_fds(pid)})")
        rss_after = _rss_kib(pid)
        assert rss_after - rss_before < 16 * 1024, f"RSS {rss_before} -> {rss_after} KiB"
        storm_lines = hub.lines[lines_before:]
        limit = 40 if mode == "tls" else 4 * 5 * (storm_s + 2) + 40  # admitted sessions are logged
        assert len(storm_lines) < limit, "\n".join(storm_lines[:50])
        assert hub.proc.poll() is None
    finally:
        live.close()
    # The storm did reach the hub: its listener counted the connections when it stopped.
    assert hub.stop() == 0
    summary = next(ln for ln in hub.lines if ln.startswith(f"Stopped listening on 127.0.0.1:{port}: "))
    counts = [int(n) for n in re.findall(r"\d+", summary.partition(": ")[2])]
    print(
        f"storm: {connected} connected in {storm_s:.2f} s; longest gap {gap:.3f} s; fds {fds_before}; "
        f"RSS {rss_before} -> {rss_after} KiB; {len(storm_lines)} log lines; {summary}"
    )
    assert sum(counts) >= 1000, summary


# ---- the TLS client mode ------------------------------------------------------------------


class TlsServer:
    """A Python ssl server that requires client certificates; serves one connection at a time."""

    def __init__(self, pki: Pki, cert: tuple[Path, Path] | None = None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*(cert or (pki.server_cert, pki.server_key)))
        self.ctx.load_verify_locations(pki.ca)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.peers: list[str] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except TimeoutError:
                continue
            raw.settimeout(DEADLINE_S)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as c:
                    cert = c.getpeercert() or {}
                    self.peers += [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
                    c.sendall(b"hello device")
                    c.settimeout(0.2)
                    while not self.stop.is_set():
                        try:
                            chunk = c.recv(4096)
                        except TimeoutError:
                            continue
                        if not chunk:
                            break
                        self.received += chunk
            except (ssl.SSLError, OSError) as exc:
                self.failures.append(repr(exc))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE_S)
        self.sock.close()


def test_tls_client_mode(start_hub, pty_device, pki):
    dev = pty_device()
    server = TlsServer(pki)
    try:
        hub = start_hub(
            "--octs=off", dev.path, "--use-driver=tcp", *client_tls(pki), f"*127.0.0.1:{server.port}",
            wait_ports=2,
        )  # fmt: skip
        hub.wait_line(f"TCP(1) connected to 127.0.0.1:{server.port}")
        assert dev.read(12) == b"hello device"
        dev.write(b"reading 42\r\n")
        wait_for(lambda: bytes(server.received) == b"reading 42\r\n", what="data at the server")
        assert server.peers == ["hub client"]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (
            ["--tls-server-name=wrong.example"],
            "Hostname mismatch, certificate is not valid for 'wrong.example'",
        ),
        (["--tls-ca=OTHER"], "certificate verify failed: "),
    ],
)
def test_tls_client_refuses_the_wrong_server(start_hub, pty_device, pki, options, reason):
    dev = pty_device()
    server = TlsServer(pki)
    options = [o.replace("OTHER", str(pki.other_ca)) for o in options]
    try:
        hub = start_hub(
            "--octs=off", dev.path, "--use-driver=tcp", *client_tls(pki), *options, "--reconnect=500",
            f"*127.0.0.1:{server.port}", wait_ports=2,
        )  # fmt: skip
        hub.wait_line(f"TCP(1): cannot connect to 127.0.0.1:{server.port}: ")
        assert any(reason in line for line in hub.lines), hub.output
        assert quiet(dev) == b"", "nothing from an unverified server reaches the device"
        assert server.received == bytearray()
        assert hub.proc.poll() is None
    finally:
        server.close()


# ---- read-only observers and the defaults -------------------------------------------------


def test_read_only_observer(start_hub, pty_device):
    dev = pty_device()
    writer_port, observer_port = free_port(), free_port()
    start_hub(
        "--route=0:All", "--route=All:0", "--octs=off", dev.path, "--use-driver=tcp", "--interface=127.0.0.1",
        f"*{writer_port}", "--read-only", f"*{observer_port}", wait_ports=3,
    )  # fmt: skip
    with (
        socket.create_connection(("127.0.0.1", writer_port), DEADLINE_S) as writer,
        socket.create_connection(("127.0.0.1", observer_port), DEADLINE_S) as observer,
    ):
        time.sleep(0.3)
        dev.write(b"for everybody")
        assert recv_exactly(writer, 13) == b"for everybody"
        assert recv_exactly(observer, 13) == b"for everybody"
        # An RFC 2217 SET-CONTROL (DTR on) and plain data from the observer go nowhere.
        observer.sendall(b"\xff\xfa\x2c\x05\x08\xff\xf0observer writes")
        assert quiet(dev) == b""
        writer.sendall(b"writer writes")
        assert dev.read(13) == b"writer writes"


def test_open_listener_warns_at_start(start_hub, pty_device):
    dev = pty_device()
    port = free_port()
    hub = start_hub("--octs=off", dev.path, "--use-driver=tcp", f"*{port}", wait_ports=2)
    hub.wait_line("Warning: TCP(1) listens on port")
    line = next(ln for ln in hub.lines if "Warning: TCP(1) listens on port" in ln)
    assert "--interface=127.0.0.1" in line


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (
            ["--tls-cert=/nonexistent/cert.pem", "*7000"],
            "Cannot read the TLS certificate file /nonexistent/cert.pem",
        ),
        (["--tls-ca=CA", "*7000"], "A TLS listener needs --tls-cert"),
        (["--tls-cert=CA", "--tls-key=CLIENTKEY", "*7000"], "Cannot load the TLS certificate"),
        (
            ["--allow=10.0.0.1/8", "*7000"],
            "'10.0.0.1/8' (10.0.0.1/8 has host bits set) in '--allow=10.0.0.1/8'",
        ),
        (["--tls-verify=none", "host:7000"], "--tls-verify=none set but TLS is off for this port"),
    ],
)
def test_startup_errors_are_one_line(pki, args, expect):
    args = [a.replace("CLIENTKEY", str(pki.client_key)).replace("CA", str(pki.ca)) for a in args]
    r = run_hub("--use-driver=tcp", *args)
    assert r.returncode == 2
    assert expect in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr


def test_help_shows_the_security_options():
    r = run_hub("--help=tcp")
    assert r.returncode == 0
    for option in (
        "--tls-cert=",
        "--tls-ca=",
        "--allow=",
        "--max-rate=",
        "--max-connections=",
        "--read-only",
    ):
        assert option in r.stdout
