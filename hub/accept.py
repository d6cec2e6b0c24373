"""Deferred accept on a listening socket, shared by the tcp and tcp-multi listeners
and the HTTP server.

The socket is watched only while its owner has room (an idle slot, the
connection limit not reached); otherwise connections wait in the kernel's
backlog, not in the hub. Accepts come in batches, and running out of file
descriptors or memory pauses accepting for a while instead of spinning.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["ACCEPT_BATCH", "ACCEPT_PAUSE_S", "Acceptor"]

log = logging.getLogger(__name__)

#: Connections accepted per readiness event, so one listener cannot hog the loop.
ACCEPT_BATCH = 32
#: Pause after EMFILE/ENFILE/ENOBUFS/ENOMEM before trying to accept again.
ACCEPT_PAUSE_S = 1.0
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Acceptor:
    """Accepts on `sock` while `has_room()` is true; hands each connection to `accepted`.

    `accepted(conn, addr)` owns the connection from then on (admit, refuse or
    wrap it). `name()` names the listener in log lines.
    """

    def __init__(
        self,
        name: Callable[[], str],
        has_room: Callable[[], bool],
        accepted: Callable[[socket.socket, Any], None],
    ):
        self.loop: asyncio.AbstractEventLoop | None = None
        self._name = name
        self._has_room = has_room
        self._accepted = accepted
        self._sock: socket.socket | None = None
        self._watching = False
        self._pause: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        """Accept on `sock` (already bound and listening) from `loop`."""
        self.loop = loop
        self._sock = sock
        self.watch()

    def watch(self) -> None:
        """Watch the socket if the owner has room (call whenever room may have appeared)."""
        if (
            self.loop is not None
            and self._sock is not None
            and not self._watching
            and self._pause is None
            and not self._closed
            and self._has_room()
        ):
            self.loop.add_reader(self._sock, self._on_acceptable)
            self._watching = True

    def unwatch(self) -> None:
        """Stop watching; new connections wait in the backlog."""
        if self._watching and self.loop is not None and self._sock is not None:
            self._watching = False
            try:
                self.loop.remove_reader(self._sock)
            except (RuntimeError, ValueError, OSError):
                pass  # the loop is already closed; nothing left to stop watching

    def close(self) -> None:
        """Stop for good. The owner closes the socket."""
        self._closed = True
        self.unwatch()
        if self._pause is not None:
            self._pause.cancel()
            self._pause = None
        self._sock = None

    def _resume(self) -> None:
        self._pause = None
        self.watch()

    def _on_acceptable(self) -> None:
        sock = self._sock
        assert sock is not None
        for _ in range(ACCEPT_BATCH):
            if not self._has_room():
                self.unwatch()  # deferred: the connection stays in the backlog
                return
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    log.error("%s: cannot accept: %s; pausing", self._name(), exc.strerror or exc)
                    self.unwatch()
                    assert self.loop is not None
                    self._pause = self.loop.call_later(ACCEPT_PAUSE_S, self._resume)
                    return
                log.debug("%s: accept failed: %s", self._name(), exc)
                continue
            self._accepted(conn, addr)
