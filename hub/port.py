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
* paired CONNECT(TRUE)/CONNECT(FALSE) reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .caps import In, Out
from .errors import UsageError
from .messages import Connect, FlowControl, LineData, Message
from .options import match_option, option_names, parse_options

if TYPE_CHECKING:
    from .chain import Chain

__all__ = ["DEFAULT_WRITE_LIMIT", "Driver", "HubLink", "Port"]

log = logging.getLogger("hub.port")

#: Default --write-limit in bytes. hub4com's 256 suits 19200 baud; a Python hub
#: relaying network and pty streams needs room for a few large reads.
DEFAULT_WRITE_LIMIT = 256 * 1024

#: Even along a flow-control route, a queue never grows past this many times its limit.
HARD_LIMIT_FACTOR = 4


class HubLink(Protocol):
    """What a port needs from the hub."""

    loop: asyncio.AbstractEventLoop

    def received(self, port: int, msgs: list[Message]) -> None:
        """Messages read from `port`: run its IN chain and route them."""
        ...

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

    provides: In = In.NONE
    accepts: Out = Out.NONE
    wanted: In = In.NONE
    offered: Out = Out.NONE
    #: The port serves many connections at once and gives each its own filter chain
    #: (hub.chain); the hub then runs none of the port's filters itself.
    serves_sessions: ClassVar[bool] = False
    #: The peer is an observer (--read-only): its filters answer its requests
    #: without applying them (FilterContext.observer).
    observer: bool = False
    #: If set, what passed the port's IN filters goes through this before it is
    #: routed (an observer port drops its peer's data and requests here, after
    #: the filters have negotiated with the peer).
    gate_in: Callable[[list[Message]], list[Message]] | None = None
    #: Some filter is attached to the port (set by the hub).
    has_filters: bool = False

    def __init__(self, hub: HubLink, index: int, name: str, write_limit: int = DEFAULT_WRITE_LIMIT):
        self.hub = hub
        self.index = index
        #: Display name, e.g. "TCP(2)"; used in every log line about the port.
        self.name = name
        self.write_limit = write_limit
        #: Data sources this port throttles along flow-control routes (set by the hub).
        self.fc_sources: frozenset[int] = frozenset()
        self.connection_counter = 0
        self.connected = False
        self.xoff_count = 0
        self._write_paused = False
        self.bytes_in = 0
        self.bytes_out = 0
        #: Bytes dropped since the last loss report, and in total.
        self.lost = 0
        self.lost_total = 0

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
        """Write `data` out (queue it). Call `lose(n)` for what cannot be written."""
        self.lose(len(data))

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
            self.write_signal(msg)

    def write_data(self, data: bytes, src: int) -> None:
        if not data:
            return
        limit = self.write_limit
        queued = self.queued_bytes()
        # A source this port can throttle is trusted to stop soon after XOFF; the
        # hard cap bounds memory where the XOFF cannot reach the real source.
        if limit == 0 or (
            queued > limit and (src not in self.fc_sources or queued > HARD_LIMIT_FACTOR * limit)
        ):
            self.lose(len(data))
            return
        lost = self.lost_total
        self.send_data(data)
        self.bytes_out += len(data) - (self.lost_total - lost)

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

    def emit(self, msgs: list[Message]) -> None:
        """Hand messages read from this port to the hub."""
        self.hub.received(self.index, msgs)

    def emit_data(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.hub.received(self.index, [LineData(data)])

    def lose(self, nbytes: int) -> None:
        """Count bytes that could not be written (reported every few seconds)."""
        self.lost += nbytes
        self.lost_total += nbytes

    def set_connected(self, on: bool, extra: list[Message] | None = None) -> None:
        """Report the port came up or went down; CONNECT messages stay paired."""
        if on == self.connected:
            return
        self.connected = on
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
