"""Connection options shared by the network drivers: TCP keepalive, the inactivity
timeout, and the buffer kept while nobody is connected.

The ``tcp`` and ``tcp-multi`` drivers put `KEEPALIVE_USAGE` in their usage
text, merge `DEFAULTS`, convert with `CONVERTERS` and call `Keepalive.apply`
on each connection's socket, so the options mean the same on both (driver
options reach every driver). `IdleTimer` closes a connection that carried no
data either way for ``--idle-timeout`` (tcp-multi checks its sessions with
`drivers._sessions.SessionSet.expired`, the same rule).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.errors import UsageError

__all__ = [
    "CONVERTERS",
    "DEFAULTS",
    "KEEPALIVE_USAGE",
    "IdleTimer",
    "Keepalive",
    "parse_seconds",
]

KEEPALIVE_USAGE = """\
  --keepalive=<s>      TCP keepalive: probe a connection that has been silent
                       for <s> seconds. Default 0: the system's timing
                       (keepalive is always on). With it, unacknowledged data
                       also ends the connection after that long
                       (TCP_USER_TIMEOUT).
  --keepalive-interval=<s>
                       Seconds between probes that get no answer. Default:
                       a third of --keepalive (at least 1), or the system's.
  --keepalive-count=<n>
                       Unanswered probes that end the connection. Default 3
                       with --keepalive, else the system's. A vanished peer
                       is noticed after --keepalive plus count times interval.
  --idle-timeout=<s>   Close a connection that sent and received no data for
                       <s> seconds (a tcp client port then reconnects by its
                       --reconnect). Default 0: never.
"""

_NUMBER_RE = re.compile(r"[0-9]+\Z")
#: Linux bounds of TCP_KEEPIDLE/TCP_KEEPINTVL (seconds) and TCP_KEEPCNT.
_MAX_KEEP_S = 32767
_MAX_KEEP_COUNT = 127
#: Without --keepalive-count but with --keepalive.
DEFAULT_PROBES = 3


def _bounded_int(name: str, unit: str, maximum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        text = str(value).strip()
        if not _NUMBER_RE.match(text) or int(text) > maximum:
            raise UsageError(None, f"Invalid {name} value ({unit}, 0 to {maximum})")
        return int(text)

    return convert


def parse_seconds(value: Any) -> float:
    """--idle-timeout: seconds, 0 or more (0: never). Raises UsageError."""
    try:
        x = float(value)
    except ValueError:
        x = -1.0
    if not 0 <= x < 1e9:  # also refuses nan
        raise UsageError(None, "Invalid --idle-timeout value (seconds, 0 or more)")
    return x


DEFAULTS: dict[str, Any] = {
    "--keepalive": 0,
    "--keepalive-interval": 0,
    "--keepalive-count": 0,
    "--idle-timeout": 0.0,
}

CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "--keepalive": _bounded_int("--keepalive", "seconds", _MAX_KEEP_S),
    "--keepalive-interval": _bounded_int("--keepalive-interval", "seconds", _MAX_KEEP_S),
    "--keepalive-count": _bounded_int("--keepalive-count", "probes", _MAX_KEEP_COUNT),
    "--idle-timeout": parse_seconds,
}


@dataclass(frozen=True, slots=True)
class Keepalive:
    """TCP keepalive timing of a port's connections; 0 means the system's value."""

    idle_s: int = 0
    interval_s: int = 0
    count: int = 0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Keepalive:
        get = options.get
        return cls(get("--keepalive") or 0, get("--keepalive-interval") or 0, get("--keepalive-count") or 0)

    def settings(self) -> list[tuple[str, int]]:
        """The (socket option name, value) pairs to set, beyond SO_KEEPALIVE."""
        interval, count = self.interval_s, self.count
        if self.idle_s:
            interval = interval or max(1, self.idle_s // 3)
            count = count or DEFAULT_PROBES
        out = []
        if self.idle_s:
            out.append(("TCP_KEEPIDLE", self.idle_s))
        if interval:
            out.append(("TCP_KEEPINTVL", interval))
        if count:
            out.append(("TCP_KEEPCNT", count))
        if self.idle_s:
            out.append(("TCP_USER_TIMEOUT", (self.idle_s + count * interval) * 1000))
        return out

    def apply(self, sock: Any, sndbuf: int = 0) -> None:
        """TCP_NODELAY and SO_KEEPALIVE always, the timing that was asked for, and
        SO_SNDBUF if `sndbuf`. Raises OSError."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        for name, value in self.settings():
            opt = getattr(socket, name, None)
            if opt is not None:  # not on every system
                sock.setsockopt(socket.IPPROTO_TCP, opt, value)


class IdleTimer:
    """Calls `on_idle` once a connection carried no data either way for `timeout_s`.

    `touch()` (cheap: one clock read) on every chunk in or out; `start()` when
    the connection is up, `stop()` when it ends. One timer per connection, re-armed
    only when it fires, not per chunk.
    """

    __slots__ = ("_handle", "_last", "_loop", "_on_idle", "timeout_s")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float, on_idle: Callable[[], None]):
        self._loop = loop
        self.timeout_s = timeout_s
        self._on_idle = on_idle
        self._last = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.stop()
        if self.timeout_s > 0:
            self._last = self._loop.time()
            self._handle = self._loop.call_later(self.timeout_s, self._check)

    def touch(self) -> None:
        if self._handle is not None:
            self._last = self._loop.time()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        left = self._last + self.timeout_s - self._loop.time()
        if left > 0:
            self._handle = self._loop.call_later(left, self._check)
            return
        self._handle = None
        self._on_idle()
