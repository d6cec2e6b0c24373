"""Taps: watch a port's traffic live without slowing or blocking the data path.

A `TapClient` is one watcher (a WebSocket, the ``hub4com-tap`` command, a
test). `Hub.add_tap(port, client)` attaches it to a port; the port then holds
a `TapPoint` in ``port.taps``, and the data path does one attribute check
(``port.taps is not None``) per chunk, so a port nobody taps pays nothing
more. While tapped, each chunk read from the port (``IN``) or written to it
(``OUT``) becomes one `TapEvent` put on every client's queue: a reference to
the same bytes object, never a copy.

A client's queue is bounded (bytes and events). `put` never blocks: an event
that does not fit is dropped and counted in `lost_events`/`lost_bytes`, so a
slow watcher loses tap lines, never hub data, and its memory stays bounded.
The consumer (on the hub's loop) takes events with `take` after its `wake`
callback said the queue is no longer empty.

`session` is the session of a multi-client port the data came from (tcp-multi
passes its session id), None for the port as a whole.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from .messages import LineData, Message

__all__ = [
    "DEFAULT_TAP_BYTES",
    "DEFAULT_TAP_EVENTS",
    "Direction",
    "TapClient",
    "TapEvent",
    "TapPoint",
]

#: Default bound of one client's queue: bytes of data held ...
DEFAULT_TAP_BYTES = 1024 * 1024
#: ... and events (signals and small chunks count here).
DEFAULT_TAP_EVENTS = 10_000


class Direction(enum.Enum):
    """Which way a tapped chunk went."""

    #: Read from the port: on its way into the hub.
    IN = "in"
    #: Written to the port by the hub.
    OUT = "out"


@dataclass(frozen=True, slots=True)
class TapEvent:
    """One chunk or signal seen on a tapped port."""

    #: Wall-clock time (time.time()) when the hub saw it.
    time_s: float
    direction: Direction
    #: Data bytes, or None for a signal.
    data: bytes | None
    #: The signal (Connect, ModemStatus, SetBaud, ...), or None for data.
    message: Message | None = None
    #: The session of a multi-client port, or None.
    session: int | None = None
    #: OUT: the port the message came from (None: the port itself, e.g. an echo).
    src: int | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 0


class TapClient:
    """One watcher's bounded queue. `put` drops (counted) what does not fit."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_TAP_BYTES,
        max_events: int = DEFAULT_TAP_EVENTS,
        wake: Callable[[], None] | None = None,
    ):
        if max_bytes < 1 or max_events < 1:
            raise ValueError("a tap queue needs room for at least one byte and one event")
        self.max_bytes = max_bytes
        self.max_events = max_events
        #: Called when the queue goes from empty to not empty.
        self.wake = wake
        #: Which events the client wants: directions, and one session or all (None).
        self.directions: frozenset[Direction] = frozenset(Direction)
        self.session: int | None = None
        self.events: collections.deque[TapEvent] = collections.deque()
        #: Data bytes held in `events`.
        self.size = 0
        self.seen_events = 0
        self.lost_events = 0
        self.lost_bytes = 0

    def __repr__(self) -> str:
        return f"<TapClient {len(self.events)} events {self.size}B lost={self.lost_events}>"

    def put(self, event: TapEvent) -> None:
        if event.direction not in self.directions or (
            self.session is not None and event.session != self.session
        ):
            return
        self.seen_events += 1
        n = event.size
        if self.size + n > self.max_bytes or len(self.events) >= self.max_events:
            self.lost_events += 1
            self.lost_bytes += n
            return
        was_empty = not self.events
        self.events.append(event)
        self.size += n
        if was_empty and self.wake is not None:
            self.wake()

    def take(self, max_events: int | None = None) -> list[TapEvent]:
        """Remove and return the queued events, oldest first (at most `max_events`)."""
        events = self.events
        if max_events is None or max_events >= len(events):
            out = list(events)
            events.clear()
            self.size = 0
            return out
        out = [events.popleft() for _ in range(max_events)]
        self.size -= sum(e.size for e in out)
        return out


class TapPoint:
    """The clients tapping one port (held in ``port.taps`` only while there are any)."""

    __slots__ = ("clients",)

    def __init__(self) -> None:
        self.clients: list[TapClient] = []

    def data(
        self, direction: Direction, data: bytes, session: int | None = None, src: int | None = None
    ) -> None:
        event = TapEvent(time.time(), direction, data, None, session, src)
        for c in self.clients:
            c.put(event)

    def messages(
        self, direction: Direction, msgs: list[Message], session: int | None = None, src: int | None = None
    ) -> None:
        now = time.time()
        for m in msgs:
            if type(m) is LineData:
                event = TapEvent(now, direction, m.data, None, session, src)  # type: ignore[union-attr]
            else:
                event = TapEvent(now, direction, None, m, session, src)
            for c in self.clients:
                c.put(event)
