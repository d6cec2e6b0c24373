"""Packetizing filter: group the data read from a port into packets.

Usage: packetize [options]

Attach it to the port whose data is grouped (IN method), for example a
serial device whose messages should reach the network whole, in one TCP
segment each. Data read from the port is collected and sent on as one packet
when the first of these happens:
  pause      no new data arrived for this long;
  size       the packet has reached this many bytes (the rest starts the
             next packet);
  end byte   one of these bytes arrived: the packet ends with it. Several in
             one read give several packets;
  max delay  the oldest byte collected has waited this long.
With none of the four options given, the default is a pause of 10 ms. With
only a size or end bytes, data waits until the packet is complete: add a
pause or a maximum delay to bound the wait.

Any other message read from the port (a connection report, a signal change)
first sends the data collected so far, so the order is kept.

With --gap, every packet sent is followed by a pause: the next packet waits
until the gap has passed since the one before it (a device or a network peer
that needs time between packets; the serial-to-Ethernet servers' "wait after
every packet sent"), as the event loop's clock tells it (uvloop's advances
once per loop iteration, so a gap may come out short by that much). Packets
ready meanwhile wait in order, and other messages keep their place behind
them. While more than 64 KiB wait, the
filter sends XOFF to the port, so the port stops reading (the kernel or the
device's flow control holds the rest), and XON once a third of that is left.

Only data read from the port is grouped. To group the data written to a port,
attach the filter to the ports the data comes from.

Options:
  --pause=<ms>      Send after a pause of <ms> milliseconds with no new data.
  --size=<n>        Send when the packet reaches <n> bytes.
  --end-byte=<b>    Send when this byte arrives, including it: two hex digits
                    (0A), a control character's name (LF, CR, NUL, STX, ETX,
                    EOT, ESC ...) or a single character (;). A comma list (CR,LF)
                    means any of them.
  --max-delay=<ms>  Send when the oldest byte has waited <ms> milliseconds.
  --gap=<ms>        After sending a packet, hold the next one for <ms>
                    milliseconds. Default: no gap.

Example (one command line): NMEA sentences from /dev/ttyUSB0 reach TCP clients
one line per packet, or after 50 ms at the latest.
  hub4com --create-filter=packetize:"--end-byte=LF --max-delay=50"
    /dev/ttyUSB0 --add-filters=0:packetize --use-driver=tcp *5000
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from hub.errors import UsageError
from hub.filter import Filter, FilterContext, Timer
from hub.messages import FlowControl, LineData, Message

__all__ = ["PacketizeConfig", "PacketizeFilter", "parse_end_bytes"]

#: --pause when no condition is given, in seconds.
DEFAULT_PAUSE_S = 0.010
#: --gap: while more than this waits for its turn, the port's reading is paused (XOFF).
GAP_QUEUE_BYTES = 64 * 1024

#: Control character names --end-byte accepts. FF (form feed) is not one: it
#: reads as the hex byte 0xFF.
_NAMES = {
    "NUL": 0x00,
    "SOH": 0x01,
    "STX": 0x02,
    "ETX": 0x03,
    "EOT": 0x04,
    "ENQ": 0x05,
    "ACK": 0x06,
    "BEL": 0x07,
    "BS": 0x08,
    "HT": 0x09,
    "TAB": 0x09,
    "LF": 0x0A,
    "NL": 0x0A,
    "VT": 0x0B,
    "CR": 0x0D,
    "SO": 0x0E,
    "SI": 0x0F,
    "DLE": 0x10,
    "XON": 0x11,
    "XOFF": 0x13,
    "NAK": 0x15,
    "SYN": 0x16,
    "ETB": 0x17,
    "CAN": 0x18,
    "SUB": 0x1A,
    "ESC": 0x1B,
    "SP": 0x20,
    "SPACE": 0x20,
    "DEL": 0x7F,
}
_HEX = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{2})\Z")
_END_BYTE_EXPECTED = "two hex digits such as 0A, a name such as LF, or one character"


def parse_end_bytes(text: str) -> bytes:
    """The bytes an --end-byte value names. Raises ValueError for a bad item."""
    found = bytearray()
    for item in text.split(","):
        m = _HEX.match(item)
        if m:
            found.append(int(m.group(1), 16))
        elif item.upper() in _NAMES:
            found.append(_NAMES[item.upper()])
        elif len(item) == 1 and ord(item) < 256:
            found.append(ord(item))
        else:
            raise ValueError(item)
    return bytes(found)


def _milliseconds(option: str, value: Any) -> float:
    try:
        ms = float(str(value))
    except ValueError:
        ms = 0.0
    if not 0 < ms < float("inf"):
        raise UsageError(f"{option}={value}", "Invalid value (expected a number of milliseconds above 0)")
    return ms / 1000


@dataclass(frozen=True, slots=True)
class PacketizeConfig:
    pause_s: float | None = DEFAULT_PAUSE_S
    size: int | None = None
    #: Bytes that end a packet (empty: none).
    end_bytes: bytes = b""
    max_delay_s: float | None = None
    #: --gap: the pause after every packet sent.
    gap_s: float | None = None


class PacketizeFilter(Filter):
    NAME: ClassVar[str] = "packetize"
    DESCRIPTION: ClassVar[str] = "Packetizing filter (pause, size, end byte, maximum delay)"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> PacketizeConfig:
        """Parse the options. Raises UsageError naming a bad value."""
        pause = _milliseconds("--pause", options["--pause"]) if "--pause" in options else None
        gap = _milliseconds("--gap", options["--gap"]) if "--gap" in options else None
        delay = _milliseconds("--max-delay", options["--max-delay"]) if "--max-delay" in options else None
        size = None
        if "--size" in options:
            text = str(options["--size"])
            if not (text.isascii() and text.isdigit() and int(text) > 0):
                raise UsageError(f"--size={text}", "Invalid value (expected a number of bytes above 0)")
            size = int(text)
        end = b""
        if "--end-byte" in options:
            text = str(options["--end-byte"])
            try:
                end = parse_end_bytes(text)
            except ValueError as exc:
                raise UsageError(
                    f"--end-byte={text}", f"Invalid value {str(exc)!r} (expected {_END_BYTE_EXPECTED})"
                ) from None
        if pause is None and size is None and not end and delay is None:
            pause = DEFAULT_PAUSE_S
        return PacketizeConfig(pause, size, end, delay, gap)

    def __init__(self, ctx: FilterContext, config: PacketizeConfig) -> None:
        super().__init__(ctx, config)
        self._pause_s = config.pause_s
        self._size = config.size
        self._max_delay_s = config.max_delay_s
        self._end = re.compile(b"[" + re.escape(config.end_bytes) + b"]") if config.end_bytes else None
        #: Data collected for the next packet, and its length.
        self._pending: list[bytes] = []
        self.pending_bytes = 0
        self._pause_timer: Timer | None = None
        self._delay_timer: Timer | None = None
        #: --gap: packets (and the messages behind them) waiting for their turn.
        self._gap_s = config.gap_s
        self._waiting: collections.deque[Message] = collections.deque()
        self.waiting_bytes = 0
        self._gap_timer: Timer | None = None
        #: The port's reading is paused for the waiting packets.
        self.paused = False

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        if self._gap_s is not None:
            packets: list[Message] = []
            self._group(msg, packets)
            self._space(packets, out)
        else:
            self._group(msg, out)

    def close(self) -> None:
        self._cancel_timers()
        if self._gap_timer is not None:
            self._gap_timer.cancel()
            self._gap_timer = None

    def _group(self, msg: Message, out: list[Message]) -> None:
        if type(msg) is LineData:
            assert isinstance(msg, LineData)
            if msg.data:
                self._collect(msg, out)
            elif not self._pending:
                out.append(msg)
        else:
            if self._pending:
                out.append(LineData(self._take()))
            out.append(msg)

    # ---- --gap ------------------------------------------------------------------------

    def _space(self, msgs: list[Message], out: list[Message]) -> None:
        """Pass packets on with the gap after each; the rest waits, in order."""
        for m in msgs:
            if self._gap_timer is None and not self._waiting:
                out.append(m)
                if type(m) is LineData:
                    assert self._gap_s is not None
                    self._gap_timer = self.ctx.call_later(self._gap_s, self._on_gap)
            else:
                self._waiting.append(m)
                if type(m) is LineData:
                    self.waiting_bytes += len(m.data)  # type: ignore[union-attr]
        if not self.paused and self.waiting_bytes > GAP_QUEUE_BYTES:
            self.paused = True
            self.ctx.send_out([FlowControl(True)])

    def _on_gap(self) -> None:
        """The gap after a packet is over: the next packet, and the messages before it."""
        self._gap_timer = None
        out: list[Message] = []
        waiting = self._waiting
        packet = False
        while waiting and not packet:
            m = waiting.popleft()
            out.append(m)
            if type(m) is LineData:
                self.waiting_bytes -= len(m.data)  # type: ignore[union-attr]
                packet = True
        if out:
            self.ctx.send_in(out)
        if packet:  # timed from after the packet went on its way
            assert self._gap_s is not None
            self._gap_timer = self.ctx.call_later(self._gap_s, self._on_gap)
        if self.paused and self.waiting_bytes <= GAP_QUEUE_BYTES // 3:
            self.paused = False
            self.ctx.send_out([FlowControl(False)])

    # ---- internals ------------------------------------------------------------------

    def _collect(self, msg: LineData, out: list[Message]) -> None:
        data = msg.data
        n = len(data)
        pos = 0
        while pos < n:
            # The packet ends at the first end byte or where it reaches --size.
            stop = n if self._size is None else min(n, pos + self._size - self.pending_bytes)
            cut = -1
            if self._end is not None:
                m = self._end.search(data, pos, stop)
                if m is not None:
                    cut = m.end()
            if cut < 0:
                if stop == n and (self._size is None or n - pos < self._size - self.pending_bytes):
                    break
                cut = stop
            if pos == 0 and cut == n and not self._pending:
                out.append(msg)  # exactly one packet: unchanged
            else:
                self._pending.append(data[pos:cut])
                self.pending_bytes += cut - pos
                out.append(LineData(self._take()))
            pos = cut
        if pos < n:
            self._pending.append(data[pos:] if pos else data)
            self.pending_bytes += n - pos
            self._arm()

    def _arm(self) -> None:
        """Data was added to a packet still open: (re)start its timers."""
        if self._pause_s is not None:
            if self._pause_timer is not None:
                self._pause_timer.cancel()
            self._pause_timer = self.ctx.call_later(self._pause_s, self._on_timer)
        if self._max_delay_s is not None and self._delay_timer is None:
            self._delay_timer = self.ctx.call_later(self._max_delay_s, self._on_timer)

    def _on_timer(self) -> None:
        if not self._pending:
            return
        packet: list[Message] = [LineData(self._take())]
        if self._gap_s is None:
            self.ctx.send_in(packet)
            return
        out: list[Message] = []
        self._space(packet, out)
        if out:
            self.ctx.send_in(out)

    def _take(self) -> bytes:
        """Return the collected packet and start an empty one."""
        pending = self._pending
        packet = pending[0] if len(pending) == 1 else b"".join(pending)
        self._pending = []
        self.pending_bytes = 0
        self._cancel_timers()
        return packet

    def _cancel_timers(self) -> None:
        for timer in (self._pause_timer, self._delay_timer):
            if timer is not None:
                timer.cancel()
        self._pause_timer = self._delay_timer = None
