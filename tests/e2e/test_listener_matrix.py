"""Listeners composed with TLS: every listener kind, framing and slow-client policy,
plain and over TLS, with real clients (issue 17 item 1 and its composition column).

* `test_silent_tls_client_gets_every_write`: issue 17's reproduction. A
  tcp-multi client over TLS that never sends got only the device's first
  write (the SSL transport paused writing after each write with
  high-water 0); both event loops, socat's OPENSSL client and Python's ssl.
* `test_tls_block_does_not_stall_the_device`: with --slow-client=block the
  device stopped being read after about 200 kB.
* `test_readers_get_everything`: a `*` slot pair and tcp-multi in each
  framing and slow-client policy, plain and TLS, one Python and one socat
  reader each: the stream arrives complete and in order, nothing dropped.
* `test_a_stalled_reader`: tcp-multi, each framing and policy, plain and
  TLS: the reading session gets everything; the stalled one loses data
  (drop, disconnect: counted, whole lines with line framing; disconnect also
  closes it) or holds the device back until it reads again (block: nothing
  lost).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.tlscerts import Pki, pki_or_skip

from .conftest import DEADLINE_S, LOOPS, Hub, PtyDevice, free_port, wait_for

HAVE_SOCAT = shutil.which("socat") is not None
needs_socat = pytest.mark.skipif(not HAVE_SOCAT, reason="socat is not installed (apt-get install socat)")
#: Framed sessions start at the first line end; this line makes the stream start there.
PRIME = b"$PRIME\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return pki_or_skip(tmp_path_factory.mktemp("pki"))


def tls_args(pki: Pki) -> list[str]:
    return [f"--tls-cert={pki.server_cert}", f"--tls-key={pki.server_key}", f"--tls-ca={pki.ca}"]


def lines(n: int, seed: int = 1) -> bytes:
    """`n` numbered lines of varied length."""
    rng = random.Random(seed)
    return b"".join(b"%08d:%s\n" % (i, b"x" * rng.randint(0, 70)) for i in range(n))


# ---- clients -------------------------------------------------------------------------------


class Reader:
    """A client that reads everything it is sent into `data`, in a thread."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.go = threading.Event()  # cleared: the reader stops reading (stalls)
        self.go.set()

    def wait_bytes(self, n: int, timeout: float = 30.0) -> bytes:
        wait_for(lambda: len(self.data) >= n or self.closed, timeout, f"{n} bytes (have {len(self.data)})")
        return bytes(self.data)

    def close(self) -> None:
        raise NotImplementedError


class PyReader(Reader):
    """Python socket or ssl client; `rcvbuf` makes a small kernel buffer (a stall shows soon)."""

    def __init__(self, port: int, pki: Pki | None, rcvbuf: int = 0):
        super().__init__()
        raw = socket.socket()
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(DEADLINE_S)
        raw.connect(("127.0.0.1", port))
        if pki is not None:
            ctx = ssl.create_default_context(cafile=str(pki.ca))
            ctx.load_cert_chain(pki.client_cert, pki.client_key)
            raw = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        raw.settimeout(0.1)
        self.sock = raw
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.closed:
            if not self.go.wait(0.05):
                continue
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except OSError:
                break
            if not chunk:
                break
            self.data += chunk
        self.closed = True

    def close(self) -> None:
        self.closed = True
        self._thread.join(DEADLINE_S)
        self.sock.close()


class SocatReader(Reader):
    """socat -u from the listener (TCP or OPENSSL with a client certificate) to its stdout."""

    def __init__(self, port: int, pki: Pki | None):
        super().__init__()
        if pki is None:
            address = f"TCP:127.0.0.1:{port}"
        else:
            address = f"OPENSSL:127.0.0.1:{port},cert={pki.client_cert},key={pki.client_key},cafile={pki.ca}"
        self.proc = subprocess.Popen(
            ["socat", "-u", address, "STDOUT"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.data += chunk
        self.closed = True

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(DEADLINE_S)
        self._thread.join(DEADLINE_S)


def write_paced(dev: PtyDevice, data: bytes, seed: int = 2, rate: float = 0.0) -> threading.Thread:
    """Write `data` to the device in pieces of random sizes, from a thread; at about
    `rate` bytes a second (0: as fast as it goes)."""

    def run() -> None:
        rng = random.Random(seed)
        i = 0
        while i < len(data):
            n = rng.randint(1, 4096)
            dev.write(data[i : i + n])
            i += n
            if rate:
                time.sleep(n / rate)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def clients_in(hub: Hub, multi: bool, n: int) -> None:
    if multi:
        hub.wait_line(f"({n} now)")
    else:
        hub.wait_line("accepted connection from", count=n)


# ---- issue 17 item 1 ---------------------------------------------------------------------------


def start_multi(start_hub: Callable[..., Hub], dev: PtyDevice, pki: Pki, *extra: str, uvloop: bool = True):
    port = free_port()
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--use-driver=tcp-multi",
        "--interface=127.0.0.1",
        *tls_args(pki),
        *extra,
        str(port),
        wait_ports=2,
        uvloop=uvloop,
    )
    return hub, port


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("client", ["socat", "python"])
def test_silent_tls_client_gets_every_write(start_hub, pty_device, pki, loop, client):
    if client == "socat" and not HAVE_SOCAT:
        pytest.skip("socat is not installed (apt-get install socat)")
    dev = pty_device()
    hub, port = start_multi(start_hub, dev, pki, uvloop=loop == "uvloop")
    reader: Reader = SocatReader(port, pki) if client == "socat" else PyReader(port, pki)
    try:
        clients_in(hub, True, 1)
        sent = b""
        for i in range(5):
            line = b"line %d\n" % i
            dev.write(line)
            sent += line
            # each write arrives before the next (the bug: only the first ever did)
            assert reader.wait_bytes(len(sent), DEADLINE_S) == sent
    finally:
        reader.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_block_does_not_stall_the_device(start_hub, pty_device, pki, loop):
    dev = pty_device()
    hub, port = start_multi(start_hub, dev, pki, "--slow-client=block", uvloop=loop == "uvloop")
    reader = PyReader(port, pki)
    try:
        clients_in(hub, True, 1)
        payload = lines(20_000)  # about 850 kB, four times what stalled
        writer = write_paced(dev, payload)
        assert reader.wait_bytes(len(payload)) == payload
        writer.join(DEADLINE_S)
    finally:
        reader.close()
    assert "dropped" not in hub.output and "Write lost" not in hub.output


# ---- the matrix: everybody reads ---------------------------------------------------------------

KINDS = [
    pytest.param("slots", "-", "-", id="tcp-slots"),
    *(
        pytest.param("multi", frame, slow, id=f"tcp-multi-{frame}-{slow}")
        for frame in ("bytes", "line")
        for slow in ("drop", "block", "disconnect")
    ),
]


def start_listener(start_hub, dev: PtyDevice, pki: Pki | None, kind: str, frame: str, slow: str, *extra: str):
    port = free_port()
    tls = tls_args(pki) if pki is not None else []
    if kind == "slots":
        ports = ["--use-driver=tcp", "--interface=127.0.0.1", *tls, *extra, f"*{port}", f"*{port}"]
    else:
        ports = [
            "--use-driver=tcp-multi",
            "--interface=127.0.0.1",
            *tls,
            f"--frame={frame}",
            f"--slow-client={slow}",
            *extra,
            str(port),
        ]
    hub = start_hub("--octs=off", dev.path, *ports, wait_ports=3 if kind == "slots" else 2)
    return hub, port


@needs_socat
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize(("kind", "frame", "slow"), KINDS)
def test_readers_get_everything(start_hub, pty_device, pki, kind, frame, slow, tls):
    dev = pty_device()
    hub, port = start_listener(start_hub, dev, pki if tls else None, kind, frame, slow)
    readers: list[Reader] = [PyReader(port, pki if tls else None)]
    clients_in(hub, kind == "multi", 1)
    readers.append(SocatReader(port, pki if tls else None))
    clients_in(hub, kind == "multi", 2)
    try:
        payload = lines(3000)
        expected = payload if frame == "line" else PRIME + payload
        writer = write_paced(dev, PRIME + payload)
        for r in readers:
            assert r.wait_bytes(len(expected)) == expected, f"{type(r).__name__} got another stream"
        writer.join(DEADLINE_S)
    finally:
        for r in readers:
            r.close()
    hub.stop()
    assert "dropped" not in hub.output and "Write lost" not in hub.output


# ---- the matrix: one reader stalls ---------------------------------------------------------------


def whole_lines_in_order(got: bytes, payload: bytes) -> None:
    """Every line of `got` up to its last LF is a line of `payload`, numbers increasing."""
    body = got[: got.rfind(b"\n") + 1]
    known = set(payload.splitlines(keepends=True))
    numbers = []
    for line in body.splitlines(keepends=True):
        assert line in known, f"not a whole line: {line!r}"
        numbers.append(int(line[:8]))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize(("kind", "frame", "slow"), [k for k in KINDS if k.values[0] == "multi"])
def test_a_stalled_reader(start_hub, pty_device, pki, kind, frame, slow, tls):
    dev = pty_device()
    # The default --write-limit (256 KiB) is the fast reader's slack: half a second.
    extra = ["--sndbuf=4096", "--send-timeout=1000"]
    hub, port = start_listener(start_hub, dev, pki if tls else None, kind, frame, slow, *extra)
    fast = PyReader(port, pki if tls else None)
    clients_in(hub, True, 1)
    stalled = PyReader(port, pki if tls else None, rcvbuf=2048)
    stalled.go.clear()
    clients_in(hub, True, 2)
    payload = lines(15_000)  # about 640 kB at 500 kB/s: the fast reader keeps up
    expected = payload if frame == "line" else PRIME + payload
    with explained(hub), contextlib.ExitStack() as stack:
        stack.callback(stalled.close)
        stack.callback(fast.close)
        writer = write_paced(dev, PRIME + payload, rate=5e5)
        if slow == "block":
            # lossless: the device is held back until the stalled reader reads again
            time.sleep(1.0)
            assert len(fast.data) < len(expected), "block did not hold the device back"
            stalled.go.set()
            assert stalled.wait_bytes(len(expected)) == expected
        assert fast.wait_bytes(len(expected)) == expected
        writer.join(DEADLINE_S)
        if slow == "disconnect":
            hub.wait_line("(send timeout)")
        stalled.go.set()
        if slow != "block":
            got = stalled.wait_bytes(1, 5)  # what it had before the stall, and what was queued
            assert len(got) < len(expected)
            if frame == "line":
                whole_lines_in_order(got, payload)
    with explained(hub):
        hub.wait_line("client 2 (", timeout=DEADLINE_S)
        hub.stop()
        closing = {n: [x for x in hub.lines if f"client {n} (" in x and "disconnected" in x] for n in (1, 2)}
        assert "dropped" not in closing[1][0]
        if slow == "block":
            assert "dropped" not in hub.output and "Write lost" not in hub.output
        else:
            unit = r"dropped \d+ lines? \(" if frame == "line" else r"dropped [\d.]+ [kM]?B"
            assert re.search(unit, closing[2][0]), closing
            assert "Write lost TCPM(1)" in hub.output


@contextlib.contextmanager
def explained(hub: Hub) -> Iterator[None]:
    """Add the hub's log to an assertion error."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- hub output ---\n{hub.output[-5000:]}") from None
