"""Sessions of a multi-client port: who gets the port's data, whose data enters the hub,
and what a slow session loses. Sans-IO: no sockets, no loop, no clock.

A `SessionSet` belongs to one hub port that serves any number of sessions (the
tcp-multi listener; a pty is a port with one session). The driver owns the I/O:

* it creates a `Session` per connection, with a `sink` that writes to the
  connection (``transport.write``), and calls `add` / `remove`;
  a sink may instead write only what the connection takes now and return the
  rest (a pty master's fd): the session keeps it at the head of its queue,
  counted, and waits for `resume`;
* it hands data written to the port to `send` (the fan-out), data read from a
  session to `received` (returns whether it enters the hub), and reports the
  connection's own flow control with `pause` / `resume`;
* it passes the time (`now`, seconds on any monotonic clock) and asks
  `expired(now)` now and then which sessions to close.

Output (fan-out). Every receiving session gets the same bytes object: a session
whose sink is writable and whose queue is empty gets the chunk at once;
otherwise a reference to it goes on the session's queue. Nothing is copied on
the common path; slices are made only where a line is cut off at a join or a
drop. A queue longer than `limit` is *full*: with ``SlowClient.BLOCK`` and a
lossless source it still grows (the port sends XOFF while any queue is above
two thirds of the limit, XON when all are at one third) up to the core's hard
cap (``HARD_LIMIT_FACTOR`` times the limit, for an XOFF that cannot reach the
real source); otherwise the session loses data, counted.

When a stalled session's connection can take data again, its whole queue
goes to the connection at once (`Session.sink_many`, one ``writev``), so a
session may hold up to its limit in the queue plus what it was last handed
(unless its sink returns what it did not take).

A port with one session (a pty: the application that holds it) uses the same
machinery for its queue, framing and drops; `purge` empties a queue without
counting a loss (PURGE_TX).

Line framing (``Frame.LINE``): lines end with LF (NMEA's CR LF and plain LF
alike). A session that starts receiving mid-line gets nothing until the next
line starts; so does everyone before the port's first line end, since the
port cannot know where its first chunk starts. A full session loses whole
lines: a line whose start was sent is completed (the queue may run over the
limit by up to `MAX_LINE_BYTES` for that), and a line whose start was dropped
is dropped to its end. Only a line longer than that is cut, counted in
`cut_lines`. Chunks are scanned with ``bytes.find`` / ``bytes.count``, never
byte by byte.

Per-session filters. A port whose filters run per session (hub.chain) cannot
hand every session the same bytes: each session's share of a chunk comes out
of its own filters (telnet escaping, ...). `fan_out` then says which sessions
get a chunk and notes where the port's stream stands; each session's filtered
share goes through `send_one` (the same queue, framing and drop rules), and
protocol bytes its filters make on their own (replies, notifications) through
`send_control`, which neither send-to nor line framing applies to.

Input. `recv_from` picks the sessions whose data enters the hub; the rest is
discarded and counted. `control` picks the sessions whose requests (baud rate,
data format, flow control, lines) may change the port: by default the ones
`recv_from` admits; the others are observers, answered with the port's current
values. A `read_only` port admits nobody's data or requests.

The *active* session is the one whose data entered last (before any did: the
newest session). With ``Policy.LAST_ACTIVE`` the active
session holds the floor: another session's data enters, and makes that
session the active one, only once the active one has sent nothing for
`hold_s`. `send_to` ``LAST_ACTIVE`` sends to the active session.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.errors import UsageError
from hub.port import HARD_LIMIT_FACTOR

__all__ = [
    "MAX_LINE_BYTES",
    "Chunk",
    "Control",
    "Frame",
    "IdleBuffer",
    "LineState",
    "Policy",
    "Session",
    "SessionConfig",
    "SessionSet",
    "Sink",
    "SlowClient",
    "describe_drops",
    "format_bytes",
    "parse_buffer",
    "parse_frame",
]

#: What a session's queue holds: chunks as written to the port, and the unwritten
#: rest of one a sink took only in part.
Chunk = bytes | memoryview
#: Writes to a session's client. Returns None, or the part of the chunk it
#: could not write now (then the session waits for `SessionSet.resume`).
Sink = Callable[[Chunk], Chunk | None]

#: A line may run a full queue over its limit by this much before it is cut.
MAX_LINE_BYTES = 64 * 1024

_LF = b"\n"
_LF_BYTE = 0x0A


class Policy(enum.Enum):
    """Which sessions receive the port's data (send-to) or send into the hub (recv-from)."""

    #: No session.
    NONE = "none"
    #: The oldest session.
    FIRST = "first"
    #: The newest session.
    LAST = "last"
    #: The session whose data entered the hub last (before any: the newest).
    LAST_ACTIVE = "last-active"
    #: Every session.
    ALL = "all"


class Control(enum.Enum):
    """Which sessions may change the port's settings and lines."""

    #: The sessions whose data --recv-from admits (the writers).
    WRITER = "writer"
    #: Every session (ser2net's behaviour).
    ALL = "all"
    #: No session: everyone is an observer.
    NONE = "none"


class SlowClient(enum.Enum):
    """What happens when a session's queue is full."""

    #: Lossless: the port throttles its sources (XOFF) while a queue is above high water.
    BLOCK = "block"
    #: The session loses data (whole lines with line framing); counted.
    DROP = "drop"
    #: As DROP, and the session is closed once it stayed stalled for the send timeout.
    DISCONNECT = "disconnect"


class Frame(enum.Enum):
    """The unit a session receives and loses."""

    #: Any byte boundary.
    BYTES = "bytes"
    #: Whole lines ending with LF.
    LINE = "line"


class LineState(enum.Enum):
    """Where a session's output stream stands relative to line boundaries."""

    #: At a line boundary (always, with byte framing).
    START = "start"
    #: Inside a line whose start was sent: the rest of it must follow.
    OPEN = "open"
    #: Started receiving mid-line: discard up to the next line end (not a loss).
    SYNC = "sync"
    #: Part of this line was dropped: discard (and count) up to its end.
    SKIP = "skip"


# For the data path: on Python 3.11 `Enum.MEMBER` goes through EnumType.__getattr__'s
# slow hook (~850 instructions, ten times a global); these run for every chunk.
_START, _OPEN = LineState.START, LineState.OPEN
_POLICY_NONE, _POLICY_ALL = Policy.NONE, Policy.ALL


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """The policies of one port. Times in seconds; 0 means off."""

    recv_from: Policy = Policy.ALL
    send_to: Policy = Policy.ALL
    slow: SlowClient = SlowClient.DROP
    frame: Frame = Frame.BYTES
    #: Queue bound per session in bytes.
    limit: int = 256 * 1024
    #: At most this many sessions (0: no limit).
    max_clients: int = 0
    #: At the limit, close the oldest session for a new one instead of refusing it.
    kick_oldest: bool = False
    #: Close a session that stayed stalled this long (DISCONNECT; BLOCK if above 0).
    send_timeout_s: float = 5.0
    #: Close a session with no data in either direction for this long.
    idle_timeout_s: float = 0.0
    #: LAST_ACTIVE input: how long the active session keeps the floor after its data.
    hold_s: float = 1.0
    #: Keep up to this many bytes of output while no session is connected.
    buffer: int = 0
    #: Who may change the port's settings and lines.
    control: Control = Control.WRITER
    #: Every session is an observer: its data and requests are discarded, counted.
    read_only: bool = False

    def __post_init__(self) -> None:
        if self.limit < 0 or self.max_clients < 0 or self.buffer < 0:
            raise ValueError("limit, max_clients and buffer must be 0 or more")


class Session:
    """One client of a multi-client port, with its queue and counters.

    `sink(data)` writes to the client; it may call `SessionSet.pause(session)`
    before it returns (a transport crossing its high-water mark does), or
    return the part it could not write now (see `Sink`).
    `handle` is the driver's (its transport or protocol).
    """

    __slots__ = (
        "alive",
        "bytes_in",
        "bytes_out",
        "chain",
        "connected_at",
        "discarded_in",
        "dropped_bytes",
        "dropped_lines",
        "handle",
        "id",
        "ignored_requests",
        "last_activity",
        "last_input",
        "line",
        "peer",
        "queue",
        "queued",
        "sink",
        "sink_many",
        "stalled_since",
        "writable",
    )

    def __init__(
        self,
        sid: int,
        peer: str,
        sink: Sink,
        now: float,
        handle: Any = None,
        sink_many: Callable[[list[Chunk]], Any] | None = None,
    ):
        self.id = sid
        self.peer = peer
        self.sink = sink
        #: Optional: write several chunks at once (one writev); used to drain a queue.
        self.sink_many = sink_many
        self.handle = handle
        #: The session's own filter instances (hub.chain.Chain), if its port has filters.
        self.chain: Any = None
        #: False once removed from its SessionSet.
        self.alive = True
        self.writable = True
        self.queue: collections.deque[Chunk] = collections.deque()
        #: Bytes on `queue`.
        self.queued = 0
        self.line = LineState.START
        self.connected_at = now
        #: Last time data went to or came from the client (idle timeout).
        self.last_activity = now
        #: Last time the client's data entered the hub (None: never).
        self.last_input: float | None = None
        #: Since when the queue is above high water (None: it is not).
        self.stalled_since: float | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.discarded_in = 0
        #: Requests (settings, lines) of an observer, answered and not applied.
        self.ignored_requests = 0
        self.dropped_bytes = 0
        self.dropped_lines = 0

    def __repr__(self) -> str:
        state = "writable" if self.writable else "paused"
        return f"<Session {self.id} {self.peer} {state} queued={self.queued}B line={self.line.value}>"

    def snapshot(self, now: float) -> dict[str, Any]:
        """The session as plain data for the status page (`now`: the same clock as `connected_at`)."""
        return {
            "id": self.id,
            "peer": self.peer,
            "connected_s": round(now - self.connected_at, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "ignored_in": self.discarded_in,
            "queued": self.queued,
            "writable": self.writable,
            "dropped_bytes": self.dropped_bytes,
            "dropped_lines": self.dropped_lines,
        }

    def counters(self) -> str:
        """'in 12 B, out 4.5 kB, dropped 3 lines (210 B)': for the close log line."""
        text = f"in {format_bytes(self.bytes_in)}, out {format_bytes(self.bytes_out)}"
        if self.discarded_in:
            text += f", ignored input {format_bytes(self.discarded_in)}"
        if self.ignored_requests:
            n = self.ignored_requests
            text += f", {n} request{'' if n == 1 else 's'} not applied (observer)"
        if self.dropped_bytes:
            text += f", dropped {describe_drops(self.dropped_bytes, self.dropped_lines)}"
        return text


def parse_frame(value: object) -> Frame:
    """Parse a --frame value: b[ytes] or l[ine], any case.

    The abbreviations are the mqtt driver's: a driver option reaches every
    driver, so drivers that share an option name accept the same spellings.
    Raises UsageError.
    """
    text = str(value).strip().lower()
    for frame in Frame:
        if text and frame.value.startswith(text):
            return frame
    raise UsageError(None, "Invalid --frame value (bytes or line)")


def parse_buffer(value: object) -> int:
    """Parse a --buffer value: bytes, 0 or more (0: off). Raises UsageError."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise UsageError(None, "Invalid --buffer value (bytes, 0 or more)")
    return int(text)


def describe_drops(nbytes: int, lines: int) -> str:
    """'3 lines (210 B)' or '210 B'."""
    if lines:
        return f"{lines} line{'' if lines == 1 else 's'} ({format_bytes(nbytes)})"
    return format_bytes(nbytes)


def format_bytes(n: int) -> str:
    """A byte count for people: '512 B', '45.2 kB', '1.3 MB' (powers of 1000)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 999.95:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


def _lines_in(data: bytes, ends_line: bool) -> int:
    """Lines `data` touches when it starts at a line boundary."""
    return data.count(_LF) + (0 if ends_line else 1) if data else 0


class _Backlog:
    """Output kept while no session is connected, for the first one (--buffer).

    Keeps the oldest data: once the next chunk does not fit, it is frozen and
    later data is not kept. With line framing it holds whole lines only (a
    partial first line is skipped; a partial last line is removed when the
    backlog freezes); while not frozen it may end inside a line that live
    data continues.
    """

    __slots__ = ("chunks", "frozen", "limit", "line", "open_len", "size")

    def __init__(self, limit: int, line: LineState):
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.frozen = False
        self.line = line
        #: Bytes of the trailing partial line (line framing).
        self.open_len = 0

    def put(self, data: bytes, framed: bool) -> int:
        """Keep what fits of `data`; return how many bytes were not kept."""
        n = len(data)
        if self.frozen:
            return n
        skipped = 0
        if framed and self.line is LineState.SYNC:
            nl = data.find(_LF)
            if nl < 0:
                return n
            skipped = nl + 1
            data = data[nl + 1 :]
            self.line = LineState.START
            if not data:
                return skipped
        room = self.limit - self.size
        if len(data) <= room:
            self._append(data, framed)
            return skipped
        self.frozen = True
        if not framed:
            self._append(data[:room], framed)
            return skipped + len(data) - room
        cut = data.rfind(_LF, 0, room) + 1
        if cut == 0 and self.line is LineState.OPEN:
            skipped += self._trim_open()  # kept before, not kept now: counted here
        if cut:
            self._append(data[:cut], framed)
        return skipped + len(data) - cut

    def _append(self, data: bytes, framed: bool) -> None:
        if not data:
            return
        self.chunks.append(data)
        self.size += len(data)
        if not framed:
            return
        if data[-1] == _LF_BYTE:
            self.line = LineState.START
            self.open_len = 0
        else:
            nl = data.rfind(_LF)
            self.open_len = len(data) - nl - 1 if nl >= 0 else self.open_len + len(data)
            self.line = LineState.OPEN

    def _trim_open(self) -> int:
        """Remove the trailing partial line; return its length."""
        trimmed = left = self.open_len
        while left and self.chunks:
            last = self.chunks.pop()
            if len(last) > left:
                self.chunks.append(last[: len(last) - left])
                self.size -= left
                left = 0
            else:
                self.size -= len(last)
                left -= len(last)
        self.open_len = 0
        self.line = LineState.START
        return trimmed


class IdleBuffer:
    """--buffer and --frame for a port with one connection at a time (a tcp port).

    The same rules as a `SessionSet`'s buffer, for a driver that writes to its
    one connection itself: between connections `nobody` keeps output (whole
    lines with line framing) and returns what it did not keep (unheard);
    `begin` hands a new connection what was kept; `live` passes the
    connection's share of later output, which with line framing starts at a
    line start (a connection that begins mid-line gets nothing up to the next
    line end; `live` returns how much it skipped); `end` when the connection
    is gone.
    """

    __slots__ = ("_backlog", "_sync", "at_line_start", "framed", "idle", "limit")

    def __init__(self, limit: int, framed: bool):
        self.limit = limit
        self.framed = framed
        #: Where the port's output stands (unknown at first: see the module docstring).
        self.at_line_start = not framed
        #: No connection takes the output now.
        self.idle = True
        self._sync = False
        self._backlog: _Backlog | None = None
        self.end()

    def __repr__(self) -> str:
        kept = self._backlog.size if self._backlog is not None else 0
        return f"<IdleBuffer {'idle' if self.idle else 'connected'} kept={kept}B limit={self.limit}B>"

    @property
    def kept(self) -> int:
        """Bytes kept for the next connection."""
        return self._backlog.size if self._backlog is not None else 0

    def end(self) -> None:
        """The connection is gone (or never came): keep output for the next one."""
        self.idle = True
        self._sync = False
        start = LineState.START if (self.at_line_start or not self.framed) else LineState.SYNC
        self._backlog = _Backlog(self.limit, start) if self.limit else None

    def nobody(self, data: bytes) -> int:
        """Output while no connection wants it: keep what fits; return the bytes not kept."""
        if not self.idle:
            self.end()
        if not data:
            return 0
        lost = self._backlog.put(data, self.framed) if self._backlog is not None else len(data)
        self.at_line_start = data[-1] == _LF_BYTE or not self.framed
        return lost

    def begin(self) -> list[bytes]:
        """A connection takes the output from now on: the chunks to send it first."""
        if not self.idle:
            return []
        self.idle = False
        backlog, self._backlog = self._backlog, None
        if backlog is not None and backlog.chunks and not backlog.frozen:
            self._sync = False  # the kept data runs on into the live data
        else:
            self._sync = self.framed and not self.at_line_start
        return backlog.chunks if backlog is not None else []

    def live(self, data: bytes) -> tuple[bytes, int]:
        """The connection's share of `data` and the bytes skipped to reach a line start."""
        if not data:
            return data, 0
        self.at_line_start = data[-1] == _LF_BYTE or not self.framed
        if not self._sync:
            return data, 0
        nl = data.find(_LF)
        if nl < 0:
            return b"", len(data)
        self._sync = False
        return data[nl + 1 :], nl + 1


class SessionSet:
    """The sessions of one port and its policies (see the module docstring)."""

    def __init__(self, config: SessionConfig):
        self.config = config
        self.framed = config.frame is Frame.LINE
        self.limit = config.limit
        #: The bound of a queue fed by a lossless source.
        self.hard_limit = HARD_LIMIT_FACTOR * config.limit
        self.high = 2 * config.limit // 3
        self.low = config.limit // 3
        #: Sessions in connect order.
        self.sessions: list[Session] = []
        #: Sessions that get the port's data now (send-to).
        self.receivers: list[Session] = []
        #: Sessions that stopped receiving inside a line: they get the rest of it.
        self._finishing: list[Session] = []
        self.active: Session | None = None
        #: The port's output stream ends at a line boundary (a joiner starts at once).
        #: Where the stream's first line starts is unknown: a device may have been
        #: sending for a while, so with line framing it starts at the first line end.
        self.at_line_start = not self.framed
        start = LineState.SYNC if self.framed else LineState.START
        self._backlog = _Backlog(config.buffer, start) if config.buffer else None
        self._stalled = 0
        # totals
        self.accepted = 0
        self.refused = 0
        self.kicked = 0
        self.closed = 0
        self.bytes_in = 0
        self.discarded_in = 0
        self.dropped_bytes = 0
        self.dropped_lines = 0
        self.cut_lines = 0
        #: Output written while no session was connected and not kept by the buffer.
        self.unheard = 0

    def __repr__(self) -> str:
        return (
            f"<SessionSet sessions={len(self.sessions)} receivers={len(self.receivers)} "
            f"stalled={self._stalled} dropped={self.dropped_bytes}B>"
        )

    def __len__(self) -> int:
        return len(self.sessions)

    # ---- membership -----------------------------------------------------------

    def admit(self) -> tuple[bool, Session | None]:
        """May a new session join? Returns (admitted, session to close first).

        With max_clients reached: (True, the oldest) with kick_oldest, else
        (False, None), counted as refused.
        """
        cfg = self.config
        if not cfg.max_clients or len(self.sessions) < cfg.max_clients:
            return True, None
        if cfg.kick_oldest and self.sessions:
            self.kicked += 1
            return True, self.sessions[0]
        self.refused += 1
        return False, None

    def add(
        self, session: Session, now: float, backlog_to: Callable[[list[bytes]], None] | None = None
    ) -> None:
        """A session joined. The first one gets what the buffer kept.

        With `backlog_to` (the session has filters of its own) the buffer's
        chunks are handed to it instead of being queued, to go through the
        session's filters and `send_one`; the session's line state is set for
        the live data that follows them.
        """
        self.accepted += 1
        session.last_activity = now
        first = not self.sessions
        self.sessions.append(session)
        if self.active is None or self.active.last_input is None:
            self.active = session
        backlog, self._backlog = self._backlog, None
        if self.config.send_to is Policy.ALL:
            session.line = self._start_state()
            self.receivers.append(session)
        else:
            self._update_receivers()
        if not (first and backlog is not None and backlog.chunks):
            return
        if session not in self.receivers:
            self.unheard += backlog.size
            return
        if backlog_to is not None:
            backlog_to(backlog.chunks)
            if not backlog.frozen:
                session.line = backlog.line
            return
        for chunk in backlog.chunks:
            self._put(session, chunk, len(chunk), now)
        if self.framed and not backlog.frozen:
            session.line = backlog.line  # the backlog runs on into live data

    def remove(self, session: Session, now: float) -> int:
        """A session left or is being closed. Returns the bytes still queued for it (lost)."""
        if session not in self.sessions:
            return 0
        self.sessions.remove(session)
        session.alive = False
        self.closed += 1
        if session in self._finishing:
            self._finishing.remove(session)
        if session.stalled_since is not None:
            session.stalled_since = None
            self._stalled -= 1
        lost = session.queued
        if lost:
            session.dropped_bytes += lost
            self.dropped_bytes += lost
        session.queue.clear()
        session.queued = 0
        session.writable = False
        if self.active is session:
            talkers = [s for s in self.sessions if s.last_input is not None]
            if talkers:
                self.active = max(talkers, key=lambda s: s.last_input or 0.0)
            else:
                self.active = self.sessions[-1] if self.sessions else None
        if self.config.send_to is Policy.ALL:
            self.receivers.remove(session)
        else:
            self._update_receivers()
        if not self.sessions and self.config.buffer:
            self._backlog = _Backlog(self.config.buffer, self._start_state())
        return lost

    def _start_state(self) -> LineState:
        """Where a session that starts receiving now begins."""
        return LineState.START if (self.at_line_start or not self.framed) else LineState.SYNC

    def _update_receivers(self) -> None:
        """Recompute who receives (send-to) after a change of sessions or of the active one."""
        policy = self.config.send_to
        sessions = self.sessions
        if policy is Policy.ALL:
            new = list(sessions)
        elif not sessions or policy is Policy.NONE:
            new = []
        elif policy is Policy.FIRST:
            new = [sessions[0]]
        elif policy is Policy.LAST:
            new = [sessions[-1]]
        else:
            new = [self.active] if self.active is not None else []
        old = self.receivers
        if new == old:
            return
        start = self._start_state()
        old_set, new_set = set(old), set(new)  # connection storms: stay O(n)
        for s in new:
            if s in old_set:
                continue
            if s in self._finishing:
                self._finishing.remove(s)  # it missed nothing: carry on with its line
            else:
                s.line = start
        if self.framed:
            present = set(sessions)
            for s in old:
                if s not in new_set and s.line is LineState.OPEN and s in present:
                    self._finishing.append(s)
        self.receivers = new

    # ---- input ------------------------------------------------------------------

    def received(self, session: Session, nbytes: int, now: float) -> bool:
        """`nbytes` of data came from `session`: does it enter the hub (recv-from)?"""
        session.bytes_in += nbytes
        session.last_activity = now
        if not self._admits(session, now):
            session.discarded_in += nbytes
            self.discarded_in += nbytes
            return False
        self._took_floor(session, now)
        self.bytes_in += nbytes
        return True

    def may_control(self, session: Session, now: float) -> bool:
        """May `session`'s requests (settings, lines) change the port now? No side effects."""
        cfg = self.config
        if cfg.read_only or cfg.control is Control.NONE:
            return False
        return cfg.control is Control.ALL or self._admits(session, now)

    def control(self, session: Session, now: float) -> bool:
        """A request from `session`: may it change the port? If so it counts as the
        session's input (the active session); if not, it is counted as ignored."""
        if not self.may_control(session, now):
            session.ignored_requests += 1
            return False
        session.last_activity = now
        if self._admits(session, now):
            self._took_floor(session, now)
        return True

    def _admits(self, session: Session, now: float) -> bool:
        """Would input from `session` enter the hub now (recv-from)?"""
        cfg = self.config
        policy = cfg.recv_from
        if cfg.read_only or policy is _POLICY_NONE:
            return False
        if policy is _POLICY_ALL:
            return True
        if policy is Policy.FIRST:
            return bool(self.sessions) and self.sessions[0] is session
        if policy is Policy.LAST:
            return bool(self.sessions) and self.sessions[-1] is session
        a = self.active
        return a is None or a is session or a.last_input is None or now - a.last_input >= cfg.hold_s

    def _took_floor(self, session: Session, now: float) -> None:
        """`session`'s input entered the hub: it is the active session now."""
        session.last_input = now
        if self.active is not session and session.alive:
            self.active = session
            if self.config.send_to is Policy.LAST_ACTIVE:
                self._update_receivers()

    # ---- output -----------------------------------------------------------------

    @property
    def blocking(self) -> bool:
        """BLOCK mode and some queue is above high water: the port's sources should pause."""
        return self._stalled > 0 and self.config.slow is SlowClient.BLOCK

    @property
    def stalled(self) -> int:
        """Sessions whose queue is above high water."""
        return self._stalled

    def max_queued(self) -> int:
        """The longest queue in bytes (0 without sessions)."""
        return max((s.queued for s in self.sessions), default=0)

    def send(self, data: bytes, now: float, lossless: bool = False) -> int:
        """Fan `data` out to the receiving sessions.

        `lossless`: the source can be throttled (BLOCK mode along a flow-control
        route), so full queues grow instead of losing data, up to `hard_limit`.
        Returns the bytes dropped for slow sessions (all sessions together) by
        this call.
        """
        n = len(data)
        if not n:
            return 0
        framed = self.framed
        ends_line = data[-1] == _LF_BYTE
        if not self.sessions:
            self._nobody(data, ends_line)
            return 0
        dropped_before = self.dropped_bytes
        if self._finishing:
            self._finish_lines(data, now)
        limit = self.hard_limit if lossless else self.limit
        start, opened = _START, _OPEN
        after = start if (ends_line or not framed) else opened
        put = self._put
        for s in self.receivers:
            line = s.line
            if (line is start or line is opened) and s.queued <= limit:
                put(s, data, n, now)
                s.line = after
            else:
                self._send_slow(s, data, now, limit, ends_line)
        self.at_line_start = ends_line or not framed
        return self.dropped_bytes - dropped_before

    def _nobody(self, data: bytes, ends_line: bool) -> None:
        """Output while no session is connected: the buffer keeps what it can."""
        framed = self.framed
        if self._backlog is not None:
            self.unheard += self._backlog.put(data, framed)
        else:
            self.unheard += len(data)
        self.at_line_start = ends_line or not framed

    def fan_out(self, data: bytes) -> list[Session]:
        """The sessions that get a share of `data` through their own filters and
        `send_one` (receivers, and sessions finishing a line). Notes where the
        port's stream now stands; with no session the buffer gets `data`."""
        if not data:
            return []
        ends_line = data[-1] == _LF_BYTE
        if not self.sessions:
            self._nobody(data, ends_line)
            return []
        targets = [*self._finishing, *self.receivers]
        self.at_line_start = ends_line or not self.framed
        return targets

    def send_one(self, s: Session, data: bytes, now: float, lossless: bool = False) -> int:
        """`s`'s share of a chunk of the port's data, out of its own filters: queued,
        framed and dropped as `send` does. Returns the bytes dropped."""
        if not data or not s.alive:
            return 0
        before = self.dropped_bytes
        ends_line = data[-1] == _LF_BYTE
        if self._finishing and s in self._finishing:
            self._complete_line(s, data, now)
            if s.line is not LineState.OPEN:
                self._finishing.remove(s)
            return self.dropped_bytes - before
        limit = self.hard_limit if lossless else self.limit
        line = s.line
        if (line is LineState.START or line is LineState.OPEN) and s.queued <= limit:
            self._put(s, data, len(data), now)
            s.line = LineState.START if (ends_line or not self.framed) else LineState.OPEN
        else:
            self._send_slow(s, data, now, limit, ends_line)
        return self.dropped_bytes - before

    def send_control(self, s: Session, data: bytes, now: float) -> int:
        """Protocol bytes `s`'s filters made on their own (replies, notifications):
        not part of the port's stream, so neither send-to nor line framing applies.
        Bounded by the hard limit; returns the bytes dropped."""
        n = len(data)
        if not n or not s.alive:
            return 0
        if s.queued > self.hard_limit:
            self._drop(s, n, 0)
            return n
        self._put(s, data, n, now)
        return 0

    def _put(self, s: Session, data: bytes, n: int, now: float) -> None:
        s.bytes_out += n
        s.last_activity = now
        queued: Chunk = data
        if s.writable and not s.queue:
            rest = s.sink(data)
            if not rest:
                return
            s.writable = False
            queued, n = rest, len(rest)
        s.queue.append(queued)
        s.queued += n
        if s.stalled_since is None and s.queued > self.high:
            s.stalled_since = now
            self._stalled += 1

    def _drop(self, s: Session, n: int, lines: int) -> None:
        s.dropped_bytes += n
        s.dropped_lines += lines
        self.dropped_bytes += n
        self.dropped_lines += lines

    def _send_slow(self, s: Session, data: bytes, now: float, limit: int, ends_line: bool) -> None:
        """A session that is full, joining mid-line, or skipping a dropped line."""
        if not self.framed:
            self._drop(s, len(data), 0)
            return
        line = s.line
        if line is LineState.SYNC or line is LineState.SKIP:
            nl = data.find(_LF)
            if nl < 0:
                if line is LineState.SKIP:
                    self._drop(s, len(data), 0)
                return
            if line is LineState.SKIP:
                self._drop(s, nl + 1, 0)
            s.line = LineState.START
            data = data[nl + 1 :]
            if not data:
                return
            if s.queued <= limit:
                self._put(s, data, len(data), now)
                s.line = LineState.START if ends_line else LineState.OPEN
                return
        elif s.line is LineState.OPEN:
            data = self._complete_line(s, data, now)
            if not data:
                return
        # at a line boundary and full: lose these lines
        self._drop(s, len(data), _lines_in(data, ends_line))
        s.line = LineState.START if ends_line else LineState.SKIP

    def _complete_line(self, s: Session, data: bytes, now: float) -> bytes:
        """Send the rest of `s`'s open line from `data`; return what follows it.

        A line that runs `MAX_LINE_BYTES` over the limit is cut (counted).
        """
        nl = data.find(_LF)
        if nl < 0:
            if s.queued <= self.limit + MAX_LINE_BYTES:
                self._put(s, data, len(data), now)
                return b""
            self.cut_lines += 1
            self._drop(s, len(data), 1)
            s.line = LineState.SKIP
            return b""
        head = data if nl + 1 == len(data) else data[: nl + 1]
        self._put(s, head, len(head), now)
        s.line = LineState.START
        return data[nl + 1 :]

    def _finish_lines(self, data: bytes, now: float) -> None:
        """Sessions that stopped receiving mid-line get the rest of that line."""
        for s in list(self._finishing):
            self._complete_line(s, data, now)
            if s.line is not LineState.OPEN:
                self._finishing.remove(s)

    # ---- the sessions' own flow control ---------------------------------------------

    def pause(self, session: Session) -> None:
        """The session's connection cannot take more now (its transport is full)."""
        session.writable = False

    def resume(self, session: Session) -> None:
        """The session's connection can take data again: write out its queue."""
        session.writable = True
        q = session.queue
        if len(q) > 1 and session.sink_many is not None:
            # One system call for the whole backlog instead of one per chunk.
            chunks = list(q)
            q.clear()
            session.queued = 0
            session.sink_many(chunks)
        while q and session.writable:
            chunk = q.popleft()
            session.queued -= len(chunk)
            rest = session.sink(chunk)
            if rest:
                q.appendleft(rest)
                session.queued += len(rest)
                session.writable = False
        if session.stalled_since is not None and session.queued <= self.low:
            session.stalled_since = None
            self._stalled -= 1

    def purge(self, session: Session) -> int:
        """Empty `session`'s queue without counting a loss (PURGE_TX).

        Returns the bytes removed. With line framing, a line whose start went
        out and whose rest was queued is not continued: the session picks up
        at the next line start.
        """
        n = session.queued
        if not n:
            return 0
        session.queue.clear()
        session.queued = 0
        if session.stalled_since is not None:
            session.stalled_since = None
            self._stalled -= 1
        if self.framed and session.line is LineState.OPEN:
            session.line = LineState.SYNC
            if session in self._finishing:
                self._finishing.remove(session)
        return n

    # ---- timeouts ---------------------------------------------------------------------

    def expired(self, now: float) -> list[tuple[Session, str]]:
        """Sessions to close now, each with the reason ('idle timeout', 'send timeout')."""
        cfg = self.config
        idle = cfg.idle_timeout_s
        send = cfg.send_timeout_s
        if cfg.slow is SlowClient.DROP:
            send = 0.0
        out: list[tuple[Session, str]] = []
        for s in self.sessions:
            if send > 0 and s.stalled_since is not None and now - s.stalled_since >= send:
                out.append((s, "send timeout"))
            elif idle > 0 and now - s.last_activity >= idle:
                out.append((s, "idle timeout"))
        return out

    def next_check_s(self) -> float | None:
        """How often `expired` should run (None: never needed)."""
        cfg = self.config
        times = [cfg.idle_timeout_s]
        if cfg.slow is not SlowClient.DROP:
            times.append(cfg.send_timeout_s)
        times = [t for t in times if t > 0]
        if not times:
            return None
        return min(1.0, max(0.02, min(times) / 4))
