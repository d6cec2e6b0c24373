"""Pinouts mapping filter: drive this port's output pins from its sources' signals.

Usage: pinmap [options]

Attach it to the port whose outputs are driven (OUT method). Each wire option
of the form --<out>=[!]<in> drives one output from one input; `!` inverts. One
input can drive several outputs; each output can be wired only once. With no
wire option at all the default is --rts=cts --dtr=dsr (a null-modem cross).

Inputs <in>:
  cts, dsr, dcd, ring  the modem status reported by the sources
  break                the break state reported by the sources
  connect              on while this port's connection counter is above 0
                       (CONNECT messages routed to this port count up and down)
  on                   always on: --dtr=on keeps DTR up, --dtr=!on keeps it down

The inputs are per port, not per source: sources overwrite each other. At start
the filter sets every driven pin from the initial inputs (all off except on).
Whenever an input changes, the outputs wired to it are set again. Pin settings
for the outputs this filter drives are removed from any other SET_PIN_STATE
sent to this port. The cts, dsr, ring and dcd outputs drive the inputs of the
application on an emulated port (escinsert, telnet server); data is a gate.

Options:
  --rts=[!]<in>    Drive RTS.
  --dtr=[!]<in>    Drive DTR.
  --out1=[!]<in>   Drive OUT1.
  --out2=[!]<in>   Drive OUT2.
  --cts=[!]<in>    Drive CTS (emulated ports).
  --dsr=[!]<in>    Drive DSR (emulated ports).
  --ring=[!]<in>   Drive RI (emulated ports).
  --dcd=[!]<in>    Drive DCD (emulated ports).
  --break=[!]<in>  Drive the break state.
  --data=[!]<in>   Gate: data written to this port is dropped while <in> is off.

Example (one command line): raise DTR on /dev/ttyS0 while a TCP client is connected.
  hub4com --create-filter=pinmap:"--dtr=connect" --add-filters=0:pinmap
    /dev/ttyS0 --use-driver=tcp *5555
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from hub.caps import In, Out
from hub.errors import UsageError
from hub.filter import Filter, FilterContext
from hub.messages import BreakStatus, Connect, LineData, Message, ModemStatus, Msr, Pin, SetPins

__all__ = ["PinMapConfig", "PinMapFilter"]


class _Input(enum.IntFlag):
    """The filter's input word: MSR line bits, then break, connect and on."""

    CTS = Msr.CTS
    DSR = Msr.DSR
    RI = Msr.RI
    DCD = Msr.DCD
    BREAK = 1 << 8
    CONNECT = 1 << 9
    ON = 1 << 10


_MODEM_INPUTS = _Input.CTS | _Input.DSR | _Input.RI | _Input.DCD

#: Input names as the option values spell them.
_INPUTS: dict[str, _Input] = {
    "cts": _Input.CTS,
    "dsr": _Input.DSR,
    "dcd": _Input.DCD,
    "ring": _Input.RI,
    "break": _Input.BREAK,
    "connect": _Input.CONNECT,
    "on": _Input.ON,
}

#: Output options and the pins they drive; "--data" is the gate (no pin).
_OUTPUTS: dict[str, Pin | None] = {
    "--rts": Pin.RTS,
    "--dtr": Pin.DTR,
    "--out1": Pin.OUT1,
    "--out2": Pin.OUT2,
    "--cts": Pin.CTS,
    "--dsr": Pin.DSR,
    "--ring": Pin.RI,
    "--dcd": Pin.DCD,
    "--break": Pin.BREAK,
    "--data": None,
}

_DEFAULT = {"--rts": "cts", "--dtr": "dsr"}
_INPUT_LIST = "cts, dsr, dcd, ring, break, connect or on"


@dataclass(frozen=True, slots=True)
class _Wire:
    """The pins one input drives: `mask` all of them, `high` those set while it is on."""

    input: _Input
    mask: int
    high: int


@dataclass(frozen=True, slots=True)
class PinMapConfig:
    wires: tuple[_Wire, ...]
    #: Pins this filter drives.
    pins: int
    #: Every input in use.
    inputs: _Input
    #: The data gate: (input, inverted), or None.
    gate: tuple[_Input, bool] | None


class PinMapFilter(Filter):
    NAME: ClassVar[str] = "pinmap"
    DESCRIPTION: ClassVar[str] = "Pinouts mapping filter"
    USAGE: ClassVar[str] = __doc__ or ""

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> PinMapConfig:
        """Parse the wire options. Raises UsageError naming a bad option."""
        wired = {k: v for k, v in options.items() if k in _OUTPUTS} or _DEFAULT
        mask: dict[_Input, int] = {}
        high: dict[_Input, int] = {}
        gate = None
        for option, value in wired.items():
            name = str(value)
            inverted = name.startswith("!")
            if inverted:
                name = name[1:]
            inp = _INPUTS.get(name.lower())
            if inp is None:
                raise UsageError(f"{option}={value}", f"Unknown input {name!r} (expected {_INPUT_LIST})")
            pin = _OUTPUTS[option]
            if pin is None:
                gate = (inp, inverted)
                mask.setdefault(inp, 0)
                continue
            mask[inp] = mask.get(inp, 0) | pin
            if not inverted:
                high[inp] = high.get(inp, 0) | pin
        wires = tuple(_Wire(inp, m, high.get(inp, 0)) for inp, m in mask.items() if m)
        pins = 0
        for w in wires:
            pins |= w.mask
        inputs = _Input(0)
        for inp in mask:
            inputs |= inp
        return PinMapConfig(wires, pins, inputs, gate)

    def __init__(self, ctx: FilterContext, config: PinMapConfig) -> None:
        super().__init__(ctx, config)
        self._wires = config.wires
        self._pins = config.pins
        self._modem = int(config.inputs & _MODEM_INPUTS)
        self._uses_break = bool(config.inputs & _Input.BREAK)
        self._uses_connect = bool(config.inputs & _Input.CONNECT)
        self._gate = config.gate
        self.needs = In.from_msr(self._modem) | (In.BREAK if self._uses_break else In.NONE)
        self.sends = Out.from_pins(self._pins)
        #: The current input word (_Input bits).
        self.inputs = int(_Input.ON)
        #: CONNECT(TRUE) minus CONNECT(FALSE) routed to this port, never below 0.
        self.connections = 0
        #: Bytes the data gate has dropped (the user asked for it; counted, not logged).
        self.gated_bytes = 0

    # ---- hub callbacks --------------------------------------------------------

    def start(self, out: list[Message]) -> None:
        """Set every driven pin from the initial inputs."""
        self._insert_pins(-1, out)

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        t = type(msg)
        if t is LineData:
            if self._gate is None or self._gate_open():
                out.append(msg)
            else:
                assert isinstance(msg, LineData)
                self.gated_bytes += len(msg.data)
        elif t is ModemStatus:
            assert isinstance(msg, ModemStatus)
            out.append(msg)
            m = msg.mask & self._modem
            if m:
                self._set_inputs((self.inputs & ~m) | (msg.value & m), out)
        elif t is BreakStatus:
            assert isinstance(msg, BreakStatus)
            out.append(msg)
            if self._uses_break:
                self._set_bit(_Input.BREAK, msg.on, out)
        elif t is Connect:
            assert isinstance(msg, Connect)
            out.append(msg)
            if msg.on:
                self.connections += 1
            elif self.connections > 0:
                self.connections -= 1
            else:
                self.ctx.log.debug("%r: CONNECT(FALSE) with no connection counted", self)
            if self._uses_connect:
                self._set_bit(_Input.CONNECT, self.connections > 0, out)
        elif t is SetPins:
            assert isinstance(msg, SetPins)
            if not msg.mask & self._pins:
                out.append(msg)
            elif msg.mask & ~self._pins:
                out.append(SetPins(msg.value & ~self._pins, msg.mask & ~self._pins))
            # else: every pin it sets is ours; nothing is left to send
        else:
            out.append(msg)

    # ---- internals --------------------------------------------------------------

    def _gate_open(self) -> bool:
        assert self._gate is not None
        inp, inverted = self._gate
        return bool(self.inputs & inp) != inverted

    def _set_bit(self, bit: _Input, on: bool, out: list[Message]) -> None:
        self._set_inputs(self.inputs | bit if on else self.inputs & ~bit, out)

    def _set_inputs(self, inputs: int, out: list[Message]) -> None:
        changed = inputs ^ self.inputs
        self.inputs = inputs
        if changed:
            self._insert_pins(changed, out)

    def _insert_pins(self, changed: int, out: list[Message]) -> None:
        """Append a SetPins for the outputs wired to the `changed` inputs."""
        mask = value = 0
        for w in self._wires:
            if changed & w.input:
                mask |= w.mask
                value |= w.high if self.inputs & w.input else w.mask & ~w.high
        if mask:
            out.append(SetPins(value, mask))
