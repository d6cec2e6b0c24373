"""Telnet protocol filter (RFC 854), with RFC 2217 serial port control.

Usage: telnet [options]

Options:
  --terminal=<type>         Terminal type sent when the peer asks (RFC 1091).
                            Default UNKNOWN; an empty value refuses the option.
  --comport=<c[lient]|s[erver]|n[o]>
                            RFC 2217 COM-PORT-OPTION. client: the hub plays the
                            serial application and the peer is an access server;
                            server: the hub is the access server in front of a
                            real port; no: plain telnet. Default no.
  --suppress-echo=<y[es]|n[o]>
                            Offer WILL ECHO and WILL SGA at connect, telling the
                            peer not to echo locally. Default no.
  --keep-active=<s>         Send IAC NOP every <s> seconds while connected.
                            Default 0 (never).
  --ascii-cr-padding=<hex>  Bytes, as hex pairs (00, 0A0D), inserted after every
                            CR sent while our BINARY option is off. Default none.

Attach it to a TCP port. A CONNECT read from the port starts a telnet session
and a disconnect ends it; data is discarded while no session exists. In client
mode SET_BR, SET_LC, SET_PIN_STATE (DTR, RTS, BREAK), PURGE_TX and flow control
written to the port become RFC 2217 commands, and the server's replies and
notifications become LBR/LLC status, modem and line status and flow control.
In server mode the client's requests become RBR/RLC status, DSR (from DTR),
CTS (from RTS), break status and purge requests; SET_PIN_STATE (CTS, DSR, RI,
DCD) and SET_LSR written to the port become notifications.

Flow control (RFC 2217 SET-CONTROL none, XON/XOFF, RTS/CTS, per direction)
travels as the remote flow-control request and the local flow-control status;
linectl --flow maps them to the serial port, which applies them. A request the
port cannot do (DCD, DSR, DTR flow control) is answered with the current mode.

An observer (a --read-only port or a tcp-multi session that may not change the
port, see --control) still negotiates; its requests for settings and flow
control are answered with the port's current values, its line requests (DTR,
RTS, BREAK) are acknowledged for its own session and not applied. On a
tcp-multi port every session has its own instance of this filter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub import __version__
from hub.caps import In, Out
from hub.errors import UsageError
from hub.filter import Filter, FilterContext, Timer
from hub.logs import peer_text
from hub.messages import (
    BreakStatus,
    Connect,
    Flow,
    FlowControl,
    FlowMode,
    LineControl,
    LineData,
    LineStatus,
    LocalBaudStatus,
    LocalFlowStatus,
    LocalLcStatus,
    Message,
    ModemStatus,
    Msr,
    Pin,
    PurgeTx,
    PurgeTxIn,
    RemoteBaudStatus,
    RemoteFlowStatus,
    RemoteLcStatus,
    SetBaud,
    SetFlow,
    SetLineControl,
    SetLsr,
    SetPins,
    pins_to_msr,
)

from ._telnet import (
    DATASIZE_TO_WIRE,
    IAC,
    PARITY_TO_WIRE,
    STOPBITS_TO_WIRE,
    WIRE_TO_DATASIZE,
    WIRE_TO_PARITY,
    WIRE_TO_STOPBITS,
    ComPort,
    ComPortActive,
    ComPortCommand,
    Control,
    Purge,
    Role,
    TelnetEngine,
)

__all__ = ["TelnetConfig", "TelnetFilter"]

_Msgs = list[Message]  #: hub messages going on
_Wire = list[bytes]  #: telnet bytes for the peer


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelnetConfig:
    terminal: str = "UNKNOWN"
    comport: Role = Role.NONE
    suppress_echo: bool = False
    keep_active_s: float = 0.0
    cr_padding: bytes = b""


def _choice(arg: str, value: str, words: Mapping[str, Any]) -> Any:
    """Match `value` against the words it may abbreviate (c[lient] ...)."""
    v = value.strip().lower()
    for word, result in words.items():
        if v and word.startswith(v):
            return result
    raise UsageError(arg, f"Invalid value '{value}' (expected {'|'.join(words)})")


_COMPORT_WORDS = {"client": Role.CLIENT, "server": Role.SERVER, "no": Role.NONE}
_YES_NO = {"yes": True, "no": False}


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Setting:
    """One port setting carried by SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE."""

    cmd: ComPort
    field: str | None  #: LineControl field; None for the baud rate
    to_wire: Callable[[Any], int | None]  #: hub value -> wire value (None: cannot say)
    from_wire: Callable[[int], Any]  #: wire value -> hub value (None: query/invalid)
    remote: In  #: server: the client's request, as RBR/RLC status
    local: In  #: client: the server's confirmation, as LBR/LLC status
    out: Out  #: what comes back through OUT with the real value

    def remote_status(self, value: Any) -> Message:
        if self.field is None:
            return RemoteBaudStatus(value)
        return RemoteLcStatus(LineControl(**{self.field: value}))

    def local_status(self, value: Any) -> Message:
        if self.field is None:
            return LocalBaudStatus(value)
        return LocalLcStatus(LineControl(**{self.field: value}))


def _baud_to_wire(baud: int) -> int | None:
    return baud if 0 < baud < 1 << 32 else None


def _baud_from_wire(value: int) -> int | None:
    return value or None


_SETTINGS: Mapping[ComPort, _Setting] = {
    s.cmd: s
    for s in (
        _Setting(ComPort.SET_BAUDRATE, None, _baud_to_wire, _baud_from_wire, In.RBR, In.LBR, Out.SET_BR),
        _Setting(
            ComPort.SET_DATASIZE,
            "data_bits",
            DATASIZE_TO_WIRE.get,
            WIRE_TO_DATASIZE.get,
            In.RLC,
            In.LLC,
            Out.SET_LC,
        ),
        _Setting(
            ComPort.SET_PARITY, "parity", PARITY_TO_WIRE.get, WIRE_TO_PARITY.get, In.RLC, In.LLC, Out.SET_LC
        ),
        _Setting(
            ComPort.SET_STOPSIZE,
            "stop_bits",
            STOPBITS_TO_WIRE.get,
            WIRE_TO_STOPBITS.get,
            In.RLC,
            In.LLC,
            Out.SET_LC,
        ),
    )
}


def _settings_of(msg: SetBaud | SetLineControl) -> dict[ComPort, Any]:
    """The settings a SET_BR/SET_LC message carries, by RFC 2217 command."""
    if type(msg) is SetBaud:
        return {ComPort.SET_BAUDRATE: msg.baud}
    lc = msg.lc  # type: ignore[union-attr]
    fields = {
        ComPort.SET_DATASIZE: lc.data_bits,
        ComPort.SET_PARITY: lc.parity,
        ComPort.SET_STOPSIZE: lc.stop_bits,
    }
    return {cmd: v for cmd, v in fields.items() if v is not None}


@dataclass(frozen=True, slots=True)
class _Line:
    """A line switched by SET-CONTROL: its query/on/off values and hub mappings."""

    name: str
    query: Control
    on: Control
    off: Control
    pin: Pin  #: client: the SET_PIN_STATE bit that drives it
    cap: In  #: server: what the client's setting is provided as
    status: Callable[[bool], Message]  #: server: the message for the client's setting

    def code(self, on: bool) -> Control:
        return self.on if on else self.off


_LINES = (
    _Line(
        "BREAK",
        Control.REQ_BREAK_STATE,
        Control.BREAK_ON,
        Control.BREAK_OFF,
        Pin.BREAK,
        In.BREAK,
        BreakStatus,
    ),
    # DTR becomes DSR so that pinmap --dtr=dsr on the serial side drives the real DTR.
    _Line(
        "DTR",
        Control.REQ_DTR,
        Control.DTR_ON,
        Control.DTR_OFF,
        Pin.DTR,
        In.DSR,
        lambda on: ModemStatus(Msr.DSR if on else 0, Msr.DSR),
    ),
    _Line(
        "RTS",
        Control.REQ_RTS,
        Control.RTS_ON,
        Control.RTS_OFF,
        Pin.RTS,
        In.CTS,
        lambda on: ModemStatus(Msr.CTS if on else 0, Msr.CTS),
    ),
)
#: SET-CONTROL value -> (line, True on / False off / None query).
_LINE_CONTROLS: Mapping[int, tuple[_Line, bool | None]] = {
    code: (line, state)
    for line in _LINES
    for code, state in ((line.query, None), (line.on, True), (line.off, False))
}
_LINE_PINS = Pin.DTR | Pin.RTS | Pin.BREAK


@dataclass(frozen=True, slots=True)
class _FlowCode:
    """The SET-CONTROL values of one direction of flow control."""

    direction: str  #: the Flow field: "outbound" or "inbound"
    query: Control
    codes: Mapping[FlowMode, Control]  #: mode -> its value (also the answer)

    def answer(self, mode: FlowMode | None) -> Control:
        return self.codes[FlowMode.NONE if mode is None else mode]


_FLOW_OUT = _FlowCode(
    "outbound",
    Control.REQ_FLOW_SETTING,
    {
        FlowMode.NONE: Control.USE_NO_FLOW_CONTROL,
        FlowMode.XON_XOFF: Control.USE_SW_FLOW_CONTROL,
        FlowMode.HARDWARE: Control.USE_HW_FLOW_CONTROL,
    },
)
_FLOW_IN = _FlowCode(
    "inbound",
    Control.REQ_FLOW_SETTING_IN,
    {
        FlowMode.NONE: Control.USE_NO_FLOW_CONTROL_IN,
        FlowMode.XON_XOFF: Control.USE_SW_FLOW_CONTROL_IN,
        FlowMode.HARDWARE: Control.USE_HW_FLOW_CONTROL_IN,
    },
)
#: SET-CONTROL flow-control value -> (direction, mode asked for; None: a query or a
#: mode a serial port cannot do (DCD, DSR and DTR flow control), answered with the
#: current mode).
_FLOW_CONTROLS: Mapping[int, tuple[_FlowCode, FlowMode | None]] = {
    **{code: (fc, mode) for fc in (_FLOW_OUT, _FLOW_IN) for mode, code in fc.codes.items()},
    **{fc.query: (fc, None) for fc in (_FLOW_OUT, _FLOW_IN)},
    Control.USE_DCD_FLOW_CONTROL: (_FLOW_OUT, None),
    Control.USE_DSR_FLOW_CONTROL: (_FLOW_OUT, None),
    Control.USE_DTR_FLOW_CONTROL: (_FLOW_IN, None),
}
#: A server's answer to a client's flow-control request -> (direction, mode).
_FLOW_ANSWERS: Mapping[int, tuple[str, FlowMode]] = {
    code: (fc.direction, mode) for fc in (_FLOW_OUT, _FLOW_IN) for mode, code in fc.codes.items()
}

_PROVIDES: Mapping[Role, In] = {
    Role.NONE: In.NONE,
    Role.CLIENT: In.LBR | In.LLC | In.LFLOW | In.LSR | In.MODEM,
    Role.SERVER: In.CTS | In.DSR | In.RBR | In.RLC | In.RFLOW | In.BREAK | In.PURGE_TX_IN,
}
_ACCEPTS: Mapping[Role, Out] = {
    Role.NONE: Out.NONE,
    Role.CLIENT: Out.DTR | Out.RTS | Out.BREAK | Out.SET_BR | Out.SET_LC | Out.SET_FLOW | Out.PURGE_TX,
    Role.SERVER: Out.MODEM | Out.LSR | Out.SET_BR | Out.SET_LC | Out.SET_FLOW,
}

#: Initial masks of a server session (RFC 2217).
_LINESTATE_MASK_INITIAL = 0
_MODEMSTATE_MASK_INITIAL = 255


def _msr_deltas(old: int, new: int) -> int:
    """MSR delta bits for a change of the line bits: DCTS/DDSR/DDCD, TERI on RI off."""
    changed = old ^ new
    return ((changed & ~Msr.RI) | (old & ~new & Msr.RI)) >> 4 & 0x0F


@dataclass(slots=True)
class _Session:
    """What one telnet connection knows; dropped at disconnect."""

    engine: TelnetEngine
    comport: bool = False  #: COM-PORT-OPTION agreed
    line_mask: int = _LINESTATE_MASK_INITIAL
    modem_mask: int = _MODEMSTATE_MASK_INITIAL
    #: server: settings whose answer waits for SET_BR/SET_LC through OUT
    pending: set[ComPort] = field(default_factory=set)
    #: server: flow-control directions whose answer waits for SET_FLOW through OUT
    pending_flow: set[str] = field(default_factory=set)
    #: server: BREAK/DTR/RTS as the client set them (None: never set)
    lines: dict[str, bool] = field(default_factory=dict)
    #: the peer sent FLOWCONTROL-SUSPEND and no RESUME yet
    peer_suspended: bool = False


# --------------------------------------------------------------------------------------
# The filter
# --------------------------------------------------------------------------------------


class TelnetFilter(Filter):
    # Telnet on a TCP port; optionally the RFC 2217 client or access server.
    # (No class docstring: USAGE below is the module docstring.)

    NAME: ClassVar[str] = "telnet"
    DESCRIPTION: ClassVar[str] = "Telnet protocol filter"
    USAGE: ClassVar[str] = __doc__ or ""

    def __init__(self, ctx: FilterContext, config: TelnetConfig):
        super().__init__(ctx, config)
        self.cfg = config
        self.role = config.comport
        self.provides = _PROVIDES[self.role]
        self.accepts = _ACCEPTS[self.role]
        self.log = getattr(ctx, "log", None) or logging.getLogger(__name__)
        self._session: _Session | None = None
        self._timer: Timer | None = None
        # Kept across sessions (replayed by a client, answered from by a server).
        self._known: dict[ComPort, Any] = dict.fromkeys(_SETTINGS)
        #: Client: the value the hub last asked for, per setting (_known is what the
        #: server last said it has; a late answer may differ from the last request),
        #: and how many requests await an answer.
        self._requested: dict[ComPort, Any] = dict.fromkeys(_SETTINGS)
        self._unanswered: dict[ComPort, int] = dict.fromkeys(_SETTINGS, 0)
        self._pins: dict[str, bool] = {}  #: client: BREAK/DTR/RTS as last set by the hub
        #: Flow control: server, what the port does; client, what the server said.
        self._flow = Flow()
        self._flow_requested = Flow()  #: client: what the hub last asked for
        self._msr = 0  #: server: the real port's CTS/DSR/RI/DCD
        self._xoff = 0  #: FlowControl(xoff) count received through OUT
        #: LINE_DATA discarded because no session existed (bytes).
        self.discarded_in = 0
        self.discarded_out = 0

    def __repr__(self) -> str:
        s = self._session
        state = "idle" if s is None else ("comport" if s.comport else "connected")
        return f"<TelnetFilter {self.role.value} on {self.ctx.port_name} {state}>"

    @classmethod
    def configure(cls, options: dict[str, Any], sticky: dict[str, Any]) -> TelnetConfig:
        kw: dict[str, Any] = {}
        if "--terminal" in options:
            terminal = kw["terminal"] = str(options["--terminal"])
            if not terminal.isascii():
                raise UsageError(f"--terminal={terminal}", "Terminal type must be ASCII")
        if "--comport" in options:
            value = options["--comport"]
            kw["comport"] = _choice(f"--comport={value}", value, _COMPORT_WORDS)
        if "--suppress-echo" in options:
            value = options["--suppress-echo"]
            kw["suppress_echo"] = _choice(f"--suppress-echo={value}", value, _YES_NO)
        if "--keep-active" in options:
            value = options["--keep-active"]
            arg = f"--keep-active={value}"
            try:
                seconds = float(value)
            except ValueError:
                raise UsageError(arg, "Invalid number of seconds") from None
            if not 0 <= seconds < float("inf"):
                raise UsageError(arg, "Invalid number of seconds")
            kw["keep_active_s"] = seconds
        if "--ascii-cr-padding" in options:
            value = options["--ascii-cr-padding"]
            try:
                kw["cr_padding"] = bytes.fromhex(value)
            except ValueError:
                raise UsageError(f"--ascii-cr-padding={value}", "Invalid hex pairs") from None
        return TelnetConfig(**kw)

    # ---- life cycle ------------------------------------------------------------------

    def close(self) -> None:
        self._cancel_timer()
        self._session = None

    def _start_session(self, echo: list[Message]) -> None:
        engine = TelnetEngine(
            self.role,
            terminal=self.cfg.terminal,
            suppress_echo=self.cfg.suppress_echo,
            logger=self.log,
        )
        self._session = _Session(engine)
        self.log.debug("%r: session starts", self)
        echo.append(LineData(engine.start()))
        if self.cfg.keep_active_s > 0:
            self._cancel_timer()
            self._timer = self.ctx.call_later(self.cfg.keep_active_s, self._keep_active)

    def _end_session(self, out: list[Message]) -> None:
        s = self._session
        if s is None:
            return
        if s.engine.in_sequence:
            self.log.debug("%r: peer left in the middle of a telnet sequence", self)
        self._session = None
        self._cancel_timer()
        # Let the lines the peer drove drop with the session.
        if self.role is Role.SERVER:
            if In.BREAK in self.wanted:
                out.append(BreakStatus(False))
            mask = self.wanted.msr & (Msr.CTS | Msr.DSR)
            if mask:
                out.append(ModemStatus(0, mask))
        elif self.role is Role.CLIENT and self.wanted.msr:
            out.append(ModemStatus(0, self.wanted.msr))
        if s.peer_suspended:
            out.append(FlowControl(False))
        self.log.debug("%r: session ended", self)

    def _keep_active(self) -> None:
        self._timer = None
        s = self._session
        if s is None:
            return
        self.ctx.send_out([LineData(s.engine.send_nop())])
        self._timer = self.ctx.call_later(self.cfg.keep_active_s, self._keep_active)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- IN: read from the TCP port --------------------------------------------------

    def on_in(self, msg: Message, out: list[Message], echo: list[Message]) -> None:
        kind = type(msg)
        if kind is LineData:
            s = self._session
            data = msg.data  # type: ignore[union-attr]
            if s is None:
                self._discard_in(len(data))
                return
            if IAC not in data and not s.engine.in_sequence:
                out.append(msg)  # nothing telnet in it: pass the same object on
                return
            wire: list[bytes] = []
            for ev in s.engine.feed(data):
                t = type(ev)
                if t is LineData:
                    out.append(ev)  # type: ignore[arg-type]
                elif t is ComPortCommand:
                    self._on_comport(s, ev, out, wire)  # type: ignore[arg-type]
                elif t is ComPortActive:
                    self._on_comport_active(s, ev.active, wire)  # type: ignore[union-attr]
            reply = s.engine.data_to_send() + b"".join(wire)
            if reply:
                echo.append(LineData(reply))
        elif kind is Connect:
            if msg.on:  # type: ignore[union-attr]
                if self._session is not None:
                    self._end_session(out)
                self._start_session(echo)
                out.append(msg)
            else:
                out.append(msg)
                self._end_session(out)
        else:
            out.append(msg)

    def _discard_in(self, n: int) -> None:
        self.discarded_in += n
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("%r: no session, %d bytes read discarded (%d in all)", self, n, self.discarded_in)

    def _on_comport_active(self, s: _Session, active: bool, wire: list[bytes]) -> None:
        s.comport = active
        if not active:
            return
        self.log.debug("%r: COM-PORT-OPTION agreed", self)
        if self.role is Role.SERVER:
            # pyserial never sets a modem mask and needs one notification at once.
            wire.append(s.engine.send_comport(ComPort.NOTIFY_MODEMSTATE, self._msr & s.modem_mask))
        else:
            self._replay(s, wire)

    def _on_comport(self, s: _Session, ev: ComPortCommand, out: _Msgs, wire: _Wire) -> None:
        table = _SERVER_IN if self.role is Role.SERVER else _CLIENT_IN
        table[ev.cmd](self, s, ev.cmd, ev.value, out, wire)

    # Handlers of the peer's commands all take (session, cmd, value, out, wire):
    # hub messages go to `out`, bytes for the peer to `wire`.

    # ---- server: the client's commands -----------------------------------------------

    def _signature_in(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        if value:
            self.log.info("%r: peer signature %s", self, peer_text(value))
        else:
            wire.append(s.engine.send_comport(ComPort.SIGNATURE, self._signature()))

    def _signature(self) -> str:
        return f"hub4com-py {__version__} {self.ctx.port_name}"

    def _srv_setting(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        st = _SETTINGS[cmd]
        wanted = st.from_wire(value)
        known = self._known[cmd]
        if wanted is None and value != 0:
            self.log.debug("%r: %s %r is not valid; answered with the current value", self, cmd.name, value)
        if wanted is not None and wanted != known and not self.ctx.observer:
            if st.remote in self.wanted:
                out.append(st.remote_status(wanted))
                if st.out in self.offered:
                    # Answer with what the real port takes, when SET_BR/SET_LC comes back.
                    self._known[cmd] = None
                    s.pending.add(cmd)
                    return
            self._known[cmd] = wanted
            wire.append(s.engine.send_comport(cmd, value))
        elif known is not None:
            wire.append(s.engine.send_comport(cmd, st.to_wire(known)))
        elif st.out in self.offered:
            s.pending.add(cmd)
        else:
            self.log.debug("%r: %s query not answered: the value is not known", self, cmd.name)

    def _srv_control(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        flow = _FLOW_CONTROLS.get(value)
        if flow is not None:
            self._srv_flow(s, *flow, out, wire)
            return
        entry = _LINE_CONTROLS.get(value)
        if entry is None:
            self.log.debug("%r: SET-CONTROL %r unknown; ignored", self, value)
            return
        line, on = entry
        if on is None:  # a query: the state the client set, off until it sets one
            on = s.lines.get(line.name, False)
        elif s.lines.get(line.name) is not on:
            s.lines[line.name] = on
            if line.cap in self.wanted:
                out.append(line.status(on))
        wire.append(s.engine.send_comport(ComPort.SET_CONTROL, line.code(on)))

    def _srv_flow(self, s: _Session, fc: _FlowCode, mode: FlowMode | None, out: _Msgs, wire: _Wire) -> None:
        """A flow-control request or query. A request that would change the port goes
        to the hub (if somebody there takes it) and is answered with what the port
        then does; an observer's, a query and a mode the port cannot do get the
        current mode (none while nobody said)."""
        known = getattr(self._flow, fc.direction)
        asked = mode is not None and mode != (known or FlowMode.NONE)
        if asked and In.RFLOW in self.wanted and not self.ctx.observer:
            # Values 1-3 are "outbound/both" (pyserial's rtscts and xonxoff set both).
            wanted = Flow(mode, mode) if fc is _FLOW_OUT else Flow(inbound=mode)
            out.append(RemoteFlowStatus(wanted))
            if Out.SET_FLOW in self.offered:
                s.pending_flow.add(fc.direction)
                return
            known = mode  # nobody reports what the port took: it is taken
            self._flow = self._flow.merged(wanted)
        wire.append(s.engine.send_comport(ComPort.SET_CONTROL, fc.answer(known)))

    def _srv_notify_linestate(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        # A poll (not in the RFC): line-state bits are events, none is pending now.
        wire.append(s.engine.send_comport(ComPort.NOTIFY_LINESTATE, 0))

    def _srv_notify_modemstate(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        # A poll (pyserial's poll_modem): always answered.
        wire.append(s.engine.send_comport(ComPort.NOTIFY_MODEMSTATE, self._msr & s.modem_mask))

    def _flow_in(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        """Both roles: the peer's SUSPEND/RESUME pause/resume what feeds this port."""
        suspend = cmd is ComPort.FLOWCONTROL_SUSPEND
        if suspend != s.peer_suspended:
            s.peer_suspended = suspend
            out.append(FlowControl(suspend))

    def _srv_linestate_mask(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        s.line_mask = value
        wire.append(s.engine.send_comport(ComPort.SET_LINESTATE_MASK, value))

    def _srv_modemstate_mask(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        s.modem_mask = value
        wire.append(s.engine.send_comport(ComPort.SET_MODEMSTATE_MASK, value))

    def _srv_purge(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        if value not in (Purge.RX, Purge.TX, Purge.BOTH):
            self.log.debug("%r: PURGE-DATA %r unknown; ignored", self, value)
            return
        if value != Purge.RX and In.PURGE_TX_IN in self.wanted:
            out.append(PurgeTxIn())
        wire.append(s.engine.send_comport(ComPort.PURGE_DATA, value))

    # ---- client: the access server's replies and notifications -----------------------

    def _cli_setting(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        st = _SETTINGS[cmd]
        took = st.from_wire(value)
        if took is None:
            self.log.debug("%r: %s reply %r ignored", self, cmd.name, value)
            return
        self._known[cmd] = took  # what the remote port really has
        self._unanswered[cmd] = max(0, self._unanswered[cmd] - 1)
        if st.local in self.wanted:
            out.append(st.local_status(took))

    def _cli_ack(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        self.log.debug("%r: %s reply %r", self, cmd.name, value)

    def _cli_control(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        """The server's answer to SET-CONTROL: a flow-control mode becomes LFLOW status."""
        answer = _FLOW_ANSWERS.get(value)
        if answer is None:
            self.log.debug("%r: %s reply %r", self, cmd.name, value)
            return
        direction, mode = answer
        took = Flow(**{direction: mode})
        self._flow = self._flow.merged(took)
        if In.LFLOW in self.wanted:
            out.append(LocalFlowStatus(took))

    def _cli_linestate(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        mask = self.wanted.lsr
        if value is not None and value & mask:
            out.append(LineStatus(value & mask, mask))

    def _cli_modemstate(self, s: _Session, cmd: ComPort, value: Any, out: _Msgs, wire: _Wire) -> None:
        mask = self.wanted.msr
        if value is not None and mask:
            out.append(ModemStatus(value, mask))

    def _replay(self, s: _Session, wire: list[bytes]) -> None:
        """Client: COM-PORT was agreed; send everything the hub already asked for."""
        eng = s.engine
        for cmd, value in self._requested.items():
            self._unanswered[cmd] = 0
            if value is not None:
                self._cli_request(eng, cmd, value, wire)
        for fc in (_FLOW_OUT, _FLOW_IN):
            mode = getattr(self._flow_requested, fc.direction)
            if mode is not None:
                wire.append(eng.send_comport(ComPort.SET_CONTROL, fc.codes[mode]))
        for line in _LINES:
            on = self._pins.get(line.name)
            if on is not None:
                wire.append(eng.send_comport(ComPort.SET_CONTROL, line.code(on)))
        if self.wanted.lsr:  # the server reports nothing until a mask is set
            wire.append(eng.send_comport(ComPort.SET_LINESTATE_MASK, self.wanted.lsr))
        if self._xoff:
            wire.append(eng.send_comport(ComPort.FLOWCONTROL_SUSPEND))

    def _send_setting(self, eng: TelnetEngine, cmd: ComPort, value: Any, wire: list[bytes]) -> None:
        code = _SETTINGS[cmd].to_wire(value)
        if code is None:
            self.log.warning("%r: %s %r cannot be sent over RFC 2217", self, cmd.name, value)
        else:
            wire.append(eng.send_comport(cmd, code))

    # ---- OUT: written to the TCP port ------------------------------------------------

    def on_out(self, msg: Message, src: int, out: list[Message]) -> None:
        kind = type(msg)
        if kind is LineData:
            s = self._session
            data = msg.data  # type: ignore[union-attr]
            if s is None:
                self.discarded_out += len(data)
                if self.log.isEnabledFor(logging.DEBUG):
                    self.log.debug(
                        "%r: no session, %d bytes to write discarded (%d in all)",
                        self,
                        len(data),
                        self.discarded_out,
                    )
                return
            encoded = s.engine.send_data(data, self.cfg.cr_padding)
            out.append(msg if encoded is data else LineData(encoded))
            return
        if self.role is Role.NONE:
            out.append(msg)
            return
        wire: list[bytes] = []
        handler = _SERVER_OUT.get(kind) if self.role is Role.SERVER else _CLIENT_OUT.get(kind)
        if handler is None:
            out.append(msg)
        else:
            handler(self, msg, out, wire)
        if wire:
            out.append(LineData(b"".join(wire)))

    def _active(self) -> _Session | None:
        """The session if COM-PORT commands may be sent now."""
        s = self._session
        return s if s is not None and s.comport else None

    def _out_flow(self, msg: FlowControl, out: _Msgs, wire: _Wire) -> None:
        """Both roles: first XOFF -> FLOWCONTROL-SUSPEND, last XON -> RESUME.

        The message also goes on to the driver, which pauses reading the socket.
        """
        out.append(msg)
        before = self._xoff
        self._xoff = before + 1 if msg.xoff else max(0, before - 1)
        if (before == 0) == (self._xoff == 0):
            return
        s = self._active()
        if s is not None:
            cmd = ComPort.FLOWCONTROL_SUSPEND if self._xoff else ComPort.FLOWCONTROL_RESUME
            wire.append(s.engine.send_comport(cmd))

    # server

    def _srv_out_setting(self, msg: SetBaud | SetLineControl, out: _Msgs, wire: _Wire) -> None:
        s = self._session  # a pending request is answered even if COM-PORT was never agreed
        for cmd, value in _settings_of(msg).items():
            self._known[cmd] = value
            if s is not None and cmd in s.pending:
                s.pending.discard(cmd)
                self._send_setting(s.engine, cmd, value, wire)

    def _srv_out_flow(self, msg: SetFlow, out: _Msgs, wire: _Wire) -> None:
        """What the port's flow control now is: answer the requests waiting for it."""
        self._flow = self._flow.merged(msg.flow)
        s = self._session
        for fc in (_FLOW_OUT, _FLOW_IN):
            mode = getattr(msg.flow, fc.direction)
            if mode is not None and s is not None and fc.direction in s.pending_flow:
                s.pending_flow.discard(fc.direction)
                wire.append(s.engine.send_comport(ComPort.SET_CONTROL, fc.answer(mode)))

    def _srv_out_pins(self, msg: SetPins, out: _Msgs, wire: _Wire) -> None:
        mask = pins_to_msr(msg.mask)
        if mask:
            old = self._msr
            new = (old & ~mask) | (pins_to_msr(msg.value) & mask)
            self._msr = new
            s = self._active()
            if new != old and s is not None:
                notify = (new | _msr_deltas(old, new)) & s.modem_mask
                if notify:
                    wire.append(s.engine.send_comport(ComPort.NOTIFY_MODEMSTATE, notify))
        rest = msg.mask & ~(Pin.CTS | Pin.DSR | Pin.RI | Pin.DCD)
        if rest:
            out.append(msg if rest == msg.mask else SetPins(msg.value & rest, rest))

    def _srv_out_lsr(self, msg: SetLsr, out: _Msgs, wire: _Wire) -> None:
        s = self._active()
        if s is not None:
            bits = msg.value & msg.mask & s.line_mask
            if bits:
                wire.append(s.engine.send_comport(ComPort.NOTIFY_LINESTATE, bits))

    # client

    def _cli_out_setting(self, msg: SetBaud | SetLineControl, out: _Msgs, wire: _Wire) -> None:
        s = self._active()
        for cmd, value in _settings_of(msg).items():
            # A repeat of the last request is skipped while it awaits its answer or
            # once the server has the value; after a late answer to an earlier
            # request, or a refusal, the server has something else and it goes again.
            if value == self._requested[cmd] and (self._unanswered[cmd] or value == self._known[cmd]):
                continue
            self._requested[cmd] = value
            if s is not None:
                self._cli_request(s.engine, cmd, value, wire)

    def _cli_request(self, eng: TelnetEngine, cmd: ComPort, value: Any, wire: _Wire) -> None:
        self._requested[cmd] = value
        self._unanswered[cmd] += 1
        self._send_setting(eng, cmd, value, wire)

    def _cli_out_flow(self, msg: SetFlow, out: _Msgs, wire: _Wire) -> None:
        """Ask the server for the flow control the hub sets (only what changed)."""
        s = self._active()
        for fc in (_FLOW_OUT, _FLOW_IN):
            mode = getattr(msg.flow, fc.direction)
            if mode is None or mode == getattr(self._flow_requested, fc.direction):
                continue
            self._flow_requested = self._flow_requested.merged(Flow(**{fc.direction: mode}))
            if s is not None:
                wire.append(s.engine.send_comport(ComPort.SET_CONTROL, fc.codes[mode]))

    def _cli_out_pins(self, msg: SetPins, out: _Msgs, wire: _Wire) -> None:
        s = self._active()
        for line in _LINES:
            if msg.mask & line.pin:
                on = bool(msg.value & line.pin)
                if self._pins.get(line.name) is not on:
                    self._pins[line.name] = on
                    if s is not None:
                        wire.append(s.engine.send_comport(ComPort.SET_CONTROL, line.code(on)))
        rest = msg.mask & ~_LINE_PINS
        if rest:
            out.append(msg if rest == msg.mask else SetPins(msg.value & rest, rest))

    def _cli_out_purge(self, msg: PurgeTx, out: _Msgs, wire: _Wire) -> None:
        s = self._active()
        if s is not None:
            wire.append(s.engine.send_comport(ComPort.PURGE_DATA, Purge.TX))


_Handler = Callable[..., None]

#: Server: the client's command -> handler.
_SERVER_IN: Mapping[ComPort, _Handler] = {
    ComPort.SIGNATURE: TelnetFilter._signature_in,
    **dict.fromkeys(_SETTINGS, TelnetFilter._srv_setting),
    ComPort.SET_CONTROL: TelnetFilter._srv_control,
    ComPort.NOTIFY_LINESTATE: TelnetFilter._srv_notify_linestate,
    ComPort.NOTIFY_MODEMSTATE: TelnetFilter._srv_notify_modemstate,
    ComPort.FLOWCONTROL_SUSPEND: TelnetFilter._flow_in,
    ComPort.FLOWCONTROL_RESUME: TelnetFilter._flow_in,
    ComPort.SET_LINESTATE_MASK: TelnetFilter._srv_linestate_mask,
    ComPort.SET_MODEMSTATE_MASK: TelnetFilter._srv_modemstate_mask,
    ComPort.PURGE_DATA: TelnetFilter._srv_purge,
}

#: Client: the access server's reply or notification -> handler.
_CLIENT_IN: Mapping[ComPort, _Handler] = {
    ComPort.SIGNATURE: TelnetFilter._signature_in,
    **dict.fromkeys(_SETTINGS, TelnetFilter._cli_setting),
    ComPort.SET_CONTROL: TelnetFilter._cli_control,
    ComPort.NOTIFY_LINESTATE: TelnetFilter._cli_linestate,
    ComPort.NOTIFY_MODEMSTATE: TelnetFilter._cli_modemstate,
    ComPort.FLOWCONTROL_SUSPEND: TelnetFilter._flow_in,
    ComPort.FLOWCONTROL_RESUME: TelnetFilter._flow_in,
    ComPort.SET_LINESTATE_MASK: TelnetFilter._cli_ack,
    ComPort.SET_MODEMSTATE_MASK: TelnetFilter._cli_ack,
    ComPort.PURGE_DATA: TelnetFilter._cli_ack,
}

#: Server: hub message written to the port -> handler(self, msg, out, wire).
_SERVER_OUT: Mapping[type, _Handler] = {
    SetBaud: TelnetFilter._srv_out_setting,
    SetLineControl: TelnetFilter._srv_out_setting,
    SetPins: TelnetFilter._srv_out_pins,
    SetLsr: TelnetFilter._srv_out_lsr,
    SetFlow: TelnetFilter._srv_out_flow,
    FlowControl: TelnetFilter._out_flow,
}

#: Client: hub message written to the port -> handler(self, msg, out, wire).
_CLIENT_OUT: Mapping[type, _Handler] = {
    SetBaud: TelnetFilter._cli_out_setting,
    SetLineControl: TelnetFilter._cli_out_setting,
    SetPins: TelnetFilter._cli_out_pins,
    PurgeTx: TelnetFilter._cli_out_purge,
    SetFlow: TelnetFilter._cli_out_flow,
    FlowControl: TelnetFilter._out_flow,
}
