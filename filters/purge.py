"""Purge mapping filter: purge this port's transmit queue when a peer asks.

Usage: purge

Attach it to the port to be purged (OUT method), for example the serial port
behind an RFC 2217 server, so that a client's PURGE-DATA (transmit) flushes the
real port. Each purge request from a source becomes PURGE_TX for this port; any
other PURGE_TX sent to this port is dropped. It has no options.
"""

from __future__ import annotations

from typing import ClassVar

from hub.caps import In, Out
from hub.filter import Filter, FilterContext
from hub.messages import Message, PurgeTx, PurgeTxIn

__all__ = ["PurgeFilter"]

_PURGE_TX = PurgeTx()


class PurgeFilter(Filter):
    NAME: ClassVar[str] = "purge"
    DESCRIPTION: ClassVar[str] = "Purge mapping filter"
    USAGE: ClassVar[str] = __doc__ or ""

    def __init__(self, ctx: FilterContext, config: object) -> None:
        super().__init__(ctx, config)
        self.needs = In.PURGE_TX_IN
        self.sends = Out.PURGE_TX

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        t = type(msg)
        if t is PurgeTx:
            return
        out.append(msg)
        if t is PurgeTxIn:
            out.append(_PURGE_TX)
