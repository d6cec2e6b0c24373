"""Sans-IO telnet engine with the RFC 2217 COM-PORT-OPTION, for the telnet filter.

No sockets, no clock: bytes in, events out, bytes to send back. The layers, each
usable and tested on its own (the shape of wsproto's ``frame_protocol``):

* `escape()` and `TelnetDecoder`: IAC doubling and the token scanner (data,
  two-byte commands, DO/DONT/WILL/WONT, subnegotiations). The decoder carries
  incomplete tails over to the next `feed()`, bounds a subnegotiation buffer, and
  touches data only with bytes methods and compiled ``re`` patterns, never per byte.
* `OptionState`: RFC 1143 "Q method" negotiation of one option, as tables.
* `encode_comport()` / `decode_comport()`: RFC 2217 command payloads.
* `TelnetEngine`: all of the above for one telnet session. ``feed(data)``
  returns events (`LineData`, `Command`, `OptionChanged`, `ComPortActive`,
  `ComPortCommand`); automatic replies (negotiation, TERMINAL-TYPE) wait in
  ``data_to_send()``; ``send_*()`` encode what the owner wants to send.

Observations and issues with peers (reference/rfc2217-peers.md; each has a test):

* pyserial's ``rfc2217://`` client sends DO and WILL COM-PORT; it never asks for
  BINARY (only agrees); it waits for an exact echo of every SET-x, SET-CONTROL and
  PURGE-DATA; it never sends SET-MODEMSTATE-MASK, so a server must push one
  NOTIFY-MODEMSTATE as soon as COM-PORT is agreed. Its parser dies on a stray
  ``IAC SE``, so this engine never emits one.
* pyserial's server sends WILL COM-PORT before DO COM-PORT and leaves queries,
  masks and SIGNATURE unanswered; it sends two NOTIFY-MODEMSTATE at activation.
* gensio/ser2net sends DO COM-PORT unsolicited and answers a client's DO COM-PORT
  with WONT; a gensio *client* stops waiting at the first COM-PORT negotiation
  byte, so our server sends DO COM-PORT first.
* sredird answers SET-BAUDRATE with 4 extra zero bytes (the first 4 are used);
  Cisco IOS sends a 1-byte baud-rate index (translated with `CISCO_BAUD`).
* COM-PORT subnegotiations are processed even when the peer skipped the option
  negotiation (some clients start talking at once); that is logged at debug.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hub.logs import peer_text
from hub.messages import LineData, Parity, StopBits

__all__ = [
    "CISCO_BAUD",
    "DATASIZE_TO_WIRE",
    "IAC",
    "MAX_SUBNEG_BYTES",
    "PARITY_TO_WIRE",
    "SERVER_OFFSET",
    "STOPBITS_TO_WIRE",
    "WIRE_TO_DATASIZE",
    "WIRE_TO_PARITY",
    "WIRE_TO_STOPBITS",
    "Cmd",
    "ComPort",
    "ComPortActive",
    "ComPortCommand",
    "Command",
    "Control",
    "Event",
    "LineState",
    "Malformed",
    "ModemState",
    "Negotiation",
    "Opt",
    "OptionChanged",
    "OptionState",
    "Purge",
    "Q",
    "Role",
    "ServerComPort",
    "Subnegotiation",
    "TType",
    "TelnetDecoder",
    "TelnetEngine",
    "decode_comport",
    "encode_comport",
    "escape",
    "unescape",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------


class Cmd(enum.IntEnum):
    """Telnet commands (RFC 854): the byte after IAC."""

    SE = 240  #: end of subnegotiation
    NOP = 241  #: no operation (our keep-alive)
    DM = 242  #: data mark (the data part of a Synch)
    BRK = 243  #: break
    IP = 244  #: interrupt process
    AO = 245  #: abort output
    AYT = 246  #: are you there
    EC = 247  #: erase character
    EL = 248  #: erase line
    GA = 249  #: go ahead
    SB = 250  #: start of subnegotiation
    WILL = 251  #: sender wants to enable / agrees to enable its side of an option
    WONT = 252  #: sender refuses / disables its side
    DO = 253  #: sender asks the receiver to enable / agrees to it
    DONT = 254  #: sender asks the receiver to disable / refuses
    IAC = 255  #: interpret as command; IAC IAC is a literal 0xFF


class Opt(enum.IntEnum):
    """Telnet options this engine knows."""

    BINARY = 0  #: RFC 856 transmit binary (8-bit clean, per direction)
    ECHO = 1  #: RFC 857 echo (server WILL ECHO: "do not echo locally")
    SGA = 3  #: RFC 858 suppress go-ahead (full duplex)
    TTYPE = 24  #: RFC 1091 terminal type
    COM_PORT = 44  #: RFC 2217 COM-PORT-OPTION


class TType(enum.IntEnum):
    """TERMINAL-TYPE subnegotiation codes (RFC 1091)."""

    IS = 0  #: "my terminal type is ..."
    SEND = 1  #: "send me your terminal type"


class ComPort(enum.IntEnum):
    """RFC 2217 commands, client to access server. The server uses code + SERVER_OFFSET."""

    SIGNATURE = 0  #: text; empty = "send me your signature"
    SET_BAUDRATE = 1  #: 4 bytes, network order; 0 = query
    SET_DATASIZE = 2  #: 1 byte: 5..8; 0 = query
    SET_PARITY = 3  #: 1 byte: 1 none, 2 odd, 3 even, 4 mark, 5 space; 0 = query
    SET_STOPSIZE = 4  #: 1 byte: 1 one, 2 two, 3 one and a half; 0 = query
    SET_CONTROL = 5  #: 1 byte, see Control
    NOTIFY_LINESTATE = 6  #: 1 byte of LineState bits (server); empty from a client = poll
    NOTIFY_MODEMSTATE = 7  #: 1 byte of ModemState bits (server); empty from a client = poll
    FLOWCONTROL_SUSPEND = 8  #: stop sending data (and commands)
    FLOWCONTROL_RESUME = 9  #: start sending again
    SET_LINESTATE_MASK = 10  #: 1 byte; which LineState bits to notify (initially 0)
    SET_MODEMSTATE_MASK = 11  #: 1 byte; which ModemState bits to notify (initially 255)
    PURGE_DATA = 12  #: 1 byte, see Purge


#: Access server to client codes are the client codes plus this.
SERVER_OFFSET = 100

#: The server-side codes, derived from ComPort (SERVER_SET_BAUDRATE = 101, ...).
ServerComPort = enum.IntEnum(  # type: ignore[misc]
    "ServerComPort", [(f"SERVER_{c.name}", c + SERVER_OFFSET) for c in ComPort]
)


class Control(enum.IntEnum):
    """SET-CONTROL values (RFC 2217). Queries are answered with a state value."""

    REQ_FLOW_SETTING = 0  #: query outbound/both flow control
    USE_NO_FLOW_CONTROL = 1  #: outbound/both: none
    USE_SW_FLOW_CONTROL = 2  #: outbound/both: XON/XOFF
    USE_HW_FLOW_CONTROL = 3  #: outbound/both: RTS/CTS
    REQ_BREAK_STATE = 4  #: query BREAK
    BREAK_ON = 5  #: BREAK on
    BREAK_OFF = 6  #: BREAK off
    REQ_DTR = 7  #: query DTR
    DTR_ON = 8  #: DTR on
    DTR_OFF = 9  #: DTR off
    REQ_RTS = 10  #: query RTS
    RTS_ON = 11  #: RTS on
    RTS_OFF = 12  #: RTS off
    REQ_FLOW_SETTING_IN = 13  #: query inbound flow control
    USE_NO_FLOW_CONTROL_IN = 14  #: inbound: none
    USE_SW_FLOW_CONTROL_IN = 15  #: inbound: XON/XOFF
    USE_HW_FLOW_CONTROL_IN = 16  #: inbound: RTS/CTS
    USE_DCD_FLOW_CONTROL = 17  #: outbound/both: DCD
    USE_DTR_FLOW_CONTROL = 18  #: inbound: DTR
    USE_DSR_FLOW_CONTROL = 19  #: outbound/both: DSR


class LineState(enum.IntFlag):
    """NOTIFY-LINESTATE / SET-LINESTATE-MASK bits (the UART LSR layout, as hub Lsr)."""

    DATA_READY = 1  #: data ready
    OVERRUN_ERROR = 2  #: overrun error
    PARITY_ERROR = 4  #: parity error
    FRAMING_ERROR = 8  #: framing error
    BREAK_DETECT = 16  #: break detect
    TRANSREG_EMPTY = 32  #: transfer holding register empty
    SHIFTREG_EMPTY = 64  #: transfer shift register empty
    TIMEOUT_ERROR = 128  #: time-out error


class ModemState(enum.IntFlag):
    """NOTIFY-MODEMSTATE / SET-MODEMSTATE-MASK bits (the UART MSR layout, as hub Msr)."""

    CTS_CHANGE = 1  #: delta clear to send
    DSR_CHANGE = 2  #: delta data set ready
    RI_TRAILING_EDGE = 4  #: ring indicator went off
    CD_CHANGE = 8  #: delta carrier detect
    CTS = 16  #: clear to send
    DSR = 32  #: data set ready
    RI = 64  #: ring indicator
    CD = 128  #: carrier detect (receive line signal detect)


class Purge(enum.IntEnum):
    """PURGE-DATA values."""

    RX = 1  #: the access server's receive buffer (data from the device)
    TX = 2  #: the access server's transmit buffer (data to the device)
    BOTH = 3  #: both


#: SET-PARITY wire values by hub parity (Windows numbering); the reverse is derived.
PARITY_TO_WIRE: Mapping[Parity, int] = {
    Parity.NONE: 1,
    Parity.ODD: 2,
    Parity.EVEN: 3,
    Parity.MARK: 4,
    Parity.SPACE: 5,
}
WIRE_TO_PARITY: Mapping[int, Parity] = {v: k for k, v in PARITY_TO_WIRE.items()}

#: SET-STOPSIZE wire values by hub stop bits; note 1.5 is 3 on the wire.
STOPBITS_TO_WIRE: Mapping[StopBits, int] = {
    StopBits.ONE: 1,
    StopBits.TWO: 2,
    StopBits.ONE_POINT_FIVE: 3,
}
WIRE_TO_STOPBITS: Mapping[int, StopBits] = {v: k for k, v in STOPBITS_TO_WIRE.items()}

#: SET-DATASIZE wire values by data bits (the same numbers; 1-4 and 9-127 are reserved).
DATASIZE_TO_WIRE: Mapping[int, int] = {5: 5, 6: 6, 7: 7, 8: 8}
WIRE_TO_DATASIZE: Mapping[int, int] = {v: k for k, v in DATASIZE_TO_WIRE.items()}

#: Cisco IOS sends SET-BAUDRATE as a 1-byte index (gensio accepts it too).
CISCO_BAUD: Mapping[int, int] = {
    3: 300,
    4: 600,
    5: 1200,
    6: 2400,
    7: 4800,
    8: 9600,
    10: 19200,
    12: 38400,
    13: 57600,
    14: 115200,
    15: 230400,
}

#: Longest subnegotiation (escaped bytes) we buffer; longer ones are dropped.
MAX_SUBNEG_BYTES = 4096

IAC = b"\xff"
_IAC2 = b"\xff\xff"
_IAC_CODE = 255

# Runs of at least this many IACs are handled by slicing, not by replace().
_LONG = 64
_LONG_IACS = IAC * _LONG
# A maximal run of >= _LONG IACs (the leading literal lets sre jump with memchr).
_LONG_RUN = re.compile(rb"\xff\xff{%d,}" % (_LONG - 1))
# A whole run of IACs starting at the match position.
_RUN_AT = re.compile(rb"\xff+")
# A run of odd length: its last IAC starts a command. The search must begin at a
# run start (the lookbehind checks the byte before), see TelnetDecoder._feed_slow.
_ODD_RUN = re.compile(rb"\xff(?<!\xff\xff)(?:\xff\xff)*+(?!\xff)")
_NEGOTIATION = frozenset((Cmd.WILL, Cmd.WONT, Cmd.DO, Cmd.DONT))


def _cmd_name(code: int) -> str:
    try:
        return Cmd(code).name
    except ValueError:
        return str(code)


def _opt_name(code: int) -> str:
    try:
        return Opt(code).name
    except ValueError:
        return str(code)


# --------------------------------------------------------------------------------------
# IAC doubling
# --------------------------------------------------------------------------------------


def escape(data: bytes) -> bytes:
    """Return `data` with every 0xFF doubled (data or subnegotiation payload).

    Sparse 0xFF bytes go through one ``replace``; all-0xFF data is doubled at
    once, and long runs in other dense data are copied by slicing, so the cost
    stays linear with a small constant.
    """
    if IAC not in data:
        return data
    if _all_iac(data):
        return data * 2
    # Sparse 0xFF bytes (random data has one in 256): one replace, capped so that
    # dense data (where replace crawls, ~9 ns per 0xFF) goes the other way soon.
    cap = len(data) >> 6
    out = data.replace(IAC, _IAC2, cap or -1)
    if len(out) - len(data) < cap or not cap:
        return out
    pieces = []
    pos = 0
    for m in _LONG_RUN.finditer(data):
        start, end = m.span()
        pieces.append(data[pos:start].replace(IAC, _IAC2))
        pieces.append(data[start:end] * 2)
        pos = end
    pieces.append(data[pos:].replace(IAC, _IAC2))
    return b"".join(pieces)


def _all_iac(data: bytes) -> bool:
    """Whether `data` is nothing but IACs: one memcmp, where count() and the run
    scan walk every byte (they were a sixth of the relay's CPU on all-0xFF data)."""
    return data[0] == _IAC_CODE == data[-1] and data == IAC * len(data)


def _undouble(data: bytes) -> bytes:
    """Collapse IAC IAC pairs of `data`, which holds only runs of even length."""
    if IAC not in data:
        return data
    if data.count(IAC) * 8 < len(data):
        return data.replace(_IAC2, IAC)
    pieces = []
    pos = 0
    for m in _LONG_RUN.finditer(data):
        start, end = m.span()
        pieces.append(data[pos:start].replace(_IAC2, IAC))
        pieces.append(data[start : start + (end - start) // 2])
        pos = end
    pieces.append(data[pos:].replace(_IAC2, IAC))
    return b"".join(pieces)


def _collapse_short(data: bytes) -> bytes | None:
    """`data` (no long runs) with IAC IAC collapsed, or None if it holds a lone IAC."""
    n = data.count(IAC)
    if not n:
        return data
    if n * 8 < len(data):
        parts = data.split(_IAC2)
        plain = IAC.join(parts)
        return plain if plain.count(IAC) == len(parts) - 1 else None
    if n != 2 * data.count(_IAC2):
        return None
    return data.replace(_IAC2, IAC)


def unescape(data: bytes) -> bytes | None:
    """`data` with IAC IAC pairs collapsed, or None if it holds a command (a lone IAC).

    This is the decoder's fast path: a whole chunk of escaped data and no commands.
    """
    if IAC not in data:
        return data
    if _all_iac(data):
        return None if len(data) & 1 else data[: len(data) // 2]
    if data.count(IAC) * 8 < len(data):
        return _collapse_short(data)
    pieces = []
    pos = 0
    for m in _LONG_RUN.finditer(data):
        start, end = m.span()
        if (end - start) & 1:
            return None
        short = _collapse_short(data[pos:start])
        if short is None:
            return None
        pieces.append(short)
        pieces.append(data[start : start + (end - start) // 2])
        pos = end
    short = _collapse_short(data[pos:])
    if short is None:
        return None
    pieces.append(short)
    return b"".join(pieces)


# --------------------------------------------------------------------------------------
# Tokens and events
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A two-byte command other than SB/SE/negotiation: NOP, BRK, AYT, ... or an unknown code."""

    cmd: int


@dataclass(frozen=True, slots=True)
class Negotiation:
    """IAC WILL/WONT/DO/DONT <option> (decoder token)."""

    cmd: Cmd
    option: int


@dataclass(frozen=True, slots=True)
class Subnegotiation:
    """IAC SB <option> <payload> IAC SE, payload un-doubled (decoder token)."""

    option: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Malformed:
    """Bytes from the peer that break the protocol; logged and survived."""

    reason: str


@dataclass(frozen=True, slots=True)
class OptionChanged:
    """An option became enabled or disabled on our side (local) or the peer's."""

    option: int
    local: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class ComPortActive:
    """COM-PORT-OPTION was agreed (in either direction) or dropped."""

    active: bool


@dataclass(frozen=True, slots=True)
class ComPortCommand:
    """One RFC 2217 command, direction-free: `cmd` is the client code.

    `value` is bytes for SIGNATURE (empty = request), None for FLOWCONTROL-SUSPEND/
    RESUME and for a NOTIFY poll without value, an int otherwise (0 = query).
    """

    cmd: ComPort
    value: int | bytes | None = None


Token = LineData | Command | Negotiation | Subnegotiation | Malformed
Event = LineData | Command | OptionChanged | ComPortActive | ComPortCommand


# --------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------


class _Scanner:
    """Finds command IACs (the last IAC of an odd run) in one buffer, left to right.

    Short runs are skipped by one ``re`` search; long runs (>= _LONG) are measured
    with a single match each, so all-0xFF data costs one pass, not one retry per byte.
    """

    __slots__ = ("data", "long_at", "n")

    def __init__(self, data: bytes):
        self.data = data
        self.n = len(data)
        self.long_at = -2  # next long run at or after the last position; -1 none; -2 unknown

    def find_command(self, pos: int) -> int:
        """Index of the next command IAC at or after run start `pos`, or len(data)."""
        data = self.data
        while True:
            if self.long_at == -2 or 0 <= self.long_at < pos:
                self.long_at = data.find(_LONG_IACS, pos)
            end = self.n if self.long_at < 0 else self.long_at
            m = _ODD_RUN.search(data, pos, end)
            if m is not None:
                return m.end() - 1
            if self.long_at < 0:
                return self.n
            run_end = _RUN_AT.match(data, self.long_at).end()  # type: ignore[union-attr]
            if (run_end - self.long_at) & 1:
                return run_end - 1
            pos = run_end


class TelnetDecoder:
    """Telnet byte stream -> tokens. Split-safe: feeding in pieces equals feeding whole.

    Subnegotiations longer than `max_subneg_bytes` are dropped: one `Malformed`
    token, then everything up to the closing IAC SE is discarded without buffering.
    An IAC command other than IAC SE inside a subnegotiation aborts it (`Malformed`)
    and is then processed normally, which resynchronises after a truncated one.
    """

    def __init__(self, max_subneg_bytes: int = MAX_SUBNEG_BYTES):
        self.max_subneg_bytes = max_subneg_bytes
        self._tail = b""
        #: Escaped payload pieces of the open subnegotiation; None outside one.
        self._sb: list[bytes] | None = None
        self._sb_bytes = 0
        self._sb_dropping = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes held between feeds (incomplete command plus subnegotiation payload)."""
        return len(self._tail) + self._sb_bytes

    @property
    def in_sequence(self) -> bool:
        """True while a command or subnegotiation is incomplete."""
        return bool(self._tail) or self._sb is not None

    def feed(self, data: bytes) -> list[Token]:
        """Decode `data`; return the complete tokens in order. Never raises on bad input."""
        if self._tail:
            data = self._tail + data
            self._tail = b""
        if self._sb is None:
            if IAC not in data:
                return [LineData(data)] if data else []
            plain = unescape(data)
            if plain is not None:
                return [LineData(plain)]
        return self._feed_slow(data)

    def _feed_slow(self, data: bytes) -> list[Token]:
        tokens: list[Token] = []
        scan = _Scanner(data)
        n = len(data)
        pos = 0
        while pos < n:
            i = scan.find_command(pos)
            if self._sb is not None:
                self._sb_add(data, pos, i, tokens)
            elif i > pos:
                tokens.append(LineData(_undouble(data[pos:i])))
            if i >= n:
                break
            if i + 1 == n:
                self._tail = data[i:]
                break
            code = data[i + 1]
            if self._sb is not None:
                if code == Cmd.SE:
                    self._sb_close(tokens)
                    pos = i + 2
                    continue
                tokens.append(Malformed(f"IAC {_cmd_name(code)} inside a subnegotiation, which is dropped"))
                self._sb_reset()
            if code in _NEGOTIATION:
                if i + 2 == n:
                    self._tail = data[i:]
                    break
                option = data[i + 2]
                tokens.append(Negotiation(Cmd(code), option))
                pos = i + 3
                if option == _IAC_CODE and pos < n:
                    # _ODD_RUN's lookbehind would see this option byte as part of a run.
                    data = data[pos:]
                    n = len(data)
                    pos = 0
                    scan = _Scanner(data)
            elif code == Cmd.SB:
                self._sb = []
                pos = i + 2
            elif code == Cmd.SE:
                tokens.append(Malformed("IAC SE outside a subnegotiation"))
                pos = i + 2
            else:
                tokens.append(Command(code))
                pos = i + 2
        return tokens

    def _sb_add(self, data: bytes, start: int, end: int, tokens: list[Token]) -> None:
        if self._sb_dropping or end <= start:
            return
        if self._sb_bytes + end - start > self.max_subneg_bytes:
            tokens.append(Malformed(f"subnegotiation longer than {self.max_subneg_bytes} bytes dropped"))
            self._sb_dropping = True
            self._sb = []
            self._sb_bytes = 0
            return
        self._sb.append(data[start:end])  # type: ignore[union-attr]
        self._sb_bytes += end - start

    def _sb_close(self, tokens: list[Token]) -> None:
        if not self._sb_dropping:
            payload = _undouble(b"".join(self._sb or ()))
            if payload:
                tokens.append(Subnegotiation(payload[0], payload[1:]))
            else:
                tokens.append(Malformed("empty subnegotiation"))
        self._sb_reset()

    def _sb_reset(self) -> None:
        self._sb = None
        self._sb_bytes = 0
        self._sb_dropping = False


# --------------------------------------------------------------------------------------
# Option negotiation: RFC 1143, the Q method
# --------------------------------------------------------------------------------------


class Q(enum.Enum):
    """State of one side of one option (RFC 1143; the queue bit folded into the state)."""

    NO = enum.auto()  #: disabled
    YES = enum.auto()  #: enabled
    WANTNO = enum.auto()  #: we asked to disable and wait for the answer
    WANTNO_OPPOSITE = enum.auto()  #: ... and want it enabled again after that
    WANTYES = enum.auto()  #: we asked to enable and wait for the answer
    WANTYES_OPPOSITE = enum.auto()  #: ... and want it disabled again after that


class _Send(enum.Enum):
    NOTHING = enum.auto()
    ENABLE = enum.auto()  #: DO (peer side) or WILL (our side)
    DISABLE = enum.auto()  #: DONT (peer side) or WONT (our side)


#: The peer asked to enable (True) or disable (False): (state, enable) -> (next, send).
#: (NO, True) is the one choice: it becomes _AGREE or _REFUSE by the option's policy.
_RECEIVE: Mapping[tuple[Q, bool], tuple[Q, _Send]] = {
    (Q.YES, True): (Q.YES, _Send.NOTHING),
    (Q.WANTNO, True): (Q.NO, _Send.NOTHING),  # error: our disable answered by enable
    (Q.WANTNO_OPPOSITE, True): (Q.YES, _Send.NOTHING),  # the same error
    (Q.WANTYES, True): (Q.YES, _Send.NOTHING),
    (Q.WANTYES_OPPOSITE, True): (Q.WANTNO, _Send.DISABLE),
    (Q.NO, False): (Q.NO, _Send.NOTHING),
    (Q.YES, False): (Q.NO, _Send.DISABLE),
    (Q.WANTNO, False): (Q.NO, _Send.NOTHING),
    (Q.WANTNO_OPPOSITE, False): (Q.WANTYES, _Send.ENABLE),
    (Q.WANTYES, False): (Q.NO, _Send.NOTHING),
    (Q.WANTYES_OPPOSITE, False): (Q.NO, _Send.NOTHING),
}
_AGREE = (Q.YES, _Send.ENABLE)
_REFUSE = (Q.NO, _Send.DISABLE)

#: We want the option enabled (True) or disabled (False): (state, enable) -> (next, send).
_REQUEST: Mapping[tuple[Q, bool], tuple[Q, _Send]] = {
    (Q.NO, True): (Q.WANTYES, _Send.ENABLE),
    (Q.YES, True): (Q.YES, _Send.NOTHING),
    (Q.WANTNO, True): (Q.WANTNO_OPPOSITE, _Send.NOTHING),
    (Q.WANTNO_OPPOSITE, True): (Q.WANTNO_OPPOSITE, _Send.NOTHING),
    (Q.WANTYES, True): (Q.WANTYES, _Send.NOTHING),
    (Q.WANTYES_OPPOSITE, True): (Q.WANTYES, _Send.NOTHING),
    (Q.NO, False): (Q.NO, _Send.NOTHING),
    (Q.YES, False): (Q.WANTNO, _Send.DISABLE),
    (Q.WANTNO, False): (Q.WANTNO, _Send.NOTHING),
    (Q.WANTNO_OPPOSITE, False): (Q.WANTNO, _Send.NOTHING),
    (Q.WANTYES, False): (Q.WANTYES_OPPOSITE, _Send.NOTHING),
    (Q.WANTYES_OPPOSITE, False): (Q.WANTYES_OPPOSITE, _Send.NOTHING),
}

#: Received command -> (concerns our side, asks to enable).
_RECEIVED: Mapping[Cmd, tuple[bool, bool]] = {
    Cmd.WILL: (False, True),
    Cmd.WONT: (False, False),
    Cmd.DO: (True, True),
    Cmd.DONT: (True, False),
}
#: (our side, what to send) -> command on the wire.
_SEND_CMD: Mapping[tuple[bool, _Send], Cmd] = {
    (True, _Send.ENABLE): Cmd.WILL,
    (True, _Send.DISABLE): Cmd.WONT,
    (False, _Send.ENABLE): Cmd.DO,
    (False, _Send.DISABLE): Cmd.DONT,
}


class OptionState:
    """Negotiation state of one option, both sides, with what we agree to.

    `receive()` and `request()` return the command to send (or None) and never
    answer a command that does not change the state, so two engines cannot loop.
    """

    __slots__ = ("accept_local", "accept_remote", "local", "option", "remote")

    def __init__(self, option: int, accept_local: bool = False, accept_remote: bool = False):
        self.option = option
        self.accept_local = accept_local
        self.accept_remote = accept_remote
        self.local = Q.NO  #: our side (WILL/WONT sent by us, DO/DONT received)
        self.remote = Q.NO  #: the peer's side (WILL/WONT received, DO/DONT sent by us)

    def receive(self, cmd: Cmd) -> Cmd | None:
        """Apply a received WILL/WONT/DO/DONT; return our answer, if any."""
        local, enable = _RECEIVED[cmd]
        state = self.local if local else self.remote
        if state is Q.NO and enable:
            accept = self.accept_local if local else self.accept_remote
            new, send = _AGREE if accept else _REFUSE
        else:
            new, send = _RECEIVE[state, enable]
        self._set(local, new)
        return None if send is _Send.NOTHING else _SEND_CMD[local, send]

    def request(self, local: bool, enable: bool) -> Cmd | None:
        """We want our side (local) or the peer's enabled or disabled; return what to send."""
        new, send = _REQUEST[self.local if local else self.remote, enable]
        self._set(local, new)
        return None if send is _Send.NOTHING else _SEND_CMD[local, send]

    def _set(self, local: bool, new: Q) -> None:
        if local:
            self.local = new
        else:
            self.remote = new

    def enabled(self, local: bool) -> bool:
        return (self.local if local else self.remote) is Q.YES

    def __repr__(self) -> str:
        return f"<OptionState {_opt_name(self.option)} local={self.local.name} remote={self.remote.name}>"


# --------------------------------------------------------------------------------------
# RFC 2217 payloads
# --------------------------------------------------------------------------------------


class _Payload(enum.Enum):
    TEXT = enum.auto()  #: free text
    U32 = enum.auto()  #: 4 bytes, network order
    U8 = enum.auto()  #: one byte
    OPTIONAL_U8 = enum.auto()  #: one byte, or nothing (a poll)
    EMPTY = enum.auto()  #: nothing


_PAYLOAD: Mapping[ComPort, _Payload] = {
    ComPort.SIGNATURE: _Payload.TEXT,
    ComPort.SET_BAUDRATE: _Payload.U32,
    ComPort.SET_DATASIZE: _Payload.U8,
    ComPort.SET_PARITY: _Payload.U8,
    ComPort.SET_STOPSIZE: _Payload.U8,
    ComPort.SET_CONTROL: _Payload.U8,
    ComPort.NOTIFY_LINESTATE: _Payload.OPTIONAL_U8,
    ComPort.NOTIFY_MODEMSTATE: _Payload.OPTIONAL_U8,
    ComPort.FLOWCONTROL_SUSPEND: _Payload.EMPTY,
    ComPort.FLOWCONTROL_RESUME: _Payload.EMPTY,
    ComPort.SET_LINESTATE_MASK: _Payload.U8,
    ComPort.SET_MODEMSTATE_MASK: _Payload.U8,
    ComPort.PURGE_DATA: _Payload.U8,
}

_SB_HEAD = bytes((_IAC_CODE, Cmd.SB))
_SB_TAIL = bytes((_IAC_CODE, Cmd.SE))


def _subneg(option: int, payload: bytes) -> bytes:
    return _SB_HEAD + escape(bytes((option,)) + payload) + _SB_TAIL


def encode_comport(cmd: ComPort, value: int | bytes | str | None = None, *, server: bool) -> bytes:
    """Encode one RFC 2217 command as IAC SB COM-PORT-OPTION ... IAC SE, IACs doubled.

    `server` selects the access-server code (cmd + 100). Raises ValueError when
    `value` does not fit the command (a bug in the caller, not a peer problem).
    """
    kind = _PAYLOAD[cmd]
    if kind is _Payload.TEXT:
        body = value.encode("utf-8") if isinstance(value, str) else bytes(value or b"")
    elif kind is _Payload.EMPTY or (kind is _Payload.OPTIONAL_U8 and value is None):
        body = b""
    elif not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{cmd.name} needs an integer value, not {value!r}")
    elif kind is _Payload.U32:
        if not 0 <= value < 1 << 32:
            raise ValueError(f"{cmd.name} value {value} out of range")
        body = value.to_bytes(4, "big")
    else:
        if not 0 <= value < 256:
            raise ValueError(f"{cmd.name} value {value} out of range")
        body = bytes((value,))
    code = cmd + SERVER_OFFSET if server else int(cmd)
    return _subneg(Opt.COM_PORT, bytes((code,)) + body)


def decode_comport(payload: bytes, *, from_server: bool) -> ComPortCommand | Malformed:
    """Decode a COM-PORT-OPTION subnegotiation payload (after the option byte)."""
    if not payload:
        return Malformed("COM-PORT subnegotiation without a command")
    side = "access server" if from_server else "client"
    code = payload[0]
    if (code >= SERVER_OFFSET) != from_server:
        return Malformed(f"COM-PORT command {code} is not one the {side} sends")
    try:
        cmd = ComPort(code - SERVER_OFFSET if from_server else code)
    except ValueError:
        return Malformed(f"unknown COM-PORT command {code} from the {side}")
    body = payload[1:]
    kind = _PAYLOAD[cmd]
    if kind is _Payload.TEXT:
        return ComPortCommand(cmd, bytes(body))
    if kind is _Payload.EMPTY:
        return ComPortCommand(cmd, None)
    if not body:
        if kind is _Payload.OPTIONAL_U8:
            return ComPortCommand(cmd, None)
        return Malformed(f"COM-PORT {cmd.name} without a value")
    if kind is _Payload.U32:
        if len(body) >= 4:  # sredird appends 4 zero bytes: use the first 4
            return ComPortCommand(cmd, int.from_bytes(body[:4], "big"))
        if len(body) == 1 and (body[0] == 0 or body[0] in CISCO_BAUD):
            return ComPortCommand(cmd, CISCO_BAUD.get(body[0], 0))
        return Malformed(f"COM-PORT {cmd.name} with a {len(body)}-byte value")
    return ComPortCommand(cmd, body[0])


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


class Role(enum.Enum):
    """Our part in RFC 2217 (NONE: plain telnet, COM-PORT-OPTION refused)."""

    NONE = "no"  #: plain telnet
    CLIENT = "client"  #: we send commands; the peer is the access server
    SERVER = "server"  #: we are the access server


_NOP = bytes((_IAC_CODE, Cmd.NOP))


class TelnetEngine:
    """One telnet session: decoding, option negotiation, TERMINAL-TYPE, COM-PORT codec.

    ``start()`` returns our opening negotiation. ``feed(data)`` returns events and
    queues automatic replies for ``data_to_send()``. ``send_data``, ``send_nop``
    and ``send_comport`` return bytes to write. Peer errors are logged and counted in
    ``errors`` (the first one at WARNING, the rest at DEBUG); only misuse raises.
    """

    def __init__(
        self,
        role: Role = Role.NONE,
        *,
        terminal: str = "UNKNOWN",
        suppress_echo: bool = False,
        max_subneg_bytes: int = MAX_SUBNEG_BYTES,
        logger: logging.Logger | None = None,
    ):
        self.role = role
        self.log = logger or log
        self.terminal = terminal.encode("ascii", "replace")
        self.errors = 0
        #: IAC NOPs received (a peer's keep-alive).
        self.nops = 0
        self._decoder = TelnetDecoder(max_subneg_bytes)
        self._pending: list[bytes] = []
        comport = role is not Role.NONE
        self._options: dict[int, OptionState] = {
            Opt.BINARY: OptionState(Opt.BINARY, True, True),
            Opt.ECHO: OptionState(Opt.ECHO, suppress_echo, True),
            Opt.SGA: OptionState(Opt.SGA, True, True),
            Opt.TTYPE: OptionState(Opt.TTYPE, bool(terminal), False),
            Opt.COM_PORT: OptionState(Opt.COM_PORT, comport, comport),
        }
        # What we ask for at start, in order (DO COM-PORT first: gensio clients stop
        # waiting at the first COM-PORT byte they see).
        self._offers: list[tuple[int, bool]] = []
        if role is Role.SERVER:
            self._offers.append((Opt.COM_PORT, False))
        elif role is Role.CLIENT:
            self._offers.append((Opt.COM_PORT, True))
        self._offers += [(Opt.BINARY, True), (Opt.BINARY, False)]
        if suppress_echo:
            self._offers += [(Opt.ECHO, True), (Opt.SGA, True)]
        self._comport_active = False

    def __repr__(self) -> str:
        active = " comport" if self._comport_active else ""
        return f"<TelnetEngine {self.role.value}{active} errors={self.errors}>"

    # ---- state -----------------------------------------------------------------------

    def local_enabled(self, option: int) -> bool:
        """Our side of `option` is enabled (we sent or answered WILL)."""
        state = self._options.get(option)
        return state is not None and state.local is Q.YES

    def remote_enabled(self, option: int) -> bool:
        """The peer's side of `option` is enabled (it sent or answered WILL)."""
        state = self._options.get(option)
        return state is not None and state.remote is Q.YES

    def option(self, option: int) -> OptionState | None:
        return self._options.get(option)

    @property
    def comport_active(self) -> bool:
        """COM-PORT-OPTION is enabled in at least one direction."""
        return self.local_enabled(Opt.COM_PORT) or self.remote_enabled(Opt.COM_PORT)

    @property
    def in_sequence(self) -> bool:
        """The peer stopped in the middle of a command or subnegotiation."""
        return self._decoder.in_sequence

    @property
    def buffered_bytes(self) -> int:
        return self._decoder.buffered_bytes

    # ---- output ----------------------------------------------------------------------

    def start(self) -> bytes:
        """Our opening requests; call once when the connection is up."""
        for option, local in self._offers:
            self._request(option, local, True)
        return self.data_to_send()

    def request(self, option: int, local: bool, enable: bool) -> bytes:
        """Ask to enable/disable our side (local) or the peer's side of `option`."""
        if option not in self._options:
            raise ValueError(f"option {option} is not supported")
        self._request(option, local, enable)
        return self.data_to_send()

    def data_to_send(self) -> bytes:
        """Automatic replies queued by feed()/start(); empties the queue."""
        if not self._pending:
            return b""
        data = b"".join(self._pending)
        self._pending.clear()
        return data

    def send_data(self, data: bytes, cr_padding: bytes = b"") -> bytes:
        """Encode data bytes: CR padding (only while our BINARY is off), IAC doubled."""
        if cr_padding and b"\r" in data and not self.local_enabled(Opt.BINARY):
            data = data.replace(b"\r", b"\r" + cr_padding)
        return escape(data)

    @staticmethod
    def send_nop() -> bytes:
        return _NOP

    def send_comport(self, cmd: ComPort, value: int | bytes | str | None = None) -> bytes:
        """Encode an RFC 2217 command with our role's code. Raises ValueError on misuse."""
        if self.role is Role.NONE:
            raise ValueError("COM-PORT-OPTION is off in this engine")
        data = encode_comport(cmd, value, server=self.role is Role.SERVER)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("send COM-PORT %s %r", cmd.name, value)
        return data

    # ---- input -----------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Process bytes from the peer; return events in order. Never raises on bad input."""
        tokens = self._decoder.feed(data)
        if len(tokens) == 1 and type(tokens[0]) is LineData:
            return tokens  # type: ignore[return-value]
        events: list[Event] = []
        for token in tokens:
            kind = type(token)
            if kind is LineData:
                events.append(token)  # type: ignore[arg-type]
            elif kind is Negotiation:
                self._on_negotiation(token, events)  # type: ignore[arg-type]
            elif kind is Subnegotiation:
                self._on_subnegotiation(token, events)  # type: ignore[arg-type]
            elif kind is Command:
                self._on_command(token.cmd, events)  # type: ignore[union-attr]
            else:
                self._protocol_error(token.reason)  # type: ignore[union-attr]
        return events

    def _protocol_error(self, reason: str) -> None:
        # Every one is a warning: the hub's RepeatLimiter (hub.logs) keeps a peer
        # that repeats it from flooding the log.
        self.errors += 1
        self.log.warning("telnet peer: %s (error %d)", reason, self.errors)

    def _on_command(self, code: int, events: list[Event]) -> None:
        if code == Cmd.NOP:
            self.nops += 1  # the peer's keep-alive; not logged one by one
        elif code > Cmd.SE:
            self.log.debug("recv %s", _cmd_name(code))
            events.append(Command(code))
        else:
            self._protocol_error(f"unknown command IAC {code} ignored")

    def _request(self, option: int, local: bool, enable: bool) -> None:
        send = self._options[option].request(local, enable)
        if send is not None:
            self._queue_negotiation(send, option)
        # Only a request to disable changes the state at once (YES -> WANTNO); the
        # owner asked for it, so no event, but COM-PORT activity must stay in step.
        self._comport_active = self.comport_active

    def _on_negotiation(self, token: Negotiation, events: list[Event]) -> None:
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("recv %s %s", token.cmd.name, _opt_name(token.option))
        state = self._options.get(token.option)
        if state is None:
            # Unknown option: refuse an offer, never answer a refusal (RFC 854 loop rule).
            answer = {Cmd.WILL: Cmd.DONT, Cmd.DO: Cmd.WONT}.get(token.cmd)
            if answer is not None:
                self._queue_negotiation(answer, token.option)
            return
        local = _RECEIVED[token.cmd][0]
        was = state.enabled(local)
        answer = state.receive(token.cmd)
        if answer is not None:
            self._queue_negotiation(answer, token.option)
        if state.enabled(local) != was:
            self._changed(token.option, local, not was, events)

    def _changed(self, option: int, local: bool, enabled: bool, events: list[Event]) -> None:
        self.log.debug(
            "%s side of %s %s", "our" if local else "peer's", _opt_name(option), "on" if enabled else "off"
        )
        events.append(OptionChanged(option, local, enabled))
        if option == Opt.COM_PORT and self.comport_active != self._comport_active:
            self._comport_active = self.comport_active
            events.append(ComPortActive(self._comport_active))

    def _queue_negotiation(self, cmd: Cmd, option: int) -> None:
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("send %s %s", cmd.name, _opt_name(option))
        self._pending.append(bytes((_IAC_CODE, cmd, option)))

    def _on_subnegotiation(self, token: Subnegotiation, events: list[Event]) -> None:
        option = token.option
        if option == Opt.COM_PORT and self.role is not Role.NONE:
            result = decode_comport(token.payload, from_server=self.role is Role.CLIENT)
            if type(result) is Malformed:
                self._protocol_error(result.reason)
                return
            if self.log.isEnabledFor(logging.DEBUG):
                value = result.value  # type: ignore[union-attr]
                self.log.debug(
                    "recv COM-PORT %s %s%s",
                    result.cmd.name,  # type: ignore[union-attr]
                    peer_text(value) if isinstance(value, bytes) else repr(value),
                    "" if self._comport_active else " (COM-PORT not negotiated)",
                )
            events.append(result)  # type: ignore[arg-type]
        elif option == Opt.TTYPE and token.payload[:1] == bytes((TType.SEND,)):
            if self.local_enabled(Opt.TTYPE):
                self.log.debug("send TERMINAL-TYPE IS %r", self.terminal)
                self._pending.append(_subneg(Opt.TTYPE, bytes((TType.IS,)) + self.terminal))
            else:
                self._protocol_error("TERMINAL-TYPE SEND while the option is off")
        else:
            self.log.debug("ignored subnegotiation for option %s", _opt_name(option))
