"""The bench's side of a relay: pty devices, loopback ports, clients, and a sync step.

Everything binds or connects to 127.0.0.1 only, and every wait has a deadline.
"""

from __future__ import annotations

import os
import select
import socket
import time
import tty
from types import TracebackType

__all__ = [
    "LOOPBACK",
    "PtyDevice",
    "close_all",
    "connect_clients",
    "connect_synced",
    "connect_through",
    "free_port",
    "free_ports",
    "listen_socket",
    "read_exactly",
    "write_all",
]

LOOPBACK = "127.0.0.1"


class PtyDevice:
    """A pty pair standing in for a serial device.

    The bench holds the master (the "device" end) and keeps the raw slave open so
    the pty survives the relay closing it; the relay opens `path`, the slave.
    """

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def __enter__(self) -> PtyDevice:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        os.close(self.master)
        os.close(self.slave)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """`count` different free ports on 127.0.0.1 (free_port() called repeatedly may
    give the same port twice: the kernel hands a just-closed port out again)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            socks.append(s)
            s.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def listen_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 with a free port, for the bench's TCP sink."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((LOOPBACK, 0))
    s.listen(16)
    return s


def connect_clients(port: int, count: int, timeout_s: float) -> list[socket.socket]:
    """Connect `count` clients one after the other; they come back non-blocking.

    For clients of a device relay, use connect_synced() instead.
    """
    clients: list[socket.socket] = []
    deadline = time.monotonic() + timeout_s
    try:
        for _ in range(count):
            s = socket.create_connection((LOOPBACK, port), timeout=max(0.1, deadline - time.monotonic()))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            clients.append(s)
    except OSError:
        close_all(clients)
        raise
    return clients


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def write_all(fd: int, data: bytes, timeout_s: float) -> None:
    """Write all of `data` to a non-blocking fd, or raise TimeoutError."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout_s
    while view:
        try:
            view = view[os.write(fd, view) :]
            continue
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"wrote {len(data) - len(view)} of {len(data)} bytes")
        select.select([], [fd], [], left)


def read_exactly(fd: int, size: int, timeout_s: float) -> bytes:
    """Read exactly `size` bytes from a non-blocking fd, or raise TimeoutError/EOFError."""
    buf = bytearray()
    deadline = time.monotonic() + timeout_s
    while len(buf) < size:
        try:
            chunk = os.read(fd, size - len(buf))
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"read {len(buf)} of {size} bytes") from None
            select.select([fd], [], [], left)
            continue
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {size} bytes")
        buf += chunk
    return bytes(buf)


def connect_synced(
    port: int, count: int, device_fd: int, timeout_s: float, window: int = 4
) -> list[socket.socket]:
    """Connect `count` clients, each proving its path to the device with one byte.

    Each client sends b"s" once connected; at most `window` clients may be connected
    but not yet heard at the device, so a relay with a tiny listen backlog (ser2net
    listens with 5) is never sent more SYNs than it can queue. Peers that open the
    device only when a client connects (ser2tcp, ser2net) are ready once this returns.
    The clients come back non-blocking.
    """
    clients: list[socket.socket] = []
    heard = 0
    deadline = time.monotonic() + timeout_s
    try:
        while heard < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{heard} of {count} clients heard at the device")
            if len(clients) < count and len(clients) - heard < window:
                s = socket.create_connection((LOOPBACK, port), timeout=left)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.setblocking(False)
                clients.append(s)
                write_all(s.fileno(), b"s", left)
                continue
            select.select([device_fd], [], [], left)
            try:
                got = os.read(device_fd, 65536)
            except BlockingIOError:
                continue
            if got.strip(b"s"):
                raise RuntimeError(f"the device read {got[:20]!r} instead of sync bytes")
            heard += len(got)
    except (OSError, RuntimeError):
        close_all(clients)
        raise
    if heard != count:
        close_all(clients)
        raise RuntimeError(f"the device read {heard} sync bytes for {count} clients")
    return clients


def connect_through(port: int, server: socket.socket, timeout_s: float) -> list[socket.socket]:
    """Connect a client to a TCP -> TCP relay listening on `port` and accept the
    relay's own connection on `server`; one byte proves the path.

    Returns [client, upstream], both non-blocking (the caller closes them). The
    relay may connect out at start or only once the client arrives.
    """
    server.settimeout(timeout_s)
    clients = connect_clients(port, 1, timeout_s)
    try:
        write_all(clients[0].fileno(), b"s", timeout_s)
        upstream, _ = server.accept()
        clients.append(upstream)
        upstream.setblocking(False)
        if read_exactly(upstream.fileno(), 1, timeout_s) != b"s":
            raise RuntimeError("sync byte corrupted")
    except (OSError, RuntimeError, EOFError):
        close_all(clients)
        raise
    return clients
