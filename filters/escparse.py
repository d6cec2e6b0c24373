"""Escaped data stream parsing filter: read signals carried in-band in the data.

Usage: escparse [options]

Attach it to the port that carries a com0com escape stream (IN method). The
stream is the data with every 0xFF doubled as FF 00, plus records for line
status (FF 01 <lsr> <char>, FF 02 <lsr>), modem status (FF 03 <msr>), the
remote baud rate (FF 10 <4 bytes, little-endian>) and the remote line control
(FF 11 <size> <parity> <stop>). The filter takes the records out of the data
and reports them as modem status, line status, break state, remote baud rate
and remote line control, as far as the filters and ports fed by this port ask
for them. A record split across reads is put together again.

Where such a stream comes from:
  yes  (the default) The serial driver is asked to insert the records, as
       hub4com does on Windows with com0com and some serial drivers. No Linux
       serial driver can: the filter then logs this once and passes everything
       through unchanged, so the port's own signals (the modem lines of a
       serial port, the baud rate and line control of a pty) reach the filters
       that use them. Command lines written for hub4com keep working.
  no   The data already is an escape stream, for example from a TCP peer
       running com2tcp-esc (escinsert on its side). It is parsed, and the
       port's own modem status, line status, break state, remote baud rate and
       remote line control are dropped, since the stream now reports them.

Options:
  --request-esc-mode=<m>  yes or no (see above). Default yes.

Example (one command line): the CTS and DSR of a TCP peer running com2tcp-esc
drive RTS and DTR of /dev/ttyS0.
  hub4com --create-filter=pinmap --create-filter=escparse:"--request-esc-mode=no"
    /dev/ttyS0 --add-filters=0:pinmap --add-filters=1:escparse --use-driver=tcp *7000
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hub.caps import In
from hub.errors import UsageError
from hub.filter import Filter, FilterContext
from hub.messages import (
    BreakStatus,
    Connect,
    LineData,
    LineStatus,
    Message,
    ModemStatus,
    RemoteBaudStatus,
    RemoteLcStatus,
)

from ._esc import ESC, PROVIDES, EscParser

__all__ = ["EscParseConfig", "EscParseFilter"]

#: The port's own statuses of these kinds are dropped while the stream is parsed: it
#: carries the whole MSR and LSR bytes, break, remote baud rate and line control
#: (hub4com strips every MSR and LSR mask bit, leaving nothing).
_REPLACED_TYPES = frozenset({ModemStatus, LineStatus, RemoteBaudStatus, RemoteLcStatus, BreakStatus})


@dataclass(frozen=True, slots=True)
class EscParseConfig:
    #: True: ask the driver for escape mode (impossible on Linux: pass through).
    request_esc_mode: bool = True


class EscParseFilter(Filter):
    NAME: ClassVar[str] = "escparse"
    DESCRIPTION: ClassVar[str] = "Escaped data stream parsing filter"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> EscParseConfig:
        """Parse --request-esc-mode. Raises UsageError for a value other than yes or no."""
        value = options.get("--request-esc-mode")
        if value is None:
            return EscParseConfig()
        choice = {"yes": True, "no": False}.get(str(value).lower())
        if choice is None:
            raise UsageError(f"--request-esc-mode={value}", "Invalid value (expected yes or no)")
        return EscParseConfig(choice)

    def __init__(self, ctx: FilterContext, config: EscParseConfig) -> None:
        super().__init__(ctx, config)
        #: The parser, or None when passing through (escape mode requested from the driver).
        self.parser: EscParser | None = None
        self._wanted = In.NONE
        if config.request_esc_mode:
            ctx.log.info(
                "%s: escape mode is not available on Linux; %s passes data and the port's signals unchanged",
                ctx.port_name,
                ctx.name,
            )
        else:
            self.parser = EscParser(In.NONE, ctx.port_name)
            self.provides = PROVIDES

    # The hub sets `wanted` after negotiation; the parser reports only that.
    @property
    def wanted(self) -> In:
        return self._wanted

    @wanted.setter
    def wanted(self, value: In) -> None:
        self._wanted = value
        if self.parser is not None:
            self.parser.set_wanted(value)

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        parser = self.parser
        if parser is None:
            out.append(msg)
            return
        t = type(msg)
        if t is LineData:
            assert isinstance(msg, LineData)
            if ESC not in msg.data and not parser.pending:
                out.append(msg)
            else:
                out.extend(parser.feed(msg.data))
        elif t in _REPLACED_TYPES:
            return
        else:
            if t is Connect:
                parser.reset()  # a new connection starts a new stream
            out.append(msg)
