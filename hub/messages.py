"""The closed set of hub messages (hub4com spec section 2).

Every message is a frozen, slotted dataclass that compares by value. Value
encodings follow the spec so traces match hub4com's: modem status uses the
UART MSR byte, line status the LSR byte, pin words the SET_PIN_STATE layout,
line control the size/parity/stop fields with presence bits.

A filter that does not change a message passes the same object on; filters
never mutate a message (they cannot: it is frozen).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "MODEM_MASK",
    "BreakStatus",
    "Connect",
    "Flow",
    "FlowControl",
    "FlowMode",
    "LineControl",
    "LineData",
    "LineStatus",
    "LocalBaudStatus",
    "LocalFlowStatus",
    "LocalLcStatus",
    "Lsr",
    "Message",
    "ModemStatus",
    "Msr",
    "Parity",
    "Pin",
    "PurgeTx",
    "PurgeTxIn",
    "RemoteBaudStatus",
    "RemoteFlowStatus",
    "RemoteLcStatus",
    "SetBaud",
    "SetFlow",
    "SetLineControl",
    "SetLsr",
    "SetPins",
    "StopBits",
    "msr_to_pins",
    "pins_to_msr",
]


class Msr(enum.IntFlag):
    """Modem status register bits (UART MSR layout)."""

    DCTS = 0x01
    DDSR = 0x02
    TERI = 0x04
    DDCD = 0x08
    CTS = 0x10
    DSR = 0x20
    RI = 0x40
    DCD = 0x80


#: The four modem input lines (no delta bits).
MODEM_MASK = Msr.CTS | Msr.DSR | Msr.RI | Msr.DCD


class Lsr(enum.IntFlag):
    """Line status register bits (UART LSR layout)."""

    DR = 0x01
    OE = 0x02
    PE = 0x04
    FE = 0x08
    BI = 0x10
    THRE = 0x20
    TEMT = 0x40
    FIFOERR = 0x80


class Pin(enum.IntFlag):
    """SET_PIN_STATE pin word. CTS..DCD drive an emulated port's inputs."""

    DTR = 0x0001
    RTS = 0x0002
    OUT1 = 0x0004
    OUT2 = 0x0008
    BREAK = 0x0100
    CTS = 0x1000
    DSR = 0x2000
    RI = 0x4000
    DCD = 0x8000


def msr_to_pins(msr: int) -> int:
    """Map MSR line bits (CTS..DCD) to the matching emulated-output pin bits."""
    return (msr & 0xF0) << 8


def pins_to_msr(pins: int) -> int:
    """Map emulated-output pin bits (Pin.CTS..Pin.DCD) to MSR line bits."""
    return (pins >> 8) & 0xF0


class Parity(enum.IntEnum):
    """Parity, in the Windows numbering hub4com uses."""

    NONE = 0
    ODD = 1
    EVEN = 2
    MARK = 3
    SPACE = 4


class StopBits(enum.IntEnum):
    """Stop bits, in the Windows numbering hub4com uses."""

    ONE = 0
    ONE_POINT_FIVE = 1
    TWO = 2


_PARITY_LETTER = "NOEMS"
_STOP_TEXT = {StopBits.ONE: "1", StopBits.ONE_POINT_FIVE: "1.5", StopBits.TWO: "2"}


@dataclass(frozen=True, slots=True)
class LineControl:
    """Byte size, parity and stop bits; each field may be absent (None)."""

    data_bits: int | None = None
    parity: Parity | None = None
    stop_bits: StopBits | None = None

    @property
    def value(self) -> int:
        """The hub4com 32-bit encoding: fields in bytes 0-2, presence in bits 24-26."""
        v = 0
        if self.data_bits is not None:
            v |= self.data_bits | 1 << 24
        if self.parity is not None:
            v |= self.parity << 8 | 1 << 25
        if self.stop_bits is not None:
            v |= self.stop_bits << 16 | 1 << 26
        return v

    @classmethod
    def from_value(cls, v: int) -> LineControl:
        """Decode the hub4com 32-bit encoding."""
        return cls(
            v & 0xFF if v & 1 << 24 else None,
            Parity((v >> 8) & 0xFF) if v & 1 << 25 else None,
            StopBits((v >> 16) & 0xFF) if v & 1 << 26 else None,
        )

    def merged(self, newer: LineControl) -> LineControl:
        """Return self with the fields present in `newer` replaced."""
        return LineControl(
            self.data_bits if newer.data_bits is None else newer.data_bits,
            self.parity if newer.parity is None else newer.parity,
            self.stop_bits if newer.stop_bits is None else newer.stop_bits,
        )

    def changed_fields(self, newer: LineControl) -> LineControl:
        """Return the fields of `newer` that are present and differ from self."""
        return LineControl(
            newer.data_bits if newer.data_bits not in (None, self.data_bits) else None,
            newer.parity if newer.parity not in (None, self.parity) else None,
            newer.stop_bits if newer.stop_bits not in (None, self.stop_bits) else None,
        )

    @property
    def complete(self) -> bool:
        return None not in (self.data_bits, self.parity, self.stop_bits)

    @property
    def empty(self) -> bool:
        return self.data_bits is None and self.parity is None and self.stop_bits is None

    def __str__(self) -> str:
        size = "?" if self.data_bits is None else str(self.data_bits)
        par = "?" if self.parity is None else _PARITY_LETTER[self.parity]
        stop = "?" if self.stop_bits is None else _STOP_TEXT[self.stop_bits]
        return f"{size}-{par}-{stop}"


class FlowMode(enum.IntEnum):
    """Flow control of one direction of a serial line."""

    NONE = 0
    XON_XOFF = 1
    #: RTS/CTS.
    HARDWARE = 2


_FLOW_TEXT = {FlowMode.NONE: "none", FlowMode.XON_XOFF: "xon/xoff", FlowMode.HARDWARE: "rts/cts"}


@dataclass(frozen=True, slots=True)
class Flow:
    """A port's flow control per direction; each field may be absent (None).

    `outbound`: what the port obeys before it transmits (CTS, or an XOFF it
    receives); `inbound`: how it throttles what it receives (RTS, or XOFF it
    sends). RFC 2217 sets them separately. Not part of hub4com's message set:
    this hub applies RFC 2217 flow-control requests to real ports.
    """

    outbound: FlowMode | None = None
    inbound: FlowMode | None = None

    def merged(self, newer: Flow) -> Flow:
        """Return self with the fields present in `newer` replaced."""
        return Flow(
            self.outbound if newer.outbound is None else newer.outbound,
            self.inbound if newer.inbound is None else newer.inbound,
        )

    def __str__(self) -> str:
        out = "?" if self.outbound is None else _FLOW_TEXT[self.outbound]
        inb = "?" if self.inbound is None else _FLOW_TEXT[self.inbound]
        return out if out == inb else f"out {out}, in {inb}"


@dataclass(frozen=True, slots=True)
class LineData:
    """Bytes read from or to be written to a port (LINE_DATA)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Connect:
    """Read: the port came up/went down. Written: a connection-counter request."""

    on: bool


@dataclass(frozen=True, slots=True)
class ModemStatus:
    """CTS/DSR/RI/DCD (MSR bits) in `value`; `mask` says which bits are meaningful."""

    value: int
    mask: int


@dataclass(frozen=True, slots=True)
class LineStatus:
    """LSR bits in `value`; `mask` says which bits are meaningful."""

    value: int
    mask: int


@dataclass(frozen=True, slots=True)
class SetPins:
    """Drive output pins (Pin word) in `value`, only the bits in `mask`."""

    value: int
    mask: int


@dataclass(frozen=True, slots=True)
class RemoteBaudStatus:
    """Baud rate the remote application asked for (RBR_STATUS)."""

    baud: int


@dataclass(frozen=True, slots=True)
class RemoteLcStatus:
    """Line control the remote application asked for (RLC_STATUS)."""

    lc: LineControl


@dataclass(frozen=True, slots=True)
class RemoteFlowStatus:
    """Flow control the remote application asked for (an RFC 2217 client's request)."""

    flow: Flow


@dataclass(frozen=True, slots=True)
class LocalBaudStatus:
    """The port's own current baud rate (LBR_STATUS)."""

    baud: int


@dataclass(frozen=True, slots=True)
class LocalLcStatus:
    """The port's own current line control (LLC_STATUS)."""

    lc: LineControl


@dataclass(frozen=True, slots=True)
class LocalFlowStatus:
    """The port's own current flow control."""

    flow: Flow


@dataclass(frozen=True, slots=True)
class BreakStatus:
    """A break condition started or ended (BREAK_STATUS)."""

    on: bool


@dataclass(frozen=True, slots=True)
class SetBaud:
    """Set the port's baud rate (SET_BR)."""

    baud: int


@dataclass(frozen=True, slots=True)
class SetLineControl:
    """Set the fields of the port's line control that are present (SET_LC)."""

    lc: LineControl


@dataclass(frozen=True, slots=True)
class SetFlow:
    """Set the directions of the port's flow control that are present."""

    flow: Flow


@dataclass(frozen=True, slots=True)
class SetLsr:
    """Report LSR bits to an emulated port's peer (SET_LSR)."""

    value: int
    mask: int


@dataclass(frozen=True, slots=True)
class FlowControl:
    """XOFF (True) / XON (False); travels the flow-control routes (ADD_XOFF_XON)."""

    xoff: bool


@dataclass(frozen=True, slots=True)
class PurgeTxIn:
    """A peer asked to purge the transmit buffer (PURGE_TX_IN)."""


@dataclass(frozen=True, slots=True)
class PurgeTx:
    """Purge the port's transmit queue (PURGE_TX)."""


Message = (
    LineData
    | Connect
    | ModemStatus
    | LineStatus
    | SetPins
    | RemoteBaudStatus
    | RemoteLcStatus
    | RemoteFlowStatus
    | LocalBaudStatus
    | LocalLcStatus
    | LocalFlowStatus
    | BreakStatus
    | SetBaud
    | SetLineControl
    | SetFlow
    | SetLsr
    | FlowControl
    | PurgeTxIn
    | PurgeTx
)
