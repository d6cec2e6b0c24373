"""Moving data through a relay: seeded sources, checksumming sinks, one event loop.

The bench drives every endpoint (pty master, TCP clients, TCP sink) from one thread
with `selectors`, so it uses one core and leaves the other to the relay. Sources
checksum what they wrote and sinks what they read (CRC-32 plus a byte count): a
run whose sink totals differ from its source's is invalid, however fast it was.
"""

from __future__ import annotations

import hashlib
import os
import random
import selectors
import time
import zlib

__all__ = ["Pattern", "Sink", "Source", "pump"]

#: Largest single read or write.
CHUNK = 256 * 1024


class Pattern:
    """Seeded random bytes, repeated; the length is odd so writes never line up with it."""

    def __init__(self, seed: int = 2217, size: int = (1 << 20) + 4093) -> None:
        block = random.Random(seed).randbytes(size)
        self.size = size
        self._view = memoryview(block + block[:CHUNK])

    def at(self, offset: int, length: int) -> memoryview:
        """`length` (at most CHUNK) bytes of the endless stream, starting at `offset`."""
        start = offset % self.size
        return self._view[start : start + min(length, CHUNK)]


class Source:
    """Writes `total` bytes of a pattern to a non-blocking fd."""

    def __init__(
        self,
        fd: int,
        total: int,
        pattern: Pattern,
        chunk: int = CHUNK,
        sha256: bool = False,
        burst: int = 1,
    ) -> None:
        self.fd = fd
        self.total = total
        self.pattern = pattern
        self.chunk = chunk
        #: Writes of `chunk` bytes (each its own system call) per ready event.
        self.burst = burst
        self.sent = 0
        self.crc = 0
        self.error = ""
        #: With sha256=True, also a SHA-256 of what was written (costs the bench CPU).
        self.sha = hashlib.sha256() if sha256 else None

    @property
    def done(self) -> bool:
        return self.sent >= self.total or bool(self.error)

    def on_ready(self) -> None:
        for _ in range(self.burst):
            if self.sent >= self.total:
                return
            view = self.pattern.at(self.sent, min(self.chunk, self.total - self.sent))
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                return
            except OSError as exc:
                self.error = f"write: {exc.strerror}"
                return
            self.crc = zlib.crc32(view[:n], self.crc)
            if self.sha is not None:
                self.sha.update(view[:n])
            self.sent += n


class Sink:
    """Reads from a non-blocking fd until `expected` bytes arrived, checksumming them."""

    def __init__(self, fd: int, expected: int, sha256: bool = False) -> None:
        self.fd = fd
        self.expected = expected
        self.received = 0
        self.crc = 0
        #: With sha256=True, also a SHA-256 of what was read (costs the bench CPU).
        self.sha = hashlib.sha256() if sha256 else None
        self.t_done = 0.0
        self.error = ""
        self._buf = bytearray(CHUNK)
        self._view = memoryview(self._buf)

    @property
    def done(self) -> bool:
        return self.received >= self.expected or bool(self.error)

    def on_ready(self) -> None:
        try:
            n = os.readv(self.fd, [self._buf])
        except BlockingIOError:
            return
        except OSError as exc:  # EIO on a pty master: every slave closed
            self.error = f"read: {exc.strerror}"
            return
        if n == 0:
            self.error = "closed by the relay"
            return
        self.crc = zlib.crc32(self._view[:n], self.crc)
        if self.sha is not None:
            self.sha.update(self._view[:n])
        self.received += n
        if self.received >= self.expected and not self.t_done:
            self.t_done = time.perf_counter()

    def check(self, source: Source) -> str:
        """'' if this sink got exactly what the source sent, else what went wrong."""
        if self.error and self.received < source.sent:
            return f"{self.error} after {self.received} of {source.sent} bytes"
        if self.received != source.sent:
            return f"received {self.received} bytes, sent {source.sent}"
        if self.crc != source.crc:
            return "checksum mismatch"
        return ""


def pump(sources: list[Source], sinks: list[Sink], timeout_s: float, linger_s: float = 0.02) -> bool:
    """Run every source and sink until all are done; False on timeout.

    A sink that has its bytes stays registered until the others finish, and all are
    read for `linger_s` more, so bytes beyond the expected count are counted too.
    Each fd may appear once (a source or a sink, not both).
    """
    sel = selectors.DefaultSelector()
    for src in sources:
        sel.register(src.fd, selectors.EVENT_WRITE, src)
    for sink in sinks:
        sel.register(sink.fd, selectors.EVENT_READ, sink)
    waiting: set[Source | Sink] = {*sources, *sinks}
    deadline = time.monotonic() + timeout_s
    try:
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _serve(sel, sel.select(min(left, 0.5)), waiting)
        linger_end = time.monotonic() + linger_s
        while (left := linger_end - time.monotonic()) > 0:
            _serve(sel, sel.select(left), waiting)
        return True
    finally:
        sel.close()


def _serve(
    sel: selectors.BaseSelector, events: list[tuple[selectors.SelectorKey, int]], waiting: set[Source | Sink]
) -> None:
    for key, _ in events:
        end = key.data
        end.on_ready()
        if end.done:
            waiting.discard(end)
            if isinstance(end, Source) or end.error:
                sel.unregister(key.fd)
