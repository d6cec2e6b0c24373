"""The composition matrix: each filter on each port kind it can sit on, end to end.

A serial device (a pty standing in for it) is port 0; port 1 is the kind under
test with the filter attached: a tcp `*` slot, a tcp-multi listener with three
sessions at once (both also over TLS with client certificates), a pty an
application opens, an on-demand tcp client port (it connects when the device
comes up). Through every combination the device's
data reaches every session whole (after the filter's own encoding, undone
here as its peer would), what each session sends reaches the device whole, and
where the filter keeps per-connection state (telnet negotiation, echo, trace)
each session has its own.
"""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import termios
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.tlscerts import Pki, pki_or_skip

from .conftest import DEADLINE_S, Hub, PtyDevice, free_port, wait_for

IAC, SB, SE = 0xFF, 250, 240
DOWN = b"from the device \xff\xff and \x00 \r\n" * 8


# ---- how a peer of each filter encodes and decodes ------------------------------------------


def telnet_decode(raw: bytes) -> bytes:
    """What a telnet peer makes of `raw`: commands removed, IAC IAC -> 0xFF."""
    out = bytearray()
    i, n = 0, len(raw)
    while i < n:
        b = raw[i]
        if b != IAC:
            out.append(b)
            i += 1
            continue
        if i + 1 >= n:
            break
        cmd = raw[i + 1]
        if cmd == IAC:
            out.append(IAC)
            i += 2
        elif cmd == SB:
            end = raw.find(bytes((IAC, SE)), i + 2)
            if end < 0:
                break
            i = end + 2
        elif cmd in (251, 252, 253, 254):
            i += 3
        else:
            i += 2
    return bytes(out)


def double_ff(data: bytes) -> bytes:
    return data.replace(b"\xff", b"\xff\xff")


def esc_encode(data: bytes) -> bytes:
    return data.replace(b"\xff", b"\xff\x00")


def esc_decode(raw: bytes) -> bytes:
    return raw.replace(b"\xff\x00", b"\xff")


def same(data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class FilterCase:
    args: tuple[str, ...]
    encode: Callable[[bytes], bytes] = same  #: what a session sends for `data`
    decode: Callable[[bytes], bytes] = same  #: what a session makes of what it got
    echo: bool = False


FILTERS = {
    "none": FilterCase(()),
    "telnet": FilterCase(
        ("--create-filter=telnet,g", "--add-filters=1:g"), encode=double_ff, decode=telnet_decode
    ),
    "escparse+escinsert": FilterCase(
        (
            "--create-filter=escparse,g,parse:--request-esc-mode=no",
            "--create-filter=escinsert,g,insert",
            "--add-filters=1:g",
        ),
        encode=esc_encode,
        decode=esc_decode,
    ),
    "echo": FilterCase(("--create-filter=echo,g", "--add-filters=1:g"), echo=True),
    "trace": FilterCase(("--create-filter=trace,g,T", "--add-filters=1:g")),
    "ratelimit": FilterCase(
        ("--create-filter=ratelimit,g:--bytes-per-second=200000", "--add-filters=1:g"),
    ),
    "packetize": FilterCase(
        ("--create-filter=packetize,g:--end-byte=LF --max-delay=20", "--add-filters=1:g"),
    ),
    "pinmap+linectl+lsrmap": FilterCase(
        (
            "--create-filter=lsrmap,g",
            "--create-filter=pinmap,g:--cts=cts --dsr=dsr --dcd=dcd",
            "--create-filter=linectl,g:--br=local --lc=local",
            "--add-filters=1:g",
        )
    ),
}


# ---- the sessions of each port kind ----------------------------------------------------------


class Session:
    """One connection to port 1, as its peer: raw bytes in and out."""

    name = ""

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def recv(self) -> bytes:
        """What arrived so far (non-blocking)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SockSession(Session):
    def __init__(self, sock: socket.socket):
        self.sock = sock
        sock.setblocking(False)

    def send(self, data: bytes) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            return b""

    def close(self) -> None:
        self.sock.close()


class PtySession(Session):
    def __init__(self, link: str):
        self.fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            select.select([], [self.fd], [], DEADLINE_S)
            view = view[os.write(self.fd, view) :]

    def recv(self) -> bytes:
        try:
            return os.read(self.fd, 65536)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        os.close(self.fd)


@dataclass
class Kind:
    """How to make port 1 of a kind and connect its sessions."""

    sessions: int
    args: Callable[[dict], list[str]]
    connect: Callable[[dict, Hub], list[Session]]
    names: tuple[str, ...] = ()
    ctx: dict = field(default_factory=dict)


def _tcp_connect(n: int, line: str, tls: bool = False) -> Callable[[dict, Hub], list[Session]]:
    def connect(ctx: dict, hub: Hub) -> list[Session]:
        sessions = []
        for k in range(n):
            sock = socket.create_connection(("127.0.0.1", ctx["port"]), DEADLINE_S)
            if tls:
                pki: Pki = ctx["pki"]
                tls_ctx = ssl.create_default_context(cafile=str(pki.ca))
                tls_ctx.load_cert_chain(pki.client_cert, pki.client_key)
                sock = tls_ctx.wrap_socket(sock, server_hostname="127.0.0.1")
            sessions.append(SockSession(sock))
            hub.wait_line(line.format(k + 1))
        return sessions

    return connect


def _tls(ctx: dict) -> list[str]:
    """The listener's TLS options: its certificate, and clients must have one."""
    pki: Pki = ctx["pki"]
    return [f"--tls-cert={pki.server_cert}", f"--tls-key={pki.server_key}", f"--tls-ca={pki.ca}"]


def _client_connect(ctx: dict, hub: Hub) -> list[Session]:
    conn, _ = ctx["listener"].accept()
    hub.wait_line("TCP(1) connected to")
    return [SockSession(conn)]


def _pty_connect(ctx: dict, hub: Hub) -> list[Session]:
    s = PtySession(ctx["link"])
    hub.wait_line("vcom(1) connected")
    return [s]


KINDS = {
    "tcp slot": Kind(
        1,
        lambda c: ["--use-driver=tcp", "--interface=127.0.0.1", f"*{c['port']}"],
        _tcp_connect(1, "TCP(1) accepted connection"),
    ),
    "tcp-multi x3": Kind(
        3,
        lambda c: ["--use-driver=tcp-multi", "--interface=127.0.0.1", str(c["port"])],
        _tcp_connect(3, "TCPM(1): client {} connected"),
        names=("TCPM(1)#1", "TCPM(1)#2", "TCPM(1)#3"),
    ),
    "tcp slot tls": Kind(
        1,
        lambda c: ["--use-driver=tcp", "--interface=127.0.0.1", *_tls(c), f"*{c['port']}"],
        _tcp_connect(1, "TCP(1) accepted connection", tls=True),
    ),
    "tcp-multi x3 tls": Kind(
        3,
        lambda c: ["--use-driver=tcp-multi", "--interface=127.0.0.1", *_tls(c), str(c["port"])],
        _tcp_connect(3, "TCPM(1): client {} connected", tls=True),
        names=("TCPM(1)#1", "TCPM(1)#2", "TCPM(1)#3"),
    ),
    "pty": Kind(1, lambda c: ["--use-driver=pty", c["link"]], _pty_connect),
    "tcp client": Kind(1, lambda c: ["--use-driver=tcp", f"127.0.0.1:{c['port']}"], _client_connect),
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return pki_or_skip(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    s.settimeout(DEADLINE_S)
    yield s
    s.close()


def collect(
    sessions: list[Session], got: list[bytearray], decode: Callable[[bytes], bytes], want: list[list[bytes]]
) -> None:
    """Read from every session until each one's decoded stream holds its wanted parts."""

    def done() -> bool:
        for s, buf in zip(sessions, got, strict=True):
            buf += s.recv()
        return all(
            all(w in decode(bytes(buf)) for w in want_i) for buf, want_i in zip(got, want, strict=True)
        )

    wait_for(done, what="every session's data")


@pytest.mark.parametrize("filter_name", list(FILTERS))
@pytest.mark.parametrize("kind_name", list(KINDS))
def test_filter_on_port_kind(kind_name, filter_name, start_hub, pty_device, tmp_path, listener, pki):
    kind, case = KINDS[kind_name], FILTERS[filter_name]
    dev: PtyDevice = pty_device()
    ctx = {
        "port": listener.getsockname()[1] if kind_name == "tcp client" else free_port(),
        "link": str(tmp_path / "vcom"),
        "listener": listener,
        "pki": pki,
    }
    hub = start_hub(*case.args, "--octs=off", dev.path, *kind.args(ctx), wait_ports=2)
    sessions = kind.connect(ctx, hub)
    try:
        # The device's data reaches every session whole, as its peer decodes it.
        dev.write(DOWN)
        got = [bytearray() for _ in sessions]
        collect(sessions, got, case.decode, [[DOWN]] * len(sessions))
        for buf in got:
            assert case.decode(bytes(buf)).count(DOWN) == 1

        # What each session sends reaches the device whole (and, with echo, itself only).
        marks = [b"<session %d \xff\x00\r>\n" % i for i in range(len(sessions))]
        for s, m in zip(sessions, marks, strict=True):
            s.send(case.encode(m))
        received = bytearray()

        def device_has_all() -> bool:
            try:
                received.extend(os.read(dev.master, 65536))
            except BlockingIOError:
                pass
            return all(m in received for m in marks)

        wait_for(device_has_all, what="every session's data on the device")
        if case.echo:
            got = [bytearray() for _ in sessions]
            collect(sessions, got, case.decode, [[m] for m in marks])
            time.sleep(0.1)
            for i, (s, buf) in enumerate(zip(sessions, got, strict=True)):
                buf += s.recv()
                others = [m for j, m in enumerate(marks) if j != i]
                assert not any(m in buf for m in others), f"session {i} got another's echo"
        if filter_name == "trace":
            for name in kind.names:
                assert re.search(re.escape(name) + r"-\(T\)->", hub.output), f"no trace line of {name}"
        if filter_name == "telnet" and kind_name != "pty":
            for buf in got:  # each session got the telnet filter's opening requests
                assert buf.startswith(b"\xff"), "each session negotiates"
    finally:
        for s in sessions:
            s.close()
    assert hub.proc.poll() is None
    assert "Traceback" not in hub.output
    assert "Write lost" not in hub.output
