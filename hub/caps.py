"""Capabilities: who provides which input signal, who accepts which output.

This replaces hub4com's GET_IN_OPTS/SET_OUT_OPTS bit protocol (spec 2.5).
Each driver port and filter declares, as plain attributes:

* ``provides: In``  input signals it can generate towards the hub;
* ``needs: In``     input signals it consumes from its sources;
* ``sends: Out``    output requests it sends towards its port (OUT side);
* ``accepts: Out``  output requests it can carry out or translate.

The hub resolves them once before start-up (`hub.negotiate`): for each port the
provider nearest the hub wins; afterwards ``wanted`` on a provider holds what
somebody consumes, and ``offered`` on an acceptor holds what somebody sends.
Whatever nobody provides or accepts is warned about once, in plain words.
"""

from __future__ import annotations

import enum

from .messages import Lsr, Msr, Pin

__all__ = ["In", "Out", "describe_in", "describe_out"]


class In(enum.IntFlag):
    """Input signals. Bits 0-7 are MSR bits, bits 8-15 LSR bits."""

    NONE = 0
    CTS = Msr.CTS
    DSR = Msr.DSR
    RI = Msr.RI
    DCD = Msr.DCD
    LSR_OE = Lsr.OE << 8
    LSR_PE = Lsr.PE << 8
    LSR_FE = Lsr.FE << 8
    LSR_BI = Lsr.BI << 8
    LSR_FIFOERR = Lsr.FIFOERR << 8
    RBR = 1 << 16
    RLC = 1 << 17
    BREAK = 1 << 18
    PURGE_TX_IN = 1 << 19
    LBR = 1 << 20
    LLC = 1 << 21
    LFLOW = 1 << 22
    RFLOW = 1 << 23
    MODEM = CTS | DSR | RI | DCD
    LSR = LSR_OE | LSR_PE | LSR_FE | LSR_BI | LSR_FIFOERR

    @classmethod
    def from_msr(cls, msr: int) -> In:
        return cls(msr & 0xF0)

    @classmethod
    def from_lsr(cls, lsr: int) -> In:
        return cls((lsr & 0x9E) << 8)

    @property
    def msr(self) -> int:
        """The MSR bits in this set."""
        return int(self) & 0xF0

    @property
    def lsr(self) -> int:
        """The LSR bits in this set."""
        return (int(self) >> 8) & 0xFF


class Out(enum.IntFlag):
    """Output requests. Bits 0-15 are Pin bits, bits 16-23 LSR bits."""

    NONE = 0
    DTR = Pin.DTR
    RTS = Pin.RTS
    OUT1 = Pin.OUT1
    OUT2 = Pin.OUT2
    BREAK = Pin.BREAK
    CTS = Pin.CTS
    DSR = Pin.DSR
    RI = Pin.RI
    DCD = Pin.DCD
    LSR_OE = Lsr.OE << 16
    LSR_PE = Lsr.PE << 16
    LSR_FE = Lsr.FE << 16
    LSR_BI = Lsr.BI << 16
    LSR_FIFOERR = Lsr.FIFOERR << 16
    SET_BR = 1 << 24
    SET_LC = 1 << 25
    PURGE_TX = 1 << 26
    SET_FLOW = 1 << 27
    MODEM = CTS | DSR | RI | DCD
    LSR = LSR_OE | LSR_PE | LSR_FE | LSR_BI | LSR_FIFOERR

    @classmethod
    def from_pins(cls, pins: int) -> Out:
        return cls(pins & 0xF10F)

    @classmethod
    def from_lsr(cls, lsr: int) -> Out:
        return cls((lsr & 0x9E) << 16)

    @property
    def pins(self) -> int:
        """The Pin bits in this set."""
        return int(self) & 0xFFFF

    @property
    def lsr(self) -> int:
        """The LSR bits in this set."""
        return (int(self) >> 16) & 0xFF


_IN_WORDS = {
    In.CTS: "CTS",
    In.DSR: "DSR",
    In.RI: "RI",
    In.DCD: "DCD",
    In.LSR_OE: "overrun errors",
    In.LSR_PE: "parity errors",
    In.LSR_FE: "framing errors",
    In.LSR_BI: "break indications",
    In.LSR_FIFOERR: "FIFO errors",
    In.RBR: "remote baud rate",
    In.RLC: "remote line control",
    In.BREAK: "break state",
    In.PURGE_TX_IN: "purge requests",
    In.LBR: "local baud rate",
    In.LLC: "local line control",
    In.LFLOW: "local flow control",
    In.RFLOW: "remote flow control",
}

_OUT_WORDS = {
    Out.DTR: "DTR",
    Out.RTS: "RTS",
    Out.OUT1: "OUT1",
    Out.OUT2: "OUT2",
    Out.BREAK: "BREAK",
    Out.CTS: "CTS",
    Out.DSR: "DSR",
    Out.RI: "RI",
    Out.DCD: "DCD",
    Out.LSR_OE: "LSR overrun",
    Out.LSR_PE: "LSR parity",
    Out.LSR_FE: "LSR framing",
    Out.LSR_BI: "LSR break",
    Out.LSR_FIFOERR: "LSR FIFO",
    Out.SET_BR: "baud rate",
    Out.SET_LC: "line control",
    Out.PURGE_TX: "purge",
    Out.SET_FLOW: "flow control",
}


def describe_in(caps: In) -> str:
    """Plain words for a set of input signals, e.g. 'CTS, DSR, local baud rate'."""
    return ", ".join(word for bit, word in _IN_WORDS.items() if caps & bit)


def describe_out(caps: Out) -> str:
    """Plain words for a set of output requests."""
    return ", ".join(word for bit, word in _OUT_WORDS.items() if caps & bit)
