"""Ports and driver modules: the base classes drivers build on.

A `Driver` is one loaded driver module for one hub run. It sees every
argument of the command line (`config_arg`), keeps its sticky options, and
creates a `Port` for each port argument given while it is selected with
--use-driver. All I/O lives in the Port subclasses.

What the base Port does for every driver (spec 2.7, 2.8):

* connection counter for CONNECT requests written to the port;
* XOFF counting: the first XOFF calls pause_reading(), the last XON resume_reading();
* the bounded write queue: data is dropped (and counted) when the queue is over
  ``write_limit`` and the source is not one this port can throttle along a
  flow-control route; with a flow-control route data is never dropped;
* XOFF/XON emission when the driver's queue crosses 2/3 and 1/3 of the limit;
* paired CONNECT(TRUE)/CONNECT(FALSE) reports;
* counters the status page and metrics read (bytes, messages, drops by
  reason, connects, line-state changes, the last errors) and `snapshot()`,
  the port's state as plain data, which drivers extend with what they know;
* lost bytes (dropped although somebody was connected: a full queue, a slow
  session, a device gone) apart from unheard ones (written while the port
  had no connection at all: an idle listener slot, an unopened pty, a
  tcp-multi port without clients). Unheard data is not a loss: nobody was
  there to hear it, as with a radio; it is counted but not in "Write lost";
* the tap hook: while somebody taps the port, `taps` holds its `TapPoint`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .caps import In, Out
from .errors import UsageError
from .messages import (
    Connect,
    FlowControl,
    LineControl,
    LineData,
    LocalBaudStatus,
    LocalLcStatus,
    Message,
    ModemStatus,
    Msr,
    Pin,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    SetLineControl,
    SetPins,
)
from .options import match_option, option_names, parse_options
from .tap import Direction, TapPoint

if TYPE_CHECKING:
    from .chain import Chain

__all__ = ["DEFAULT_WRITE_LIMIT", "Driver", "Drop", "HubLink", "Port", "PortState", "lc_fields"]

log = logging.getLogger("hub.port")

#: Default --write-limit in bytes. hub4com's 256 suits 19200 baud; a Python hub
#: relaying network and pty streams needs room for a few large reads.
DEFAULT_WRITE_LIMIT = 256 * 1024

#: Even along a flow-control route, a queue never grows past this many times its limit.
HARD_LIMIT_FACTOR = 4
#: How many of a port's last errors (warnings logged about it) are kept for the status page.
ERRORS_KEPT = 5


class Drop(enum.Enum):
    """Why bytes written to a port were lost (the label in metrics and the JSON API)."""

    #: The write queue was over --write-limit and no flow-control route could pause the source.
    QUEUE_FULL = "queue_full"
    #: Nobody to write to: no connection, no application, the device closed.
    NOT_CONNECTED = "not_connected"
    #: A session of a multi-client port (or a pty's application) did not keep up.
    SLOW_CLIENT = "slow_client"
    #: Still queued (or left unread) when the connection, device or application went away.
    UNSENT = "unsent"
    #: Discarded on purpose: --write-limit=0, XON/XOFF bytes removed, a port that never writes.
    DISCARDED = "discarded"
    #: Anything else a driver counts.
    OTHER = "other"


class PortState(enum.Enum):
    """A port's state in a word, for the status page, the JSON API and health."""

    #: Data can flow: a device is open, a peer or an application is connected.
    CONNECTED = "connected"
    #: Ready and waiting: a listener or a pty waiting for a client, an idle client.
    WAITING = "waiting"
    #: Connecting (or TLS handshaking).
    CONNECTING = "connecting"
    #: The device went away or cannot be opened; it is tried again.
    ABSENT = "absent"
    #: The device went away; a reopen is due.
    REOPENING = "reopening"
    #: Not working and not retrying (a listener that cannot listen, a device not reopened).
    DOWN = "down"
    #: Closed (the hub stops).
    CLOSED = "closed"


#: The fc_sources of a port along no flow-control route (one set, not one per port).
_NO_SOURCES: frozenset[int] = frozenset()

_LINE_STATE_MESSAGES = frozenset(
    (ModemStatus, LocalBaudStatus, RemoteBaudStatus, LocalLcStatus, RemoteLcStatus)
)


class HubLink(Protocol):
    """What a port needs from the hub."""

    loop: asyncio.AbstractEventLoop

    def received(self, port: int, msgs: list[Message]) -> None:
        """Messages read from `port`: run its IN chain and route them."""
        ...

    # Optional: received_data(port, data), what received(port, [LineData(data)])
    # does without making the message where no filter needs it (Hub has it).

    def session_chain(
        self,
        port: int,
        name: str,
        to_port: Callable[[Message, int], None],
        to_hub: Callable[[list[Message]], None],
        observer: Callable[[], bool] | None = None,
    ) -> Chain | None:
        """Fresh instances of `port`'s filters for one session (None: the port has none)."""
        ...


class Port:
    """Base class of a hub port. Drivers implement the I/O hooks below."""

    #: What the driver can report and carry out (its capabilities).
    provides: In = In.NONE
    accepts: Out = Out.NONE
    #: The port serves many connections at once and gives each its own filter chain
    #: (hub.chain); the hub then runs none of the port's filters itself.
    serves_sessions: ClassVar[bool] = False
    #: The driver calls set_write_paused(True) whenever its queue goes above
    #: high_water (2/3 of the write limit). Until it has, the queue is below the
    #: limit and write_data need not ask queued_bytes() about every chunk.
    reports_high_water: ClassVar[bool] = False

    # The attributes __init__ sets (and documents) live in slots, not a dict: 1,000
    # idle listener slots are 1,000 ports, and a dict of this many keys cost 1.5 KiB
    # each (CPython's key sharing stops at 30 keys); slots are faster to read, too.
    # Subclasses without __slots__ get a __dict__ for their own attributes.
    __slots__ = (
        "_check_queue",
        "_to_hub_data",
        "_write_paused",
        "baud",
        "bytes_in",
        "bytes_out",
        "connected",
        "connection_counter",
        "connects",
        "drops",
        "errors",
        "fc_sources",
        "gate_in",
        "has_filters",
        "hub",
        "index",
        "kind",
        "lc",
        "line_changes",
        "lost",
        "lost_total",
        "modem",
        "modem_known",
        "msgs_in",
        "msgs_out",
        "name",
        "observer",
        "offered",
        "pins",
        "pins_known",
        "reopens",
        "requested_baud",
        "requested_lc",
        "required",
        "taps",
        "unheard",
        "wanted",
        "write_limit",
        "xoff_count",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # CPython (3.11) caches each attribute lookup in the bytecode for one type
        # and falls back to a slow generic lookup when the types alternate. The
        # data path runs these base methods for every port type in turn (a pty
        # read, then a TCP write), so each subclass gets its own copy of their
        # code, whose caches see one type only (a quarter of the hub's CPU per
        # message went to generic lookups).
        for name in _PER_TYPE_CODE:
            fn = getattr(cls, name)
            if name not in cls.__dict__ and isinstance(fn, types.FunctionType):
                copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__)
                copy.__qualname__, copy.__doc__ = fn.__qualname__, fn.__doc__
                setattr(cls, name, copy)

    def __init__(self, hub: HubLink, index: int, name: str, write_limit: int = DEFAULT_WRITE_LIMIT):
        self.hub = hub
        #: What the hub's negotiation asked of the port's provides and accepts.
        self.wanted = In.NONE
        self.offered = Out.NONE
        #: The peer is an observer (--read-only): its filters answer its requests
        #: without applying them (FilterContext.observer).
        self.observer = False
        #: If set, what passed the port's IN filters goes through this before it is
        #: routed (an observer port drops its peer's data and requests here, after
        #: the filters have negotiated with the peer).
        self.gate_in: Callable[[list[Message]], list[Message]] | None = None
        #: Some filter is attached to the port (set by the hub).
        self.has_filters = False
        #: Where emit_data hands data (the hub's received_data, if it has one).
        self._to_hub_data: Callable[[int, bytes], None] = getattr(hub, "received_data", None) or (
            lambda port, data: hub.received(port, [LineData(data)])
        )
        self.index = index
        #: Display name, e.g. "TCP(2)"; used in every log line about the port.
        self.name = name
        self.write_limit = write_limit
        #: Data sources this port throttles along flow-control routes (set by the hub).
        self.fc_sources = _NO_SOURCES
        self.connection_counter = 0
        self.connected = False
        self.xoff_count = 0
        self._write_paused = False
        #: write_data checks the queue against the limit for every chunk (an
        #: instance attribute: a class attribute is a slow lookup on the data path).
        self._check_queue = not self.reports_high_water
        self.bytes_in = 0
        self.bytes_out = 0
        #: Bytes dropped since the last loss report, and in total, and by reason.
        self.lost = 0
        self.lost_total = 0
        self.drops: dict[Drop, int] = {}
        #: Messages read from the port (data chunks and signals) and written to it.
        self.msgs_in = 0
        self.msgs_out = 0
        #: CONNECT(TRUE) reports (sessions, reconnects, reopens all count), and reopens.
        self.connects = 0
        self.reopens = 0
        #: Line-state reports (modem lines, baud rate, line control) read from the port.
        self.line_changes = 0
        #: What the port last reported: modem lines (bits of `modem_known`), baud, line control.
        self.modem = 0
        self.modem_known = 0
        self.baud: int | None = None
        self.lc: LineControl | None = None
        #: Pins and settings last written to the port (requests from other ports).
        self.pins = 0
        self.pins_known = 0
        self.requested_baud: int | None = None
        self.requested_lc: LineControl | None = None
        #: The last errors about the port: (wall-clock time, text). A tuple, empty
        #: (shared) on most ports: a deque costs 760 bytes each of 1,000 listener slots.
        self.errors: tuple[tuple[float, str], ...] = ()
        #: Health (--required): the port must work for /healthz to say OK.
        self.required = True
        #: The driver name the port was made by (set by the command-line compiler).
        self.kind = ""
        #: The taps while somebody watches this port (see hub.tap), else None.
        self.taps: TapPoint | None = None
        #: Bytes written while the port had no connection (not a loss; see the module doc).
        self.unheard = 0

    def __repr__(self) -> str:
        state = "connected" if self.connected else "idle"
        read = "paused" if self.xoff_count else "on"
        return f"<{type(self).__name__} {self.name} {state} read={read} queued={self.queued_bytes()}B>"

    # ---- driver hooks ---------------------------------------------------------

    def start(self) -> None:
        """Open, listen or connect as the port's kind requires. Raise PortError or
        UsageError if it cannot start at all; later failures are retried."""

    def close(self) -> None:
        """Release everything the port holds. Must not raise."""

    def send_data(self, data: bytes) -> None:
        """Write `data` out (queue it). Call `lose(n, reason)` for what cannot be written,
        `discard_unheard(n)` for what came while there is no connection."""
        self.lose(len(data), Drop.DISCARDED)

    def queued_bytes(self) -> int:
        """Bytes accepted by send_data and not yet written out."""
        return 0

    def pause_reading(self) -> None:
        """Stop reading input (hub flow control)."""

    def resume_reading(self) -> None:
        """Resume reading input."""

    def on_connect_request(self, up: bool) -> None:
        """The connection counter went 0 -> 1 (up) or 1 -> 0 (down)."""

    def write_signal(self, msg: Message) -> None:
        """A non-data message written to the port (SetPins, SetBaud, PurgeTx, ...)."""

    def status(self) -> str:
        """A short state description for status lines."""
        return "connected" if self.connected else "not connected"

    def port_state(self) -> PortState:
        """The port's state in a word (drivers that know more override this)."""
        return PortState.CONNECTED if self.connected else PortState.WAITING

    def problem(self) -> str | None:
        """Why the port does not work now (a device gone, a listener down), or None.

        What /healthz reports for a required port; drivers override it.
        """
        return None

    def snapshot(self) -> dict[str, Any]:
        """The port's state as plain JSON data (status page, JSON API, metrics).

        Reads counters only. Drivers extend it with what they know (peers,
        sessions, line settings) by updating the dict `super()` returns.
        """
        line: dict[str, Any] = {}
        if self.baud is not None:
            line["baud"] = self.baud
        if self.lc is not None:
            line.update(lc_fields(self.lc))
        requested: dict[str, Any] = {}
        if self.requested_baud is not None:
            requested["baud"] = self.requested_baud
        if self.requested_lc is not None:
            requested.update(lc_fields(self.requested_lc))
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind or type(self).__name__,
            "state": self.port_state().value,
            "status": self.status(),
            "problem": self.problem(),
            "required": self.required,
            "connected": self.connected,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "msgs_in": self.msgs_in,
            "msgs_out": self.msgs_out,
            "dropped": {d.value: n for d, n in self.drops.items()},
            "dropped_total": self.lost_total,
            "unheard": self.unheard,
            "queued": self.queued_bytes(),
            "write_limit": self.write_limit,
            "reading_paused": self.xoff_count > 0,
            "writing_paused": self._write_paused,
            "connects": self.connects,
            "reopens": self.reopens,
            "line_changes": self.line_changes,
            "line": line or None,
            "requested": requested or None,
            "modem": {b.name: bool(self.modem & b) for b in _MODEM_LINES if self.modem_known & b} or None,
            "pins": {p.name: bool(self.pins & p) for p in _PINS if self.pins_known & p} or None,
            "peers": [],
            "sessions": None,
            "errors": [{"time": t, "text": text} for t, text in self.errors],
        }

    def note_error(self, text: str) -> None:
        """Keep `text` among the port's last errors (the status page shows them)."""
        self.errors = (*self.errors[1 - ERRORS_KEPT :], (time.time(), text))

    # ---- called by the hub ---------------------------------------------------

    def write(self, msg: Message, src: int) -> None:
        """Dispatch one message written to this port from port `src`."""
        t = type(msg)
        if t is LineData:
            self.write_data(msg.data, src)  # type: ignore[union-attr]
        elif t is Connect:
            self._count_connect(msg.on)  # type: ignore[union-attr]
        elif t is FlowControl:
            self._count_xoff(msg.xoff)  # type: ignore[union-attr]
        else:
            if t is SetPins:
                self.pins = (self.pins & ~msg.mask) | (msg.value & msg.mask)  # type: ignore[union-attr]
                self.pins_known |= msg.mask  # type: ignore[union-attr]
            elif t is SetBaud:
                self.requested_baud = msg.baud  # type: ignore[union-attr]
            elif t is SetLineControl:
                lc = msg.lc  # type: ignore[union-attr]
                self.requested_lc = lc if self.requested_lc is None else self.requested_lc.merged(lc)
            self.write_signal(msg)

    def deliver(self, msg: Message, src: int) -> None:
        """A message out of the port's filters, from port `src` (its chain's writer):
        counted, shown to the port's taps, written."""
        if type(msg) is LineData:
            self.deliver_data(msg.data, src)  # type: ignore[union-attr]
            return
        self.msgs_out += 1
        if self.taps is not None:
            self.taps.messages(Direction.OUT, [msg], None, src)
        self.write(msg, src)

    def deliver_data(self, data: bytes, src: int) -> None:
        """Data routed here from port `src` with no filter on its way (the hub's fast
        path): counted as a message, shown to the port's taps, written."""
        self.msgs_out += 1
        if self.taps is not None:
            self.taps.data(Direction.OUT, data, None, src)
        self.write_data(data, src)

    def write_data(self, data: bytes, src: int) -> None:
        if not data:
            return
        limit = self.write_limit
        if limit == 0:
            self.lose(len(data), Drop.DISCARDED)
            return
        if self._write_paused or self._check_queue:
            queued = self.queued_bytes()
            # A source this port can throttle is trusted to stop soon after XOFF; the
            # hard cap bounds memory where the XOFF cannot reach the real source.
            if queued > limit and (src not in self.fc_sources or queued > HARD_LIMIT_FACTOR * limit):
                self.lose(len(data), Drop.QUEUE_FULL)
                return
        lost, unheard = self.lost_total, self.unheard
        self.send_data(data)
        self.bytes_out += len(data) - (self.lost_total - lost) - (self.unheard - unheard)

    def _count_connect(self, on: bool) -> None:
        if on:
            self.connection_counter += 1
            if self.connection_counter == 1:
                self.on_connect_request(True)
        elif self.connection_counter > 0:
            self.connection_counter -= 1
            if self.connection_counter == 0:
                self.on_connect_request(False)

    def _count_xoff(self, xoff: bool) -> None:
        if xoff:
            self.xoff_count += 1
            if self.xoff_count == 1:
                self.pause_reading()
        elif self.xoff_count > 0:
            self.xoff_count -= 1
            if self.xoff_count == 0:
                self.resume_reading()

    # ---- helpers for drivers --------------------------------------------------

    def emit(self, msgs: list[Message], session: int | None = None) -> None:
        """Hand messages read from this port to the hub (`session`: the session they came
        from). A driver that emits data this way counts `bytes_in` itself."""
        self.msgs_in += len(msgs)
        for m in msgs:
            if type(m) in _LINE_STATE_MESSAGES:
                self._note_line_state(m)
        if self.taps is not None:
            self.taps.messages(Direction.IN, msgs, session)
        self.hub.received(self.index, msgs)

    def emit_data(self, data: bytes, session: int | None = None) -> None:
        """Hand data read from this port to the hub (`session`: the session it came from)."""
        self.bytes_in += len(data)
        self.msgs_in += 1
        if self.taps is not None:
            self.taps.data(Direction.IN, data, session)
        to_hub = self._to_hub_data  # (an attribute: LOAD_METHOD would not cache it)
        to_hub(self.index, data)

    def lose(self, nbytes: int, reason: Drop = Drop.OTHER) -> None:
        """Count bytes that could not be written (reported every few seconds)."""
        if nbytes:
            self.lost += nbytes
            self.lost_total += nbytes
            self.drops[reason] = self.drops.get(reason, 0) + nbytes

    def _note_line_state(self, m: Message) -> None:
        self.line_changes += 1
        match m:
            case ModemStatus(value=value, mask=mask):
                self.modem = (self.modem & ~mask) | (value & mask)
                self.modem_known |= mask & 0xF0
            case LocalBaudStatus(baud=baud) | RemoteBaudStatus(baud=baud):
                self.baud = baud
            case LocalLcStatus(lc=lc) | RemoteLcStatus(lc=lc):
                self.lc = lc if self.lc is None else self.lc.merged(lc)

    def discard_unheard(self, nbytes: int) -> None:
        """Count bytes written while the port has no connection (shown in status, not lost)."""
        self.unheard += nbytes

    def set_connected(self, on: bool, extra: list[Message] | None = None) -> None:
        """Report the port came up or went down; CONNECT messages stay paired."""
        if on == self.connected:
            return
        self.connected = on
        if on:
            self.connects += 1
        log.info("%s %s", self.name, "connected" if on else "disconnected")
        self.emit([Connect(on), *(extra or ())])

    def set_write_paused(self, paused: bool) -> None:
        """The driver's queue crossed its high (paused) or low watermark: send XOFF/XON."""
        if paused == self._write_paused:
            return
        self._write_paused = paused
        self.emit([FlowControl(paused)])

    @property
    def high_water(self) -> int:
        return 2 * self.write_limit // 3

    @property
    def low_water(self) -> int:
        return self.write_limit // 3


#: Port methods on the data path that each subclass gets its own code of (__init_subclass__).
_PER_TYPE_CODE = ("emit_data", "deliver_data", "write_data")

_MODEM_LINES = (Msr.CTS, Msr.DSR, Msr.RI, Msr.DCD)
_PINS = (Pin.DTR, Pin.RTS, Pin.OUT1, Pin.OUT2, Pin.BREAK, Pin.CTS, Pin.DSR, Pin.RI, Pin.DCD)


def lc_fields(lc: LineControl) -> dict[str, Any]:
    """The fields of `lc` that are present, as plain data for snapshots."""
    fields: dict[str, Any] = {}
    if lc.data_bits is not None:
        fields["data_bits"] = lc.data_bits
    if lc.parity is not None:
        fields["parity"] = lc.parity.name.lower()
    if lc.stop_bits is not None:
        fields["stop_bits"] = {0: "1", 1: "1.5", 2: "2"}[int(lc.stop_bits)]
    return fields


def parse_write_limit(value: object) -> int:
    """Parse a --write-limit value (bytes, >= 0). Raises UsageError."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise UsageError(None, "Invalid --write-limit value (a number of bytes, 0 discards all writes)")
    return int(text)


class Driver:
    """One driver module for one hub run.

    Subclasses set NAME, DESCRIPTION, USAGE (the sticky options it recognises on
    the hub command line; the text ``--help=<name>`` prints) and DEFAULTS, and
    implement `create_port`.
    """

    NAME: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    USAGE: ClassVar[str] = ""
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    #: Options that configure the module as a whole rather than the ports after
    #: them (the connector's links); each occurrence counts.
    GLOBAL_OPTIONS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, hub: HubLink):
        self.hub = hub
        #: The sticky options as they stand now (option name -> converted value).
        self.options: dict[str, Any] = dict(self.DEFAULTS)
        self._names = option_names(self.USAGE)

    def config_arg(self, arg: str) -> bool:
        """Offer one command-line argument; return True if it is this module's option.

        Raises UsageError for a bad value of a recognised option.
        """
        name = match_option(arg, self._names)
        if name is None:
            return False
        for key, value in parse_options(self.USAGE, [arg], self._names).items():
            try:
                self.options[key] = self.convert_option(key, value)
            except UsageError as exc:
                raise exc.with_source(arg, None) from None
        return True

    def convert_option(self, name: str, value: Any) -> Any:
        """Validate and convert one sticky option value. Raise UsageError if bad."""
        return value

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> Port:
        """Create the port for `path` with a snapshot of the sticky options.

        Raise UsageError(path, text) for a bad address or path.
        """
        raise NotImplementedError

    def config_stop(self, ports: list[Port]) -> None:
        """All arguments seen; resolve cross-port options (connector links).

        `ports` holds every port of the hub, by index. Raise UsageError if bad.
        """

    def routes_ready(self, data_routes: dict[int, tuple[int, ...]]) -> None:
        """The final data routes (source index -> destination indexes) are known.

        The connector checks for loops here. Raise UsageError to stop start-up.
        """
