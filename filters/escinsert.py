"""Escaped datastream generating filter: carry signals in-band in the data.

Usage: escinsert

Attach it to the port that carries the escape stream, usually a TCP port
(IN and OUT methods), with the filters that drive the signals (pinmap, lsrmap,
linectl) attached after it. It is the counterpart of escparse with its
request-esc-mode option set to no, byte for byte compatible with hub4com's.

OUT: every 0xFF in the data written to the port is doubled as FF 00, and the
signals sent to the port become records appended to its data:
  CTS, DSR, RI, DCD (SET_PIN_STATE)  FF 03 <msr>, when one of them changes
  break (SET_PIN_STATE)              FF 02 <10 or 00>; break on is left to
                                     SET_LSR when somebody sends its BI bit
  line errors (SET_LSR)              FF 02 <lsr>
  baud rate (SET_BR)                 FF 10 <4 bytes, little-endian>, on change
  line control (SET_LC)              FF 11 <size> <parity> <stop>, on change;
                                     fields not given keep their last value,
                                     and nothing is sent before all three are
                                     known
Only the signals some filter sends to this port are taken over; other
settings pass on to the port unchanged. Changes are written only while the
port is connected; when it reports a connection (IN), the current state is
written back to it at once, so the far side starts with a full picture: the
baud rate if known, the line control if complete, the modem status and the
break state.

No options.

Example (one command line): the CTS and DSR of /dev/ttyS0 carried to a TCP peer.
  hub4com --create-filter=escinsert,tcp --create-filter=pinmap,tcp:"--cts=cts --dsr=dsr"
    /dev/ttyS0 --add-filters=1:tcp --use-driver=tcp 192.0.2.1:7000
"""

from __future__ import annotations

from typing import ClassVar

from hub.caps import Out
from hub.filter import Filter, FilterContext
from hub.messages import (
    Connect,
    LineControl,
    LineData,
    Lsr,
    Message,
    Pin,
    SetBaud,
    SetLineControl,
    SetLsr,
    SetPins,
    pins_to_msr,
)

from ._esc import ESC, escape, lsr_record, mst_record, rbr_record, rlc_record

__all__ = ["EscInsertFilter"]

#: The output requests the escape stream can carry.
ACCEPTS = Out.MODEM | Out.BREAK | Out.LSR | Out.SET_BR | Out.SET_LC

_BI = int(Lsr.BI)
_BREAK = int(Pin.BREAK)


class EscInsertFilter(Filter):
    NAME: ClassVar[str] = "escinsert"
    DESCRIPTION: ClassVar[str] = "Escaped datastream generating filter"
    USAGE: ClassVar[str] = __doc__ or ""

    def __init__(self, ctx: FilterContext, config: object) -> None:
        super().__init__(ctx, config)
        self.accepts = ACCEPTS
        #: True between CONNECT(TRUE) and CONNECT(FALSE) read from the port.
        self.connected = False
        #: The emulated CTS/DSR/RI/DCD and BREAK pins (Pin word).
        self.pins = 0
        #: The baud rate (0: not known yet).
        self.baud = 0
        #: The line control, as far as known.
        self.lc = LineControl()

    # `offered` (set by the hub) is what some filter sends to this port: only
    # that is taken over, as hub4com's per-port soMask.

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        out.append(msg)
        if type(msg) is Connect:
            assert isinstance(msg, Connect)
            self.connected = msg.on
            if msg.on:
                snapshot = self._snapshot()
                if snapshot:
                    echo.append(LineData(snapshot))

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        t = type(msg)
        if t is LineData:
            assert isinstance(msg, LineData)
            out.append(LineData(escape(msg.data)) if ESC in msg.data else msg)
        elif t is SetPins:
            assert isinstance(msg, SetPins)
            self._set_pins(msg, out)
        elif t is SetLsr:
            assert isinstance(msg, SetLsr)
            self._set_lsr(msg, out)
        elif t is SetBaud and self.offered & Out.SET_BR:
            assert isinstance(msg, SetBaud)
            if msg.baud != self.baud:
                self.baud = msg.baud
                if self.connected:
                    out.append(LineData(rbr_record(msg.baud)))
        elif t is SetLineControl and self.offered & Out.SET_LC:
            assert isinstance(msg, SetLineControl)
            lc = self.lc.merged(msg.lc)
            if lc != self.lc:
                self.lc = lc
                if self.connected and lc.complete:
                    out.append(LineData(rlc_record(lc)))
        else:
            out.append(msg)

    # ---- internals ------------------------------------------------------------------

    def _set_pins(self, msg: SetPins, out: list[Message]) -> None:
        mask = msg.mask & self.offered.pins
        if not mask:
            out.append(msg)
            return
        rest = msg.mask & ~mask
        if rest:
            out.append(SetPins(msg.value & rest, rest))
        pins = (msg.value & mask) | (self.pins & ~mask)
        changed = pins ^ self.pins
        if not changed:
            return
        self.pins = pins
        if not self.connected:
            return
        record = b""
        if pins_to_msr(changed):
            record = mst_record(pins_to_msr(pins))
        if changed & _BREAK:
            brk = _BI if pins & _BREAK else 0
            if not brk or not self.offered & Out.LSR_BI:
                record += lsr_record(brk)
        if record:
            out.append(LineData(record))

    def _set_lsr(self, msg: SetLsr, out: list[Message]) -> None:
        ours = self.offered.lsr
        if not msg.mask & ours:
            out.append(msg)
            return
        rest = msg.mask & ~ours
        if rest:
            out.append(SetLsr(msg.value & rest, rest))
        lsr = msg.value & msg.mask & ours
        if lsr and self.connected:
            out.append(LineData(lsr_record(lsr)))

    def _snapshot(self) -> bytes:
        """The records giving the far side the current state (hub4com's order)."""
        offered = self.offered
        record = b""
        if offered & Out.SET_BR and self.baud:
            record += rbr_record(self.baud)
        if offered & Out.SET_LC and self.lc.complete:
            record += rlc_record(self.lc)
        if offered & Out.MODEM:
            record += mst_record(pins_to_msr(self.pins))
        if offered & (Out.LSR | Out.BREAK):
            record += lsr_record(_BI if self.pins & _BREAK else 0)
        return record
