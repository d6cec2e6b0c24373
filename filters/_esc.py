"""The com0com in-band escape codec (Windows LSRMST insert, extended by com0com), sans-IO.

Shared by the escparse (decoding) and escinsert (encoding) filters. The escape
character E is 0xFF (hub4com spec 4.2):

===========================  ==================================================
``E 00``                     a literal data byte E
``E 01 <lsr> <ch>``          line status with the character received with it
``E 02 <lsr>``               line status without data
``E 03 <msr>``               modem status
``E 10 <b0 b1 b2 b3>``       the remote baud rate, 32-bit little-endian
``E 11 <size> <par> <stop>`` the remote line control, Windows numbering
===========================  ==================================================

Observations on hub4com's escparse/escinsert, which this codec matches byte for
byte (each has a test):

* An unknown code after E is reported and the parser resets: E and the code
  byte are dropped, the next byte is data again. ``E E`` is such an unknown
  code, so both bytes are dropped (Linux PARMRK's ``\\377 \\377`` for a literal
  0xFF is a different format and is not accepted).
* A line status record gives BREAK_STATUS (BI set or not) whenever break state
  is requested, and LINE_STATUS only when one of the requested LSR bits is set.
  The character of ``E 01`` follows the statuses as data, unless BI is set and
  the character is 0x00 (the NUL a UART reads during a break).
* MODEM_STATUS carries the whole MSR byte as received, delta bits included;
  its mask is the set of modem bits requested.
* Data is flushed as one LINE_DATA before each status message; records nobody
  requested produce nothing, so the data around them stays one chunk.
* hub4com passes an RLC record's parity and stop values on unchecked; values
  outside the Windows numbering (parity 0-4, stop 0-2) cannot be represented
  here, so such a field is left out of RemoteLcStatus and counted as an error.
* escinsert writes RLC only with all three fields known; hub4com wrote zeros
  for unknown fields when the line control was only partly known.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import TypeVar

from hub.caps import In
from hub.messages import (
    BreakStatus,
    LineControl,
    LineData,
    LineStatus,
    Lsr,
    Message,
    ModemStatus,
    Parity,
    RemoteBaudStatus,
    RemoteLcStatus,
    StopBits,
)

__all__ = [
    "ESC",
    "ESC_BYTE",
    "PROVIDES",
    "Code",
    "EscParser",
    "encode",
    "escape",
    "lsr_record",
    "mst_record",
    "rbr_record",
    "rlc_record",
]

log = logging.getLogger(__name__)

#: The escape character, as an int and as a one-byte string.
ESC = 0xFF
ESC_BYTE = b"\xff"
#: A literal E in the stream.
_ESCAPED = b"\xff\x00"


class Code(enum.IntEnum):
    """The byte after E (LSRMST names from ntddser.h, C0CE names from com0com's cncext.h)."""

    #: SERIAL_LSRMST_ESCAPE: a literal E.
    ESCAPE = 0x00
    #: SERIAL_LSRMST_LSR_DATA: LSR, then the character received with it.
    LSR_DATA = 0x01
    #: SERIAL_LSRMST_LSR_NODATA: LSR only.
    LSR_NODATA = 0x02
    #: SERIAL_LSRMST_MST: the modem status register.
    MST = 0x03
    #: C0CE_INSERT_RBR: the paired port's baud rate, 4 bytes little-endian.
    RBR = 0x10
    #: C0CE_INSERT_RLC: the paired port's byte size, parity and stop bits.
    RLC = 0x11


#: Whole record length (E and code included) for each status code; unknown codes take 2.
_RECORD_SIZE: dict[int, int] = {
    Code.LSR_DATA: 4,
    Code.LSR_NODATA: 3,
    Code.MST: 3,
    Code.RBR: 6,
    Code.RLC: 5,
}
#: Longest incomplete record kept between chunks.
_MAX_TAIL = max(_RECORD_SIZE.values()) - 1

#: Every signal the escape stream can carry.
PROVIDES = In.MODEM | In.LSR | In.BREAK | In.RBR | In.RLC

#: A run of data: bytes other than E, and escaped E's (E 00).
_DATA_RUN = re.compile(rb"[^\xff]*(?:\xff\x00[^\xff]*)*")

_BI = int(Lsr.BI)


_Field = TypeVar("_Field", Parity, StopBits)


def _lc_field(kind: type[_Field], value: int) -> _Field | None:
    """`value` as a Parity or StopBits, or None outside the Windows numbering."""
    try:
        return kind(value)
    except ValueError:
        return None


def _flush(pieces: list[bytes], out: list[Message]) -> None:
    """Append the data gathered so far as one LineData (data goes before each status)."""
    if pieces:
        out.append(LineData(pieces[0] if len(pieces) == 1 else b"".join(pieces)))
        pieces.clear()


class EscParser:
    """Turns an escaped byte stream, fed in chunks of any size, into hub messages.

    ``wanted`` says which signals to report (hub.caps.In); records for the rest
    are consumed silently. State carries over between calls, so a record may be
    split anywhere. Bad input never raises: it is counted in ``errors``.
    """

    __slots__ = ("_lsr_mask", "_msr_mask", "_tail", "_want_break", "_want_rbr", "_want_rlc", "errors", "name")

    def __init__(self, wanted: In = PROVIDES, name: str = "escape stream") -> None:
        #: Shown in log lines (the port's name).
        self.name = name
        #: Unknown codes and unrepresentable RLC fields seen so far.
        self.errors = 0
        self._tail = b""
        self._msr_mask = 0
        self._lsr_mask = 0
        self._want_break = self._want_rbr = self._want_rlc = False
        self.set_wanted(wanted)

    def set_wanted(self, wanted: In) -> None:
        """Report only these signals from now on."""
        self._msr_mask = wanted.msr
        self._lsr_mask = wanted.lsr
        self._want_break = bool(wanted & In.BREAK)
        self._want_rbr = bool(wanted & In.RBR)
        self._want_rlc = bool(wanted & In.RLC)

    @property
    def pending(self) -> bool:
        """True while an incomplete record from an earlier chunk waits for its rest."""
        return bool(self._tail)

    def reset(self) -> None:
        """Forget an incomplete record (the stream starts afresh, e.g. on a new connection)."""
        if self._tail and log.isEnabledFor(logging.DEBUG):
            log.debug("%s: incomplete escape record %s dropped", self.name, self._tail.hex(" "))
        self._tail = b""

    def feed(self, data: bytes) -> list[Message]:
        """Parse the next chunk of the stream.

        Returns the messages it completes, in stream order: LineData (never
        empty) and the status messages requested. Never raises for bad input.
        """
        buf = self._tail + data if self._tail else data
        self._tail = b""
        if ESC not in buf:
            return [LineData(buf)] if buf else []
        out: list[Message] = []
        pieces: list[bytes] = []
        size = len(buf)
        i = 0
        while True:
            j = _DATA_RUN.match(buf, i).end()  # type: ignore[union-attr]  # matches empty at worst
            if j > i:
                run = buf if (i == 0 and j == size) else buf[i:j]
                pieces.append(run.replace(_ESCAPED, ESC_BYTE) if ESC in run else run)
            if j == size:
                break
            # buf[j] is E, and what follows is not 00.
            if j + 1 == size:
                self._tail = buf[j:]
                break
            code = buf[j + 1]
            end = j + _RECORD_SIZE.get(code, 2)
            if end > size:
                self._tail = buf[j:]
                break
            self._record(code, buf[j + 2 : end], pieces, out)
            i = end
        _flush(pieces, out)
        assert len(self._tail) <= _MAX_TAIL
        return out

    def _record(self, code: int, args: bytes, pieces: list[bytes], out: list[Message]) -> None:
        """Handle one complete record: `args` are the bytes after E and the code."""
        match code:
            case Code.LSR_DATA | Code.LSR_NODATA:
                lsr = args[0]
                if self._want_break:
                    _flush(pieces, out)
                    out.append(BreakStatus(bool(lsr & _BI)))
                if lsr & self._lsr_mask:
                    _flush(pieces, out)
                    out.append(LineStatus(lsr, self._lsr_mask))
                # the character goes on as data, unless it is the NUL of a break
                if code == Code.LSR_DATA and (args[1] or not lsr & _BI):
                    pieces.append(args[1:2])
            case Code.MST:
                if self._msr_mask:
                    _flush(pieces, out)
                    out.append(ModemStatus(args[0], self._msr_mask))
            case Code.RBR:
                if self._want_rbr:
                    _flush(pieces, out)
                    out.append(RemoteBaudStatus(int.from_bytes(args, "little")))
            case Code.RLC:
                if self._want_rlc:
                    parity = _lc_field(Parity, args[1])
                    stop = _lc_field(StopBits, args[2])
                    if parity is None or stop is None:
                        self._error("invalid line control %s; the bad fields are left out", args.hex(" "))
                    _flush(pieces, out)
                    out.append(RemoteLcStatus(LineControl(args[0], parity, stop)))
            case _:
                self._error("unknown escape code 0x%02X; it and the escape byte are dropped", code)

    def _error(self, text: str, *args: object) -> None:
        # Every one is a warning: the hub's RepeatLimiter (hub.logs) keeps a peer
        # that repeats it from flooding the log.
        self.errors += 1
        log.warning("%s: " + text + " (error %d)", self.name, *args, self.errors)


# ---- encoding ---------------------------------------------------------------------


def escape(data: bytes) -> bytes:
    """Return `data` with every E doubled as ``E 00``."""
    return data.replace(ESC_BYTE, _ESCAPED) if ESC in data else data


def lsr_record(lsr: int, char: int | None = None) -> bytes:
    """``E 02 <lsr>``, or ``E 01 <lsr> <char>`` with a character."""
    if char is None:
        return bytes((ESC, Code.LSR_NODATA, lsr & 0xFF))
    return bytes((ESC, Code.LSR_DATA, lsr & 0xFF, char & 0xFF))


def mst_record(msr: int) -> bytes:
    """``E 03 <msr>``."""
    return bytes((ESC, Code.MST, msr & 0xFF))


def rbr_record(baud: int) -> bytes:
    """``E 10 <baud, 32-bit little-endian>``."""
    return bytes((ESC, Code.RBR)) + (baud & 0xFFFFFFFF).to_bytes(4, "little")


def rlc_record(lc: LineControl) -> bytes:
    """``E 11 <size> <parity> <stop>``. Raises ValueError unless all three fields are present."""
    if lc.data_bits is None or lc.parity is None or lc.stop_bits is None:
        raise ValueError(f"line control {lc} is incomplete")
    return bytes((ESC, Code.RLC, lc.data_bits & 0xFF, lc.parity, lc.stop_bits))


def encode(msg: Message) -> bytes | None:
    """The escaped form of one message, or None if the stream cannot carry it.

    LineData is escaped; ModemStatus, LineStatus (its masked bits), BreakStatus,
    RemoteBaudStatus and complete RemoteLcStatus become records.
    """
    t = type(msg)
    if t is LineData:
        return escape(msg.data)  # type: ignore[union-attr]
    if t is ModemStatus:
        return mst_record(msg.value)  # type: ignore[union-attr]
    if t is LineStatus:
        return lsr_record(msg.value & msg.mask)  # type: ignore[union-attr]
    if t is BreakStatus:
        return lsr_record(_BI if msg.on else 0)  # type: ignore[union-attr]
    if t is RemoteBaudStatus:
        return rbr_record(msg.baud)  # type: ignore[union-attr]
    if t is RemoteLcStatus and msg.lc.complete:  # type: ignore[union-attr]
        return rlc_record(msg.lc)  # type: ignore[union-attr]
    return None
