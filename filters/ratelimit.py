"""Rate limiting filter: pace the data written to a port to what its line allows.

Usage: ratelimit [options]

Attach it to the port whose output is paced (OUT method; the IN method only
watches the port's own XOFF/XON), typically a pty or TCP port standing in for a
serial line, as com0com's baud rate emulation does.
Data written to the port goes out no faster than the line speed: one start
bit, the data bits, a parity bit unless parity is none, and the stop bits per
byte, at the current baud rate (9600 8N1 gives 960 bytes per second). The
pace follows the baud rate and line control set on the port (SET_BR, SET_LC,
for example from linectl) as they pass on their way to the port: list
ratelimit before linectl in --add-filters, so it sees what linectl sets. The
baud rate and line control the sources report about themselves do not change
the pace. With --bytes-per-second the pace is fixed.

Data is sent in slices of about 10 ms worth (at least one byte) and never
dropped: what cannot go out yet waits in a queue. Other messages keep their
place behind queued data, so a setting or disconnection takes effect after
the data before it; XOFF/XON for the port and purge requests act at once (a
purge also empties the queue).

The queue takes part in flow control. When it holds more than the queue
limit, the filter sends XOFF towards the sources along this port's flow-control
routes, and XON when it has drained to a third of the limit. Pacing is only
lossless where such a route exists: the default routes give one between ports
0 and 1 (see --fc-route). Without one, sources are not slowed down and the
queue keeps growing; a warning says so once. While the port itself reports
XOFF (its write queue is full, or a telnet peer asked to suspend), nothing is
released until its XON, so no paced data is lost at the port.

Options:
  --baud=<n>              Baud rate until the port's baud rate is set. Default 9600.
  --data=<n>              Data bits (5 to 8) until the line control is set. Default 8.
  --parity=<p>            Parity until the line control is set: n[o], o[dd], e[ven],
                          m[ark] or s[pace]; the first letter decides. Default no.
  --stop=<s>              Stop bits until the line control is set: 1, 1.5 or 2.
                          Default 1.
  --bytes-per-second=<n>  A fixed pace instead of the line speed; it cannot be
                          combined with the four options above.
  --queue-limit=<n>       Queue limit in bytes for flow control. Default: one second
                          of data at the current pace, but at least 256 bytes.

Example (one command line): a GPS at 115200 baud shared with a pty application
that gets its data at the 4800 baud it expects.
  hub4com --baud=115200 /dev/ttyUSB0 --create-filter=ratelimit:"--baud=4800"
    /dev/null --add-filters=1:ratelimit --use-driver=pty /tmp/gps0
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, ClassVar

from hub.errors import UsageError
from hub.filter import Filter, FilterContext, Timer
from hub.messages import (
    FlowControl,
    LineControl,
    LineData,
    Message,
    Parity,
    PurgeTx,
    SetBaud,
    SetLineControl,
    StopBits,
)

__all__ = ["RateLimitConfig", "RateLimitFilter", "bits_per_char"]

#: Data worth this many seconds goes out at once (the burst of the token bucket).
SLICE_S = 0.010
#: Default queue limit: this many seconds of data, but at least MIN_QUEUE_LIMIT bytes.
QUEUE_LIMIT_S = 1.0
MIN_QUEUE_LIMIT = 256
#: Warn (once) when the queue grows this far past its limit while the sources
#: should be paused: more than a few reads in flight (a read is up to 256 KiB).
GROWTH_WARNING_BYTES = 1024 * 1024

_STOP_BITS = {StopBits.ONE: 1.0, StopBits.ONE_POINT_FIVE: 1.5, StopBits.TWO: 2.0}
_PARITY_LETTERS = {"n": Parity.NONE, "o": Parity.ODD, "e": Parity.EVEN, "m": Parity.MARK, "s": Parity.SPACE}
_STOP_TEXT = {
    "1": StopBits.ONE,
    "1.5": StopBits.ONE_POINT_FIVE,
    "1,5": StopBits.ONE_POINT_FIVE,
    "2": StopBits.TWO,
}
_DATA_BITS = range(5, 9)
_LINE_OPTIONS = ("--baud", "--data", "--parity", "--stop")
_XOFF, _XON = FlowControl(True), FlowControl(False)
_8N1 = LineControl(8, Parity.NONE, StopBits.ONE)


def bits_per_char(lc: LineControl) -> float:
    """Bits on the line per byte: start bit, data bits, parity bit, stop bits.

    Absent fields count as 8 data bits, no parity and one stop bit.
    """
    data = 8 if lc.data_bits is None else lc.data_bits
    parity = 0 if lc.parity in (None, Parity.NONE) else 1
    stop = 1.0 if lc.stop_bits is None else _STOP_BITS[lc.stop_bits]
    return 1 + data + parity + stop


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    baud: int = 9600
    lc: LineControl = _8N1
    #: A fixed pace, or None to follow the line settings.
    bytes_per_second: float | None = None
    #: Flow-control limit in bytes, or None for one second of data.
    queue_limit: int | None = None


def _positive(option: str, value: Any, kind: type[int] | type[float], expected: str) -> Any:
    try:
        number = kind(str(value))
    except ValueError:
        number = 0
    if not number > 0 or number == float("inf"):
        raise UsageError(f"{option}={value}", f"Invalid value (expected {expected})")
    return number


class RateLimitFilter(Filter):
    NAME: ClassVar[str] = "ratelimit"
    DESCRIPTION: ClassVar[str] = "Rate limiting filter (paces data to the line speed)"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> RateLimitConfig:
        """Parse the options. Raises UsageError naming a bad or conflicting option."""
        bps = options.get("--bytes-per-second")
        if bps is not None:
            for name in _LINE_OPTIONS:
                if name in options:
                    raise UsageError(
                        f"{name}={options[name]}",
                        "Conflicting options (--bytes-per-second replaces --baud, --data, --parity, --stop)",
                    )
            bps = _positive("--bytes-per-second", bps, float, "a number above 0")
        baud = 9600
        if "--baud" in options:
            baud = _positive("--baud", options["--baud"], int, "a baud rate above 0")
        data = 8
        if "--data" in options:
            value = str(options["--data"])
            if not (value.isdigit() and int(value) in _DATA_BITS):
                raise UsageError(f"--data={value}", "Invalid value (expected 5, 6, 7 or 8)")
            data = int(value)
        parity = Parity.NONE
        if "--parity" in options:
            value = str(options["--parity"])
            found = _PARITY_LETTERS.get(value[:1].lower())
            if found is None:
                raise UsageError(
                    f"--parity={value}", "Invalid value (expected n[o], o[dd], e[ven], m[ark] or s[pace])"
                )
            parity = found
        stop = StopBits.ONE
        if "--stop" in options:
            value = str(options["--stop"])
            if value not in _STOP_TEXT:
                raise UsageError(f"--stop={value}", "Invalid value (expected 1, 1.5 or 2)")
            stop = _STOP_TEXT[value]
        limit = None
        if "--queue-limit" in options:
            limit = _positive("--queue-limit", options["--queue-limit"], int, "a number of bytes above 0")
        return RateLimitConfig(baud, LineControl(data, parity, stop), bps, limit)

    def __init__(self, ctx: FilterContext, config: RateLimitConfig) -> None:
        super().__init__(ctx, config)
        self._fixed = config.bytes_per_second
        self._fixed_limit = config.queue_limit
        #: The port's line settings as far as this filter has seen them.
        self.baud = config.baud
        self.lc = config.lc
        #: Queued data chunks (bytes) and the messages behind them, in order.
        self._queue: collections.deque[bytes | Message] = collections.deque()
        #: Bytes of the head chunk already sent.
        self._head_sent = 0
        #: Bytes waiting in the queue.
        self.queued = 0
        #: Pending while the line is busy with what was sent last.
        self._timer: Timer | None = None
        #: Hub time at which the line has sent everything released so far. Each
        #: release is scheduled from it, not from when the timer fired: a timer
        #: that fires early (uvloop rounds delays to whole milliseconds) then
        #: makes the next wait longer instead of speeding the pace up.
        self._line_free_at = 0.0
        #: True after we sent XOFF and before XON.
        self.paused = False
        #: XOFFs minus XONs the port reported: nothing is released while above 0.
        self.held = 0
        self._warned = False
        self.rate = 0.0
        self.limit = 0
        self._slice = 1
        self._set_pace()

    def __repr__(self) -> str:
        return (
            f"<RateLimitFilter {self.ctx.name} on {self.ctx.port_name} {self.rate:g}B/s"
            f" queued={self.queued}B{' paused' if self.paused else ''}>"
        )

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        out.append(msg)
        if type(msg) is FlowControl:
            assert isinstance(msg, FlowControl)
            if msg.xoff:
                self.held += 1
            elif self.held:
                self.held -= 1
                if not self.held and self._queue and self._timer is None:
                    self._busy(0.0)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        t = type(msg)
        if t is LineData:
            assert isinstance(msg, LineData)
            self._write(msg, out)
        elif t is FlowControl:
            out.append(msg)  # about reading from this port: never held back
        elif t is PurgeTx:
            self._purge(out)
            out.append(msg)
        elif self._queue:
            self._queue.append(msg)
        else:
            self._apply(msg)
            out.append(msg)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- pacing ---------------------------------------------------------------------

    def _set_pace(self) -> None:
        self.rate = self._fixed or self.baud / bits_per_char(self.lc)
        self._slice = max(1, round(self.rate * SLICE_S))
        self.limit = self._fixed_limit or max(MIN_QUEUE_LIMIT, int(self.rate * QUEUE_LIMIT_S))

    def _apply(self, msg: Message) -> None:
        """Follow a setting on its way to the port."""
        t = type(msg)
        if t is SetBaud:
            assert isinstance(msg, SetBaud)
            if msg.baud > 0:
                self.baud = msg.baud
            else:
                self.ctx.log.debug("%r: baud rate %d ignored", self, msg.baud)
        elif t is SetLineControl:
            assert isinstance(msg, SetLineControl)
            lc = msg.lc
            if lc.data_bits is not None and lc.data_bits not in _DATA_BITS:
                self.ctx.log.debug("%r: %d data bits ignored", self, lc.data_bits)
                lc = LineControl(None, lc.parity, lc.stop_bits)
            self.lc = self.lc.merged(lc)
        else:
            return
        self._set_pace()

    def _write(self, msg: LineData, out: list[Message]) -> None:
        data = msg.data
        if not data:
            out.append(msg)
            return
        if self._timer is None and not self.held:
            # The line is idle (so the queue is empty): the first slice goes now.
            if len(data) <= self._slice:
                out.append(msg)
                self._busy(len(data) / self.rate)
                return
            out.append(LineData(data[: self._slice]))
            self._head_sent = self._slice
            self._busy(self._slice / self.rate)
            self.queued += len(data) - self._slice
        else:
            self.queued += len(data)
        self._queue.append(data)
        if self.queued > self.limit:
            if not self.paused:
                self.paused = True
                self.ctx.send_in([_XOFF])
            elif not self._warned and self.queued > self.limit + GROWTH_WARNING_BYTES:
                self._warned = True
                self.ctx.log.warning(
                    "%s: %d bytes wait to be paced and XOFF did not stop the sources; is there a"
                    " flow-control route to them? The queue keeps growing (see --help=ratelimit)",
                    self.ctx.port_name,
                    self.queued,
                )

    def _busy(self, seconds: float) -> None:
        """The line needs `seconds` for what was just released; release more after that."""
        now = self.ctx.time()
        self._line_free_at = max(now, self._line_free_at) + seconds
        self._timer = self.ctx.call_later(self._line_free_at - now, self._release)

    def _release(self) -> None:
        """The line is free: send the next slice and the messages behind it."""
        self._timer = None
        if self.held:
            return  # the port's XON restarts it
        queue = self._queue
        out: list[Message] = []
        pieces: list[bytes] = []
        budget = self._slice
        line_s = 0.0
        while queue and (budget > 0 or type(queue[0]) is not bytes):
            item = queue[0]
            if type(item) is bytes:
                start = self._head_sent
                if len(item) - start <= budget:
                    piece = item[start:] if start else item
                    queue.popleft()
                    self._head_sent = 0
                else:
                    piece = item[start : start + budget]
                    self._head_sent = start + budget
                pieces.append(piece)
                budget -= len(piece)
                self.queued -= len(piece)
                line_s += len(piece) / self.rate
            else:
                assert not isinstance(item, bytes)
                queue.popleft()
                if pieces:
                    out.append(LineData(b"".join(pieces)))
                    pieces.clear()
                self._apply(item)
                out.append(item)
        if pieces:
            out.append(LineData(b"".join(pieces)))
        if line_s:
            self._busy(line_s)
        if out:
            self.ctx.send_out(out)
        self._maybe_resume()

    def _purge(self, out: list[Message]) -> None:
        """Drop the queued data; the messages queued between it go on now, in order."""
        for item in self._queue:
            if type(item) is not bytes:
                assert not isinstance(item, bytes)
                self._apply(item)
                out.append(item)
        self._queue.clear()
        self._head_sent = 0
        self.queued = 0
        self._maybe_resume()

    def _maybe_resume(self) -> None:
        if self.paused and self.queued <= self.limit // 3:
            self.paused = False
            self.ctx.send_in([_XON])
