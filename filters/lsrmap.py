"""LSR mapping filter: report the sources' line errors to this port.

Usage: lsrmap

Attach it to the port that reports line status to its peer (OUT method), for
example the TCP port of an RFC 2217 server, where it feeds NOTIFY-LINESTATE. It
asks the sources for overrun, parity, framing, break and FIFO errors, and for
each line status carrying any of them it sends SET_LSR with those bits to this
port. It has no options.
"""

from __future__ import annotations

from typing import ClassVar

from hub.caps import In, Out
from hub.filter import Filter, FilterContext
from hub.messages import LineStatus, Lsr, Message, SetLsr

__all__ = ["LsrMapFilter"]

#: The LSR bits this filter maps.
LSR_ERRORS = int(Lsr.OE | Lsr.PE | Lsr.FE | Lsr.BI | Lsr.FIFOERR)


class LsrMapFilter(Filter):
    NAME: ClassVar[str] = "lsrmap"
    DESCRIPTION: ClassVar[str] = "LSR mapping filter"
    USAGE: ClassVar[str] = __doc__ or ""

    def __init__(self, ctx: FilterContext, config: object) -> None:
        super().__init__(ctx, config)
        self.needs = In.from_lsr(LSR_ERRORS)
        self.sends = Out.from_lsr(LSR_ERRORS)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        out.append(msg)
        if type(msg) is LineStatus:
            bits = msg.value & msg.mask & LSR_ERRORS
            if bits:
                out.append(SetLsr(bits, bits))
