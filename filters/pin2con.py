"""Connect or disconnect on changing of line or modem state filter.

Usage: pin2con [options]

Attach it to the source port (IN method). It discards the CONNECT messages the
port itself reports and reports CONNECT(TRUE) when the chosen signal comes on
and CONNECT(FALSE) when it goes off instead (the signal starts as off). Routed
to a TCP client port, this connects while, say, DSR is up.

Options:
  --connect=[!]<s>         The signal: cts, dsr, dcd, ring or break; dsr when not
                           given. A leading ! inverts it.
  --delay-disconnect=<ms>  Report a disconnect only when the signal stays off for
                           this many milliseconds; if it comes back on sooner,
                           nothing is reported. 0 (the default) reports at once.

Example (one command line): connect to 192.0.2.1:1111 while DSR of /dev/ttyS0 is on.
  hub4com --create-filter=pin2con --add-filters=0:pin2con
    /dev/ttyS0 --use-driver=tcp 192.0.2.1:1111
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from hub.caps import In
from hub.errors import UsageError
from hub.filter import Filter, FilterContext, Timer
from hub.messages import BreakStatus, Connect, Message, ModemStatus, Msr

__all__ = ["Pin2ConConfig", "Pin2ConFilter"]

#: Signal names -> the MSR bit, or None for the break state.
_SIGNALS: dict[str, Msr | None] = {
    "cts": Msr.CTS,
    "dsr": Msr.DSR,
    "dcd": Msr.DCD,
    "ring": Msr.RI,
    "break": None,
}

_CONNECT = Connect(True)
_DISCONNECT = Connect(False)


@dataclass(frozen=True, slots=True)
class Pin2ConConfig:
    #: MSR bit of the signal; 0 means the break state.
    msr: int
    inverted: bool
    delay_s: float


class Pin2ConFilter(Filter):
    NAME: ClassVar[str] = "pin2con"
    DESCRIPTION: ClassVar[str] = "Connect or disconnect on changing of line or modem state filter"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> Pin2ConConfig:
        """Parse --connect and --delay-disconnect. Raises UsageError for a bad value."""
        value = str(options.get("--connect", "dsr"))
        name = value[1:] if value.startswith("!") else value
        if name.lower() not in _SIGNALS:
            raise UsageError(
                f"--connect={value}", f"Unknown signal {name!r} (expected cts, dsr, dcd, ring or break)"
            )
        msr = _SIGNALS[name.lower()]
        delay = str(options.get("--delay-disconnect", "0"))
        if not (delay.isascii() and delay.isdigit()):
            raise UsageError(
                f"--delay-disconnect={delay}", "Invalid delay (expected a number of milliseconds)"
            )
        return Pin2ConConfig(int(msr or 0), value.startswith("!"), int(delay) / 1000)

    def __init__(self, ctx: FilterContext, config: Pin2ConConfig) -> None:
        super().__init__(ctx, config)
        self._msr = config.msr
        self._inverted = config.inverted
        self._delay_s = config.delay_s
        self.needs = In.from_msr(config.msr) if config.msr else In.BREAK
        #: What we last reported: CONNECT(TRUE) (True) or CONNECT(FALSE)/nothing (False).
        self.connected = False
        self._timer: Timer | None = None

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        t = type(msg)
        if t is Connect:
            return  # replaced by the ones derived from the signal
        out.append(msg)
        if t is ModemStatus:
            assert isinstance(msg, ModemStatus)
            if msg.mask & self._msr:
                self._signal(bool(msg.value & self._msr) != self._inverted, out)
        elif t is BreakStatus and not self._msr:
            assert isinstance(msg, BreakStatus)
            self._signal(msg.on != self._inverted, out)

    def close(self) -> None:
        self._cancel()

    def _signal(self, on: bool, out: list[Message]) -> None:
        if on:
            self._cancel()  # came back within the delay: nothing to report
            if not self.connected:
                self.connected = True
                out.append(_CONNECT)
        elif self.connected and self._timer is None:
            if self._delay_s > 0:
                self._timer = self.ctx.call_later(self._delay_s, self._delayed_disconnect)
            else:
                self.connected = False
                out.append(_DISCONNECT)

    def _delayed_disconnect(self) -> None:
        self._timer = None
        self.connected = False
        self.ctx.send_in([_DISCONNECT])

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
