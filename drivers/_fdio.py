"""Non-blocking I/O on a character-device fd (pty master, serial port).

Uses only the public loop API (`add_reader`/`add_writer`), which uvloop
implements too. Reads take whatever is available, up to READ_SIZE, in one
os.read. Writes go out at once when the fd takes them; only the rest is
queued, and the owner is told when the queue crosses its watermarks (the
shape of asyncio's _SelectorSocketTransport.write and _FlowControlMixin).

An owner that keeps its own queue (the pty port's session, whose queue drops
whole lines) uses `offer` instead of `write`: it writes what the fd takes now,
queues nothing, and `on_writable` says when to offer the rest.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
from collections.abc import Callable

__all__ = ["READ_SIZE", "FdStream"]

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
#: A tty read this large (a tty hands out ~4 KiB at most) suggests more is
#: waiting; a smaller one is a small message, and a second read would only add
#: a system call to its latency.
DRAIN_FROM = 2048

#: errno values that mean "try again later" rather than "the device is gone".
_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class FdStream:
    """Reads and writes one non-blocking fd on the loop.

    Callbacks:
      on_data(bytes)           bytes read (never empty)
      on_error(OSError|None)   the fd failed (EIO on unplug or pty hang-up) or hit EOF;
                               the stream has stopped itself and will not call again
      on_write_paused(bool)    the write queue went above `high` (True) or back to `low`
      on_writable()            after an `offer` the fd did not take whole: it can take more

    `dropped` counts bytes accepted by write() that were never written because
    the stream stopped (queued output, and a chunk whose write failed); the
    owner counts them as lost.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        on_data: Callable[[bytes], None],
        on_error: Callable[[OSError | None], None],
        on_write_paused: Callable[[bool], None] | None = None,
        high: int = 64 * 1024,
        low: int = 16 * 1024,
        drain: bool = True,
        on_writable: Callable[[], None] | None = None,
    ):
        self.loop = loop
        self.fd = fd
        self._on_data = on_data
        self._on_error = on_error
        self._on_write_paused = on_write_paused
        self._on_writable = on_writable
        self.high = high
        self.low = low
        #: Read until the fd is empty before delivering (off for pty packet mode,
        #: where every read is one packet).
        self.drain = drain
        # memoryviews, so a partial write (a pty takes ~4 KiB at a time) does not
        # copy the rest of a large chunk again and again
        self._buffer: collections.deque[memoryview] = collections.deque()
        self._buffered = 0
        self._reading = False
        self._writing = False
        self._write_paused = False
        self._closed = False
        #: A failed `offer` scheduled the error report.
        self._failing = False
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<FdStream fd={self.fd} read={'on' if self._reading else 'off'} queued={self._buffered}B>"

    @property
    def queued(self) -> int:
        return self._buffered

    # ---- reading ------------------------------------------------------------

    def resume_reading(self) -> None:
        if not self._reading and not self._closed:
            self._reading = True
            self.loop.add_reader(self.fd, self._read_ready)

    def pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self.loop.remove_reader(self.fd)

    def _read_ready(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except OSError as exc:
            if exc.errno in _RETRY:
                return
            self._fail(exc)
            return
        if not data:
            self._fail(None)
            return
        if self.drain and DRAIN_FROM <= len(data) < READ_SIZE:
            data = self._drain(data)
        self._on_data(data)

    def _drain(self, first: bytes) -> bytes:
        """Read what else is already there (a tty hands out ~4 KiB a read), so the
        hub routes one larger chunk: fewer writes per destination, same latency."""
        parts = [first]
        total = len(first)
        while total < READ_SIZE:
            try:
                more = os.read(self.fd, READ_SIZE - total)
            except OSError:
                break  # EAGAIN; a real error shows up on the next read
            if not more:
                break
            parts.append(more)
            total += len(more)
        return first if len(parts) == 1 else b"".join(parts)

    # ---- writing ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        if not self._buffer:
            try:
                n = os.write(self.fd, data)
            except OSError as exc:
                if exc.errno not in _RETRY:
                    self._fail(exc, unsent=len(data))
                    return
                n = 0
            if n == len(data):
                return
            rest = memoryview(data)[n:]
            self._writing = True
            self.loop.add_writer(self.fd, self._write_ready)
        else:
            rest = memoryview(data)
        self._buffer.append(rest)
        self._buffered += len(rest)
        if not self._write_paused and self._buffered > self.high:
            self._write_paused = True
            if self._on_write_paused:
                self._on_write_paused(True)

    def _write_ready(self) -> None:
        while self._buffer:
            chunk = self._buffer[0]
            try:
                n = os.write(self.fd, chunk)
            except OSError as exc:
                if exc.errno in _RETRY:
                    break
                self._fail(exc)
                return
            self._buffered -= n
            if n < len(chunk):
                self._buffer[0] = chunk[n:]
                break
            self._buffer.popleft()
        if not self._buffer and self._writing:
            self._writing = False
            self.loop.remove_writer(self.fd)
        if self._write_paused and self._buffered <= self.low:
            self._write_paused = False
            if self._on_write_paused:
                self._on_write_paused(False)

    def offer(self, data: bytes | memoryview) -> int:
        """Write what the fd takes now; queue nothing (the caller keeps the rest).

        Returns the number of bytes written. Fewer than ``len(data)`` means the
        fd is full, and `on_writable` is called once it can take more; or the
        fd failed (or the stream stopped), and `on_error` follows from the
        loop, never from inside this call. Not to be mixed with `write` on one
        stream.
        """
        if self._closed or self._failing:
            return 0
        try:
            n = os.write(self.fd, data)
        except OSError as exc:
            if exc.errno not in _RETRY:
                self._failing = True
                self.loop.call_soon(self._fail_later, exc)
                return 0
            n = 0
        if n < len(data) and not self._writing:
            self._writing = True
            self.loop.add_writer(self.fd, self._offer_ready)
        return n

    def _offer_ready(self) -> None:
        if self._writing:
            self._writing = False
            self.loop.remove_writer(self.fd)
        if self._on_writable is not None:
            self._on_writable()

    def _fail_later(self, exc: OSError) -> None:
        if not self._closed:
            self._fail(exc)

    def discard_output(self) -> int:
        """Drop what is queued (PURGE_TX); return how many bytes were dropped."""
        n = self._buffered
        self._buffer.clear()
        self._buffered = 0
        self._write_ready()
        return n

    # ---- life cycle ---------------------------------------------------------

    def _fail(self, exc: OSError | None, unsent: int = 0) -> None:
        self.dropped += unsent
        self.stop()
        self._on_error(exc)

    def stop(self) -> int:
        """Stop watching the fd and drop queued output. Does not close the fd.

        Returns the number of queued bytes dropped (also added to `dropped`).
        """
        if self._closed:
            return 0
        self._closed = True
        self.pause_reading()
        if self._writing:
            self._writing = False
            self.loop.remove_writer(self.fd)
        if self._write_paused:
            self._write_paused = False
            if self._on_write_paused:
                self._on_write_paused(False)
        dropped = self._buffered
        self.dropped += dropped
        self._buffer.clear()
        self._buffered = 0
        return dropped
