"""Baudrate and line control mapping filter: set this port's baud rate and line control.

Usage: linectl [options]

Attach it to the port whose settings are driven (OUT method). It turns the baud
rate and line control reported by the sources into settings for this port, and
drops any other baud rate, line control (or, with --flow, flow control) setting
sent to this port, since it owns them. With neither option the default is --br=remote --lc=remote.

Values of <s> (only the first letter counts):
  l[ocal]   the source port's own settings (a real serial port's, or what an
            RFC 2217 server confirmed)
  r[emote]  what the application on the far side asked for (a com0com peer's
            settings via escape mode, or an RFC 2217 client's requests)

Options:
  --br=<s>    Set the baud rate from the local or remote baud rate of the sources.
  --lc=<s>    Set the line control (data bits, parity, stop bits) from the local or
              remote line control of the sources.
  --flow=<s>  Set the flow control (none, XON/XOFF, RTS/CTS per direction) from the
              local or remote flow control of the sources: how an RFC 2217 client's
              flow-control request reaches a serial port (--flow=remote there), and
              the port's answer gets back (--flow=local on the TCP port). Not in
              hub4com, and not part of the default.

Example (one command line): copy data, baud rate and line control between two ports.
  hub4com --create-filter=escparse --add-filters=0,1:escparse
    /dev/ttyS0 /dev/ttyS1 --create-filter=linectl --add-filters=0,1:linectl
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from hub.caps import In, Out
from hub.errors import UsageError
from hub.filter import Filter, FilterContext
from hub.messages import (
    LocalBaudStatus,
    LocalFlowStatus,
    LocalLcStatus,
    Message,
    RemoteBaudStatus,
    RemoteFlowStatus,
    RemoteLcStatus,
    SetBaud,
    SetFlow,
    SetLineControl,
)

__all__ = ["LineCtlConfig", "LineCtlFilter"]

_Convert = Callable[[Any], Message]

#: option -> (setting it owns, capability it sends, {first letter: (status type, need, convert)})
_OPTIONS: dict[str, tuple[type, Out, dict[str, tuple[type, In, _Convert]]]] = {
    "--br": (
        SetBaud,
        Out.SET_BR,
        {
            "l": (LocalBaudStatus, In.LBR, lambda m: SetBaud(m.baud)),
            "r": (RemoteBaudStatus, In.RBR, lambda m: SetBaud(m.baud)),
        },
    ),
    "--lc": (
        SetLineControl,
        Out.SET_LC,
        {
            "l": (LocalLcStatus, In.LLC, lambda m: SetLineControl(m.lc)),
            "r": (RemoteLcStatus, In.RLC, lambda m: SetLineControl(m.lc)),
        },
    ),
    "--flow": (
        SetFlow,
        Out.SET_FLOW,
        {
            "l": (LocalFlowStatus, In.LFLOW, lambda m: SetFlow(m.flow)),
            "r": (RemoteFlowStatus, In.RFLOW, lambda m: SetFlow(m.flow)),
        },
    ),
}

_DEFAULT = {"--br": "remote", "--lc": "remote"}


@dataclass(frozen=True, slots=True)
class LineCtlConfig:
    #: Status message type -> how to turn it into a setting.
    convert: dict[type, _Convert]
    #: Setting message types this filter owns (others' are dropped).
    owned: frozenset[type]
    needs: In
    sends: Out


class LineCtlFilter(Filter):
    NAME: ClassVar[str] = "linectl"
    DESCRIPTION: ClassVar[str] = "Baudrate and line control mapping filter"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> LineCtlConfig:
        """Parse --br/--lc. Raises UsageError for a value not starting with l or r."""
        given = {k: str(v) for k, v in options.items() if k in _OPTIONS} or _DEFAULT
        convert: dict[type, _Convert] = {}
        owned: set[type] = set()
        needs, sends = In.NONE, Out.NONE
        for option, value in given.items():
            setting, out_cap, choices = _OPTIONS[option]
            choice = choices.get(value[:1].lower())
            if choice is None:
                raise UsageError(f"{option}={value}", "Invalid value (expected l[ocal] or r[emote])")
            status, in_cap, conv = choice
            convert[status] = conv
            owned.add(setting)
            needs |= in_cap
            sends |= out_cap
        return LineCtlConfig(convert, frozenset(owned), needs, sends)

    def __init__(self, ctx: FilterContext, config: LineCtlConfig) -> None:
        super().__init__(ctx, config)
        self._convert = config.convert
        self._owned = config.owned
        self.needs = config.needs
        self.sends = config.sends

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        t = type(msg)
        if t in self._owned:
            return
        out.append(msg)
        conv = self._convert.get(t)
        if conv is not None:
            out.append(conv(msg))
