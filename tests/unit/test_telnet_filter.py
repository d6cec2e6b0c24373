"""The telnet filter: options, sessions, data, every RFC 2217 command in both roles."""

from __future__ import annotations

import docopt
import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st
from serial.rfc2217 import PortManager

from filters._telnet import ComPort, Control, Role, encode_comport
from filters.telnet import TelnetConfig, TelnetFilter
from hub import __version__
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import (
    BreakStatus,
    Connect,
    FlowControl,
    LineControl,
    LineData,
    LineStatus,
    LocalBaudStatus,
    LocalLcStatus,
    Lsr,
    ModemStatus,
    Msr,
    Parity,
    Pin,
    PurgeTx,
    PurgeTxIn,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    SetLineControl,
    SetLsr,
    SetPins,
    StopBits,
)
from hub.options import option_names
from hub.testing import FakeContext, make_filter, run_in, run_out

WILL, WONT, DO, DONT = 251, 252, 253, 254
NOP = b"\xff\xf1"
MODEM_PINS = Pin.CTS | Pin.DSR | Pin.RI | Pin.DCD


def neg(cmd: int, opt: int) -> bytes:
    return bytes((255, cmd, opt))


def client_cmd(cmd: ComPort, value: object = None) -> bytes:
    return encode_comport(cmd, value, server=False)  # type: ignore[arg-type]


def server_cmd(cmd: ComPort, value: object = None) -> bytes:
    return encode_comport(cmd, value, server=True)  # type: ignore[arg-type]


def joined(msgs: list) -> bytes:
    assert all(type(m) is LineData for m in msgs), msgs
    return b"".join(m.data for m in msgs)


def feed(f: TelnetFilter, data: bytes) -> tuple[list, bytes]:
    """Bytes read from the port: (messages on to the hub, bytes echoed to the peer)."""
    out, echo = run_in(f, [LineData(data)])
    return out, joined(echo)


def write(f: TelnetFilter, *msgs: object) -> tuple[list, bytes]:
    """Messages written to the port: (non-data messages passed on, bytes for the peer)."""
    out = run_out(f, list(msgs))  # type: ignore[arg-type]
    return [m for m in out if type(m) is not LineData], joined([m for m in out if type(m) is LineData])


def make(
    role: str = "no",
    argv: tuple[str, ...] = (),
    wanted: In = In.NONE,
    offered: Out = Out.NONE,
    connect: bool = True,
    agree: bool = True,
) -> tuple[TelnetFilter, FakeContext]:
    """A filter in `role` with a session; `agree` lets the peer agree to COM-PORT."""
    ctx = FakeContext(port_name="TCP(1)", name="telnet")
    f = make_filter(TelnetFilter, [f"--comport={role}", *argv], ctx=ctx)
    assert isinstance(f, TelnetFilter)
    f.wanted, f.offered = wanted, offered
    if connect:
        run_in(f, [Connect(True)])
        if agree and f.role is not Role.NONE:
            feed(f, neg(WILL if f.role is Role.SERVER else DO, 44))
    return f, ctx


# ---- options and capabilities ------------------------------------------------------------


def test_usage_parses() -> None:
    names = option_names(TelnetFilter.USAGE)
    assert names == {"--terminal", "--comport", "--suppress-echo", "--keep-active", "--ascii-cr-padding"}
    after = docopt.parse_docstring_sections(TelnetFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert TelnetFilter.has_in() and TelnetFilter.has_out()
    assert TelnetFilter.NAME == "telnet"


CONFIG_CASES = [
    ([], TelnetConfig()),
    (["--terminal=vt100"], TelnetConfig(terminal="vt100")),
    (["--terminal="], TelnetConfig(terminal="")),
    (["--comport=c"], TelnetConfig(comport=Role.CLIENT)),
    (["--comport=Client"], TelnetConfig(comport=Role.CLIENT)),
    (["--comport=s"], TelnetConfig(comport=Role.SERVER)),
    (["--comport=serv"], TelnetConfig(comport=Role.SERVER)),
    (["--comport=no"], TelnetConfig(comport=Role.NONE)),
    (["--suppress-echo=y"], TelnetConfig(suppress_echo=True)),
    (["--suppress-echo=NO"], TelnetConfig(suppress_echo=False)),
    (["--keep-active=30"], TelnetConfig(keep_active_s=30.0)),
    (["--keep-active=0.5"], TelnetConfig(keep_active_s=0.5)),
    (["--keep-active=0"], TelnetConfig(keep_active_s=0.0)),
    # hex decoded properly (hub4com turned A-F into 0-5)
    (["--ascii-cr-padding=0A"], TelnetConfig(cr_padding=b"\n")),
    (["--ascii-cr-padding=000aFf"], TelnetConfig(cr_padding=b"\x00\x0a\xff")),
    (["--ascii-cr-padding="], TelnetConfig(cr_padding=b"")),
]


@pytest.mark.parametrize(("argv", "config"), CONFIG_CASES)
def test_options(argv: list[str], config: TelnetConfig) -> None:
    assert make_filter(TelnetFilter, argv).config == config


BAD_OPTIONS = [
    "--comport=x",
    "--comport=",
    "--comport=clients",
    "--suppress-echo=maybe",
    "--keep-active=soon",
    "--keep-active=-1",
    "--keep-active=inf",
    "--keep-active=nan",
    "--ascii-cr-padding=0G",
    "--ascii-cr-padding=0",
    "--terminal=\u00e9",
    "--trace",
]


@pytest.mark.parametrize("arg", BAD_OPTIONS)
def test_bad_options(arg: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(TelnetFilter, [arg])
    assert exc.value.arg == arg


@pytest.mark.parametrize(
    ("role", "provides", "accepts"),
    [
        ("no", In.NONE, Out.NONE),
        (
            "client",
            In.LBR | In.LLC | In.LFLOW | In.LSR | In.MODEM,
            Out.DTR | Out.RTS | Out.BREAK | Out.SET_BR | Out.SET_LC | Out.SET_FLOW | Out.PURGE_TX,
        ),
        (
            "server",
            In.CTS | In.DSR | In.RBR | In.RLC | In.RFLOW | In.BREAK | In.PURGE_TX_IN,
            Out.MODEM | Out.LSR | Out.SET_BR | Out.SET_LC | Out.SET_FLOW,
        ),
    ],
)
def test_capabilities(role: str, provides: In, accepts: Out) -> None:
    f, _ = make(role, connect=False)
    assert (f.provides, f.accepts, f.needs, f.sends) == (provides, accepts, In.NONE, Out.NONE)


# ---- sessions and data ---------------------------------------------------------------------

CONNECT_CASES = [
    ("no", [], neg(WILL, 0) + neg(DO, 0)),
    ("no", ["--suppress-echo=yes"], neg(WILL, 0) + neg(DO, 0) + neg(WILL, 1) + neg(WILL, 3)),
    (
        "server",
        ["--suppress-echo=yes"],
        neg(DO, 44) + neg(WILL, 0) + neg(DO, 0) + neg(WILL, 1) + neg(WILL, 3),
    ),
    ("client", [], neg(WILL, 44) + neg(WILL, 0) + neg(DO, 0)),
]


@pytest.mark.parametrize(("role", "argv", "start"), CONNECT_CASES)
def test_negotiation_at_connect(role: str, argv: list[str], start: bytes) -> None:
    f, _ = make(role, tuple(argv), connect=False)
    out, echo = run_in(f, [Connect(True)])
    assert out == [Connect(True)]
    assert joined(echo) == start


def test_terminal_type_answered() -> None:
    f, _ = make("no", ("--terminal=vt100",))
    assert feed(f, neg(DO, 24) + b"\xff\xfa\x18\x01\xff\xf0") == (
        [],
        neg(WILL, 24) + b"\xff\xfa\x18\x00vt100\xff\xf0",
    )


def test_data_discarded_without_session() -> None:
    f, _ = make("no", connect=False)
    assert run_in(f, [LineData(b"abc")]) == ([], [])
    assert run_out(f, [LineData(b"hello")]) == []
    assert (f.discarded_in, f.discarded_out) == (3, 5)
    run_in(f, [Connect(True)])
    run_in(f, [Connect(False)])
    assert run_out(f, [LineData(b"x")]) == []
    assert f.discarded_out == 6


@pytest.mark.parametrize("role", ["no", "client", "server"])
def test_data_with_iac_both_ways(role: str) -> None:
    f, _ = make(role)
    plain = LineData(b"plain")
    assert run_out(f, [plain])[0] is plain  # no 0xFF: the same object goes on
    assert run_in(f, [plain]) == ([plain], [])
    assert run_in(f, [plain])[0][0] is plain
    assert run_out(f, [LineData(b"a\xffb\xff")]) == [LineData(b"a\xff\xffb\xff\xff")]
    assert feed(f, b"a\xff\xffb") == ([LineData(b"a\xffb")], b"")
    # an IAC pair and a command split over reads
    assert feed(f, b"x\xff") == ([LineData(b"x")], b"")
    assert feed(f, b"\xff\xff") == ([LineData(b"\xff")], b"")
    assert feed(f, b"\xf1y") == ([LineData(b"y")], b"")
    big = bytes(range(256)) * 1000
    wire = run_out(f, [LineData(big)])[0].data
    assert len(wire) == len(big) + 1000
    assert feed(f, wire) == ([LineData(big)], b"")


def test_cr_padding_until_binary() -> None:
    f, _ = make("no", ("--ascii-cr-padding=0A",))
    assert write(f, LineData(b"a\rb")) == ([], b"a\r\nb")
    feed(f, neg(DO, 0))  # the peer agrees to our BINARY
    assert write(f, LineData(b"a\rb")) == ([], b"a\rb")


def test_other_messages_pass() -> None:
    f, _ = make("no")
    msgs = [SetBaud(9600), SetPins(1, 1), FlowControl(True), PurgeTx(), Connect(True)]
    assert run_out(f, msgs) == msgs
    assert run_in(f, [ModemStatus(0x10, 0x10)]) == ([ModemStatus(0x10, 0x10)], [])


def test_hostile_input_survived() -> None:
    f, _ = make("server", wanted=In.BREAK | In.DSR)
    # truncated IAC, unknown option, unknown command, stray SE, an endless subnegotiation
    out, _ = feed(f, b"\xff\xfb\x63\xff\x10\xff\xf0\xff\xfa\x2c\x00" + b"x" * 10000)
    assert out == []
    assert f._session is not None and f._session.engine.in_sequence
    out, _ = run_in(f, [Connect(False)])  # disconnect mid-sequence
    assert out == [Connect(False), BreakStatus(False), ModemStatus(0, Msr.DSR)]
    run_in(f, [Connect(True)])
    assert feed(f, b"fresh") == ([LineData(b"fresh")], b"")


@given(st.binary(max_size=400), st.sampled_from(["no", "client", "server"]))
def test_arbitrary_bytes_never_raise(data: bytes, role: str) -> None:
    f, _ = make(role, wanted=In.LBR | In.LLC | In.LSR | In.MODEM | In.RBR | In.BREAK, offered=Out.SET_BR)
    for i in range(0, len(data), 37):
        feed(f, data[i : i + 37])
    run_in(f, [Connect(False)])


# ---- keep-active ---------------------------------------------------------------------------


def test_keep_active() -> None:
    f, ctx = make("no", ("--keep-active=5",), connect=False)
    ctx.advance(20)
    assert ctx.sent_out == []  # no session, no timer
    run_in(f, [Connect(True)])
    assert ctx.pending_timers == 1
    ctx.advance(4.9)
    assert ctx.sent_out == []
    ctx.advance(0.1)
    assert ctx.sent_out == [LineData(NOP)]
    ctx.advance(10)
    assert ctx.sent_out == [LineData(NOP)] * 3
    run_in(f, [Connect(False)])
    assert ctx.pending_timers == 0
    ctx.advance(60)
    assert len(ctx.sent_out) == 3
    run_in(f, [Connect(True)])
    f.close()
    assert ctx.pending_timers == 0


def test_no_keep_active_by_default() -> None:
    _, ctx = make("no")
    assert ctx.pending_timers == 0


# ---- server mode ---------------------------------------------------------------------------

EVERYTHING = In.CTS | In.DSR | In.RBR | In.RLC | In.BREAK | In.PURGE_TX_IN
FOLLOWS = Out.SET_BR | Out.SET_LC


def test_server_notifies_modem_state_when_comport_agreed() -> None:
    f, _ = make("server", connect=False)
    write(f, SetPins(Pin.CTS | Pin.DCD, MODEM_PINS))
    run_in(f, [Connect(True)])
    # pyserial never sets a modem mask: the first notification comes unprompted
    assert feed(f, neg(WILL, 44)) == ([], server_cmd(ComPort.NOTIFY_MODEMSTATE, 0x90))
    g, _ = make("server", connect=False)
    run_in(g, [Connect(True)])
    assert feed(g, neg(WILL, 44)) == ([], server_cmd(ComPort.NOTIFY_MODEMSTATE, 0))


def test_server_signature() -> None:
    f, _ = make("server")
    sig = f"hub4com-py {__version__} TCP(1)".encode()
    assert feed(f, client_cmd(ComPort.SIGNATURE, b"")) == ([], server_cmd(ComPort.SIGNATURE, sig))
    assert feed(f, client_cmd(ComPort.SIGNATURE, b"pyserial")) == ([], b"")


# (wanted, offered, request, value, messages, reply value or None)
SETTING_CASES = [
    # nobody follows: echo, and remember for queries
    (In.NONE, Out.NONE, ComPort.SET_BAUDRATE, 9600, [], 9600),
    (In.NONE, Out.NONE, ComPort.SET_BAUDRATE, 0, [], None),  # a query, nothing known
    (In.NONE, FOLLOWS, ComPort.SET_BAUDRATE, 0, [], None),  # a query, answered later
    # somebody wants RBR but SET_BR never comes back: report and echo
    (In.RBR, Out.NONE, ComPort.SET_BAUDRATE, 9600, [RemoteBaudStatus(9600)], 9600),
    # deferred: the answer comes with SET_BR
    (In.RBR, Out.SET_BR, ComPort.SET_BAUDRATE, 9600, [RemoteBaudStatus(9600)], None),
    (In.NONE, Out.NONE, ComPort.SET_DATASIZE, 7, [], 7),
    (In.RLC, Out.SET_LC, ComPort.SET_DATASIZE, 7, [RemoteLcStatus(LineControl(data_bits=7))], None),
    (In.RLC, Out.NONE, ComPort.SET_PARITY, 5, [RemoteLcStatus(LineControl(parity=Parity.SPACE))], 5),
    (
        In.RLC,
        Out.NONE,
        ComPort.SET_STOPSIZE,
        3,
        [RemoteLcStatus(LineControl(stop_bits=StopBits.ONE_POINT_FIVE))],
        3,
    ),
    (In.RLC, Out.NONE, ComPort.SET_DATASIZE, 9, [], None),  # invalid: treated as a query
    (In.RLC, Out.NONE, ComPort.SET_PARITY, 6, [], None),
]


@pytest.mark.parametrize(("wanted", "offered", "cmd", "value", "messages", "reply"), SETTING_CASES)
def test_server_settings(
    wanted: In, offered: Out, cmd: ComPort, value: int, messages: list, reply: int | None
) -> None:
    f, _ = make("server", wanted=wanted, offered=offered)
    expected = b"" if reply is None else server_cmd(cmd, reply)
    assert feed(f, client_cmd(cmd, value)) == (messages, expected)


def test_server_echoed_setting_answers_queries() -> None:
    f, _ = make("server")
    feed(f, client_cmd(ComPort.SET_BAUDRATE, 57600))
    assert feed(f, client_cmd(ComPort.SET_BAUDRATE, 0)) == ([], server_cmd(ComPort.SET_BAUDRATE, 57600))


def test_server_deferred_baud_reply_has_the_real_value() -> None:
    f, _ = make("server", wanted=In.RBR, offered=Out.SET_BR)
    assert feed(f, client_cmd(ComPort.SET_BAUDRATE, 250000)) == ([RemoteBaudStatus(250000)], b"")
    # the real port took another rate; a query meanwhile waits too
    assert feed(f, client_cmd(ComPort.SET_BAUDRATE, 0)) == ([], b"")
    assert write(f, SetBaud(230400)) == ([], server_cmd(ComPort.SET_BAUDRATE, 230400))
    assert write(f, SetBaud(115200)) == ([], b"")  # spontaneous changes are not reported
    assert feed(f, client_cmd(ComPort.SET_BAUDRATE, 0)) == ([], server_cmd(ComPort.SET_BAUDRATE, 115200))
    # the same value again is answered at once
    assert feed(f, client_cmd(ComPort.SET_BAUDRATE, 115200)) == ([], server_cmd(ComPort.SET_BAUDRATE, 115200))


def test_server_deferred_reply_without_negotiation() -> None:
    """Some clients talk COM-PORT without negotiating it: their requests are still answered."""
    f, _ = make("server", wanted=In.RBR, offered=Out.SET_BR, agree=False)
    assert feed(f, client_cmd(ComPort.SET_BAUDRATE, 4800)) == ([RemoteBaudStatus(4800)], b"")
    assert write(f, SetBaud(4800)) == ([], server_cmd(ComPort.SET_BAUDRATE, 4800))
    assert write(f, SetPins(Pin.CTS, Pin.CTS)) == ([], b"")  # but no notifications


def test_server_pyserial_open_sequence() -> None:
    """pyserial sends the four settings in one segment and waits for all four answers."""
    f, _ = make("server", wanted=EVERYTHING, offered=FOLLOWS)
    settings = [
        (ComPort.SET_BAUDRATE, 9600),
        (ComPort.SET_DATASIZE, 8),
        (ComPort.SET_PARITY, 1),
        (ComPort.SET_STOPSIZE, 1),
    ]
    request = b"".join(client_cmd(cmd, v) for cmd, v in settings)
    answers = b"".join(server_cmd(cmd, v) for cmd, v in settings)
    out, echo = feed(f, request)
    assert out == [
        RemoteBaudStatus(9600),
        RemoteLcStatus(LineControl(data_bits=8)),
        RemoteLcStatus(LineControl(parity=Parity.NONE)),
        RemoteLcStatus(LineControl(stop_bits=StopBits.ONE)),
    ]
    assert echo == b""
    # linectl --br=local --lc=local brings back what the serial port now has
    _, replies = write(f, SetBaud(9600), SetLineControl(LineControl(8, Parity.NONE, StopBits.ONE)))
    assert replies == answers
    # the same settings again (pyserial re-sends all four on any change) are answered at once
    out, echo = feed(f, request)
    assert (out, echo) == ([], answers)


# SET-CONTROL value -> (messages when wanted, reply)
CONTROL_CASES = [
    (Control.REQ_FLOW_SETTING, [], Control.USE_NO_FLOW_CONTROL),
    (Control.USE_NO_FLOW_CONTROL, [], Control.USE_NO_FLOW_CONTROL),
    (Control.USE_SW_FLOW_CONTROL, [], Control.USE_NO_FLOW_CONTROL),
    (Control.USE_HW_FLOW_CONTROL, [], Control.USE_NO_FLOW_CONTROL),
    (Control.USE_DCD_FLOW_CONTROL, [], Control.USE_NO_FLOW_CONTROL),
    (Control.USE_DSR_FLOW_CONTROL, [], Control.USE_NO_FLOW_CONTROL),
    (Control.REQ_FLOW_SETTING_IN, [], Control.USE_NO_FLOW_CONTROL_IN),
    (Control.USE_NO_FLOW_CONTROL_IN, [], Control.USE_NO_FLOW_CONTROL_IN),
    (Control.USE_SW_FLOW_CONTROL_IN, [], Control.USE_NO_FLOW_CONTROL_IN),
    (Control.USE_HW_FLOW_CONTROL_IN, [], Control.USE_NO_FLOW_CONTROL_IN),
    (Control.USE_DTR_FLOW_CONTROL, [], Control.USE_NO_FLOW_CONTROL_IN),
    (Control.REQ_BREAK_STATE, [], Control.BREAK_OFF),
    (Control.BREAK_ON, [BreakStatus(True)], Control.BREAK_ON),
    (Control.BREAK_OFF, [BreakStatus(False)], Control.BREAK_OFF),
    (Control.REQ_DTR, [], Control.DTR_OFF),
    (Control.DTR_ON, [ModemStatus(Msr.DSR, Msr.DSR)], Control.DTR_ON),
    (Control.DTR_OFF, [ModemStatus(0, Msr.DSR)], Control.DTR_OFF),
    (Control.REQ_RTS, [], Control.RTS_OFF),
    (Control.RTS_ON, [ModemStatus(Msr.CTS, Msr.CTS)], Control.RTS_ON),
    (Control.RTS_OFF, [ModemStatus(0, Msr.CTS)], Control.RTS_OFF),
]


@pytest.mark.parametrize(("value", "messages", "reply"), CONTROL_CASES)
@pytest.mark.parametrize("wanted", [True, False])
def test_server_set_control(value: Control, messages: list, reply: Control, wanted: bool) -> None:
    f, _ = make("server", wanted=EVERYTHING if wanted else In.NONE)
    expected = (messages if wanted else [], server_cmd(ComPort.SET_CONTROL, reply))
    assert feed(f, client_cmd(ComPort.SET_CONTROL, value)) == expected
    assert [v for v in Control if v not in {c[0] for c in CONTROL_CASES}] == []


def test_server_set_control_state_and_queries() -> None:
    f, _ = make("server", wanted=EVERYTHING)
    for value, query in ((Control.DTR_ON, Control.REQ_DTR), (Control.RTS_ON, Control.REQ_RTS)):
        feed(f, client_cmd(ComPort.SET_CONTROL, value))
        assert feed(f, client_cmd(ComPort.SET_CONTROL, query)) == ([], server_cmd(ComPort.SET_CONTROL, value))
        # the same setting again is answered but not reported twice
        assert feed(f, client_cmd(ComPort.SET_CONTROL, value)) == ([], server_cmd(ComPort.SET_CONTROL, value))
    feed(f, client_cmd(ComPort.SET_CONTROL, Control.BREAK_ON))
    assert feed(f, client_cmd(ComPort.SET_CONTROL, Control.REQ_BREAK_STATE)) == (
        [],
        server_cmd(ComPort.SET_CONTROL, Control.BREAK_ON),
    )
    assert feed(f, client_cmd(ComPort.SET_CONTROL, 20)) == ([], b"")  # unknown value: ignored


def test_server_flow_control_from_client() -> None:
    f, _ = make("server")
    assert feed(f, client_cmd(ComPort.FLOWCONTROL_SUSPEND)) == ([FlowControl(True)], b"")
    assert feed(f, client_cmd(ComPort.FLOWCONTROL_SUSPEND)) == ([], b"")
    assert feed(f, client_cmd(ComPort.FLOWCONTROL_RESUME)) == ([FlowControl(False)], b"")
    assert feed(f, client_cmd(ComPort.FLOWCONTROL_RESUME)) == ([], b"")


@pytest.mark.parametrize(
    ("value", "wanted", "messages", "reply"),
    [
        (1, True, [], 1),
        (2, True, [PurgeTxIn()], 2),
        (3, True, [PurgeTxIn()], 3),
        (2, False, [], 2),
        (4, True, [], None),
        (0, True, [], None),
    ],
)
def test_server_purge(value: int, wanted: bool, messages: list, reply: int | None) -> None:
    f, _ = make("server", wanted=In.PURGE_TX_IN if wanted else In.NONE)
    expected = b"" if reply is None else server_cmd(ComPort.PURGE_DATA, reply)
    assert feed(f, client_cmd(ComPort.PURGE_DATA, value)) == (messages, expected)


def test_server_modem_notifications_and_mask() -> None:
    f, _ = make("server")
    notify = lambda v: server_cmd(ComPort.NOTIFY_MODEMSTATE, v)  # noqa: E731
    # CTS on: state and delta bit; pins other than the modem lines go on to the port
    assert write(f, SetPins(Pin.CTS | Pin.DTR, Pin.CTS | Pin.DTR)) == (
        [SetPins(Pin.DTR, Pin.DTR)],
        notify(0x11),
    )
    assert write(f, SetPins(Pin.CTS, Pin.CTS)) == ([], b"")  # no change
    assert write(f, SetPins(Pin.RI, Pin.RI)) == ([], notify(0x50))  # RI rising: no delta
    assert write(f, SetPins(0, Pin.RI)) == ([], notify(0x14))  # RI trailing edge
    assert write(f, SetPins(Pin.DSR | Pin.DCD, Pin.DSR | Pin.DCD)) == ([], notify(0xBA))
    # a poll is always answered with the masked state
    assert feed(f, client_cmd(ComPort.NOTIFY_MODEMSTATE)) == ([], notify(0xB0))
    # mask: only CTS and DCD lines, no delta bits; an all-zero result is not sent
    assert feed(f, client_cmd(ComPort.SET_MODEMSTATE_MASK, 0x90)) == (
        [],
        server_cmd(ComPort.SET_MODEMSTATE_MASK, 0x90),
    )
    assert write(f, SetPins(0, Pin.DSR)) == ([], notify(0x90))
    assert write(f, SetPins(0, Pin.CTS | Pin.DCD)) == ([], b"")
    feed(f, client_cmd(ComPort.SET_MODEMSTATE_MASK, 0))
    assert write(f, SetPins(MODEM_PINS, MODEM_PINS)) == ([], b"")
    assert feed(f, client_cmd(ComPort.NOTIFY_MODEMSTATE)) == ([], notify(0))


def test_server_modem_mask_resets_with_the_session() -> None:
    f, _ = make("server")
    feed(f, client_cmd(ComPort.SET_MODEMSTATE_MASK, 0))
    run_in(f, [Connect(False)])
    write(f, SetPins(Pin.CTS, Pin.CTS))  # no session: remembered only
    run_in(f, [Connect(True)])
    assert feed(f, neg(WILL, 44)) == ([], server_cmd(ComPort.NOTIFY_MODEMSTATE, 0x10))


def test_server_line_state_and_mask() -> None:
    f, _ = make("server")
    lsr = SetLsr(Lsr.BI | Lsr.FE, 0xFF)
    assert write(f, lsr) == ([], b"")  # initial mask 0: nothing reported
    assert feed(f, client_cmd(ComPort.SET_LINESTATE_MASK, 0x10)) == (
        [],
        server_cmd(ComPort.SET_LINESTATE_MASK, 0x10),
    )
    assert write(f, lsr) == ([], server_cmd(ComPort.NOTIFY_LINESTATE, 0x10))
    assert write(f, SetLsr(Lsr.FE, 0xFF)) == ([], b"")
    assert write(f, SetLsr(Lsr.BI, Lsr.FE)) == ([], b"")  # bit not in the message's mask
    assert feed(f, client_cmd(ComPort.NOTIFY_LINESTATE)) == ([], server_cmd(ComPort.NOTIFY_LINESTATE, 0))


def test_server_flow_control_to_client() -> None:
    f, _ = make("server")
    suspend, resume = server_cmd(ComPort.FLOWCONTROL_SUSPEND), server_cmd(ComPort.FLOWCONTROL_RESUME)
    assert write(f, FlowControl(True)) == ([FlowControl(True)], suspend)
    assert write(f, FlowControl(True)) == ([FlowControl(True)], b"")
    assert write(f, FlowControl(False)) == ([FlowControl(False)], b"")
    assert write(f, FlowControl(False)) == ([FlowControl(False)], resume)
    assert write(f, FlowControl(False)) == ([FlowControl(False)], b"")


def test_server_session_end_drops_the_lines() -> None:
    f, _ = make("server", wanted=EVERYTHING)
    feed(f, client_cmd(ComPort.FLOWCONTROL_SUSPEND))
    assert run_in(f, [Connect(False)]) == (
        [Connect(False), BreakStatus(False), ModemStatus(0, Msr.CTS | Msr.DSR), FlowControl(False)],
        [],
    )
    g, _ = make("server")
    assert run_in(g, [Connect(False)]) == ([Connect(False)], [])


def test_server_ignores_replies_in_the_wrong_direction() -> None:
    f, _ = make("server", wanted=EVERYTHING)
    assert feed(f, server_cmd(ComPort.SET_BAUDRATE, 9600)) == ([], b"")
    assert f._session is not None and f._session.engine.errors == 1


# ---- client mode ---------------------------------------------------------------------------

CLIENT_WANTS = In.LBR | In.LLC | In.LSR | In.MODEM


def test_client_replays_known_state_when_comport_agreed() -> None:
    f, _ = make("client", wanted=CLIENT_WANTS, connect=False)
    write(
        f,
        SetBaud(19200),
        SetLineControl(LineControl(7, Parity.EVEN, None)),
        SetPins(Pin.DTR, Pin.DTR | Pin.RTS),
        FlowControl(True),
    )
    run_in(f, [Connect(True)])
    assert feed(f, neg(WILL, 0)) == ([], b"")  # nothing before COM-PORT is agreed
    assert write(f, SetBaud(38400)) == ([], b"")  # remembered, sent at activation
    out, echo = feed(f, neg(DO, 44))
    assert out == []
    assert echo == b"".join(
        (
            client_cmd(ComPort.SET_BAUDRATE, 38400),
            client_cmd(ComPort.SET_DATASIZE, 7),
            client_cmd(ComPort.SET_PARITY, 3),
            client_cmd(ComPort.SET_CONTROL, Control.DTR_ON),
            client_cmd(ComPort.SET_CONTROL, Control.RTS_OFF),
            client_cmd(ComPort.SET_LINESTATE_MASK, 0x9E),
            client_cmd(ComPort.FLOWCONTROL_SUSPEND),
        )
    )


def test_client_nothing_known_nothing_replayed() -> None:
    f, _ = make("client", connect=False)
    run_in(f, [Connect(True)])
    assert feed(f, neg(DO, 44)) == ([], b"")


# (messages written to the port, what passes on, bytes sent)
CLIENT_OUT_CASES = [
    ([SetBaud(9600)], [], client_cmd(ComPort.SET_BAUDRATE, 9600)),
    ([SetBaud(9600), SetBaud(9600)], [], client_cmd(ComPort.SET_BAUDRATE, 9600)),  # only changes
    (
        [SetLineControl(LineControl(8, Parity.MARK, StopBits.ONE_POINT_FIVE))],
        [],
        client_cmd(ComPort.SET_DATASIZE, 8)
        + client_cmd(ComPort.SET_PARITY, 4)
        + client_cmd(ComPort.SET_STOPSIZE, 3),
    ),
    ([SetLineControl(LineControl(stop_bits=StopBits.TWO))], [], client_cmd(ComPort.SET_STOPSIZE, 2)),
    ([SetLineControl(LineControl(data_bits=9))], [], b""),  # cannot be said in RFC 2217
    (
        [SetPins(Pin.DTR | Pin.BREAK, Pin.DTR | Pin.RTS | Pin.BREAK | Pin.OUT1)],
        [SetPins(0, Pin.OUT1)],
        client_cmd(ComPort.SET_CONTROL, Control.BREAK_ON)
        + client_cmd(ComPort.SET_CONTROL, Control.DTR_ON)
        + client_cmd(ComPort.SET_CONTROL, Control.RTS_OFF),
    ),
    (
        [SetPins(Pin.RTS, Pin.RTS), SetPins(Pin.RTS, Pin.RTS)],
        [],
        client_cmd(ComPort.SET_CONTROL, Control.RTS_ON),
    ),
    ([SetPins(Pin.CTS, Pin.CTS)], [SetPins(Pin.CTS, Pin.CTS)], b""),
    ([PurgeTx()], [], client_cmd(ComPort.PURGE_DATA, 2)),
    (
        [FlowControl(True), FlowControl(True), FlowControl(False), FlowControl(False)],
        [FlowControl(True), FlowControl(True), FlowControl(False), FlowControl(False)],
        client_cmd(ComPort.FLOWCONTROL_SUSPEND) + client_cmd(ComPort.FLOWCONTROL_RESUME),
    ),
    ([SetLsr(1, 1), Connect(True)], [SetLsr(1, 1), Connect(True)], b""),
]


@pytest.mark.parametrize(("msgs", "passed", "sent"), CLIENT_OUT_CASES)
def test_client_out(msgs: list, passed: list, sent: bytes) -> None:
    f, _ = make("client")
    assert write(f, *msgs) == (passed, sent)


@pytest.mark.parametrize(("msgs", "passed", "sent"), CLIENT_OUT_CASES)
def test_client_out_without_comport_sends_nothing(msgs: list, passed: list, sent: bytes) -> None:
    f, _ = make("client", agree=False)
    assert write(f, *msgs) == (passed, b"")


# (bytes from the access server, messages when wanted)
CLIENT_IN_CASES = [
    (server_cmd(ComPort.SET_BAUDRATE, 115200), [LocalBaudStatus(115200)]),
    (server_cmd(ComPort.SET_BAUDRATE, 0), []),
    (server_cmd(ComPort.SET_DATASIZE, 7), [LocalLcStatus(LineControl(data_bits=7))]),
    (server_cmd(ComPort.SET_PARITY, 2), [LocalLcStatus(LineControl(parity=Parity.ODD))]),
    (server_cmd(ComPort.SET_STOPSIZE, 3), [LocalLcStatus(LineControl(stop_bits=StopBits.ONE_POINT_FIVE))]),
    (server_cmd(ComPort.SET_STOPSIZE, 9), []),
    (server_cmd(ComPort.SET_CONTROL, Control.DTR_ON), []),
    (server_cmd(ComPort.NOTIFY_LINESTATE, Lsr.BI | Lsr.OE | Lsr.THRE), [LineStatus(Lsr.BI | Lsr.OE, 0x9E)]),
    (server_cmd(ComPort.NOTIFY_LINESTATE, Lsr.THRE | Lsr.TEMT | Lsr.DR), []),
    (server_cmd(ComPort.NOTIFY_MODEMSTATE, 0x31), [ModemStatus(0x31, 0xF0)]),
    (server_cmd(ComPort.NOTIFY_MODEMSTATE, 0), [ModemStatus(0, 0xF0)]),
    (server_cmd(ComPort.FLOWCONTROL_SUSPEND), [FlowControl(True)]),
    (
        server_cmd(ComPort.FLOWCONTROL_SUSPEND) * 2 + server_cmd(ComPort.FLOWCONTROL_RESUME),
        [FlowControl(True), FlowControl(False)],
    ),
    (server_cmd(ComPort.FLOWCONTROL_RESUME), []),
    (server_cmd(ComPort.SET_LINESTATE_MASK, 0x10), []),
    (server_cmd(ComPort.SET_MODEMSTATE_MASK, 0xFF), []),
    (server_cmd(ComPort.PURGE_DATA, 2), []),
    (server_cmd(ComPort.SIGNATURE, b"ser2net"), []),
    (client_cmd(ComPort.SET_BAUDRATE, 9600), []),  # a client code from the server: ignored
]


@pytest.mark.parametrize(("data", "messages"), CLIENT_IN_CASES)
def test_client_in(data: bytes, messages: list) -> None:
    f, _ = make("client", wanted=CLIENT_WANTS)
    assert feed(f, data) == (messages, b"")
    g, _ = make("client")  # nobody wants anything: only flow control still goes on
    assert feed(g, data)[0] == [m for m in messages if type(m) is FlowControl]


def test_client_answers_a_signature_request() -> None:
    f, _ = make("client")
    sig = f"hub4com-py {__version__} TCP(1)".encode()
    assert feed(f, server_cmd(ComPort.SIGNATURE, b"")) == ([], client_cmd(ComPort.SIGNATURE, sig))


def test_client_resends_a_rejected_setting() -> None:
    f, _ = make("client", wanted=In.LBR)
    write(f, SetBaud(250000))
    assert feed(f, server_cmd(ComPort.SET_BAUDRATE, 115200)) == ([LocalBaudStatus(115200)], b"")
    assert write(f, SetBaud(250000)) == ([], client_cmd(ComPort.SET_BAUDRATE, 250000))


def test_client_sends_a_request_again_after_a_late_answer() -> None:
    # 9600 then 57600 are asked for before the 9600 answer arrives; that late
    # answer must not make a new request for 9600 look already done.
    f, _ = make("client", wanted=In.LBR)
    assert write(f, SetBaud(9600)) == ([], client_cmd(ComPort.SET_BAUDRATE, 9600))
    assert write(f, SetBaud(57600)) == ([], client_cmd(ComPort.SET_BAUDRATE, 57600))
    assert feed(f, server_cmd(ComPort.SET_BAUDRATE, 9600)) == ([LocalBaudStatus(9600)], b"")
    assert write(f, SetBaud(9600)) == ([], client_cmd(ComPort.SET_BAUDRATE, 9600))
    assert feed(f, server_cmd(ComPort.SET_BAUDRATE, 57600)) == ([LocalBaudStatus(57600)], b"")
    assert feed(f, server_cmd(ComPort.SET_BAUDRATE, 9600)) == ([LocalBaudStatus(9600)], b"")
    assert write(f, SetBaud(9600)) == ([], b"")  # asked for and confirmed: nothing to send


def test_client_session_end() -> None:
    f, _ = make("client", wanted=In.CTS | In.DCD)
    feed(f, server_cmd(ComPort.FLOWCONTROL_SUSPEND))
    assert run_in(f, [Connect(False)])[0] == [
        Connect(False),
        ModemStatus(0, Msr.CTS | Msr.DCD),
        FlowControl(False),
    ]


# ---- client filter against server filter ---------------------------------------------------


class FilterLink:
    """Two telnet filters whose TCP ports are joined by an in-memory wire."""

    def __init__(self, client: TelnetFilter, server: TelnetFilter):
        self.ends = {client: server, server: client}
        self.hub: dict[TelnetFilter, list] = {client: [], server: []}
        starts = [(f, joined(run_in(f, [Connect(True)])[1])) for f in (server, client)]
        for f, data in starts:
            self.wire(f, data)

    def wire(self, sender: TelnetFilter, data: bytes) -> None:
        while data:
            receiver = self.ends[sender]
            out, echo = run_in(receiver, [LineData(data)])
            self.hub[receiver] += out
            sender, data = receiver, joined(echo)

    def write(self, f: TelnetFilter, *msgs: object) -> list:
        passed, data = write(f, *msgs)
        self.wire(f, data)
        return passed

    def take(self, f: TelnetFilter) -> list:
        msgs, self.hub[f] = self.hub[f], []
        return msgs


def test_client_and_server_filters() -> None:
    c, _ = make("client", wanted=CLIENT_WANTS, connect=False)
    s, _ = make("server", ("--suppress-echo=yes",), wanted=EVERYTHING, offered=FOLLOWS, connect=False)
    link = FilterLink(c, s)
    assert c._session is not None and c._session.comport
    assert link.take(c) == [ModemStatus(0, 0xF0)]  # the server's first notification
    link.take(s)
    # the application sets a baud rate; the real port takes it; the client hears back
    link.write(c, SetBaud(19200))
    assert link.take(s) == [RemoteBaudStatus(19200)]
    link.write(s, SetBaud(19200))
    assert link.take(c) == [LocalBaudStatus(19200)]
    # DTR/RTS become DSR/CTS on the server side
    link.write(c, SetPins(Pin.DTR | Pin.RTS, Pin.DTR | Pin.RTS))
    assert link.take(s) == [ModemStatus(Msr.DSR, Msr.DSR), ModemStatus(Msr.CTS, Msr.CTS)]
    # the real port's lines become modem status on the client side
    link.write(s, SetPins(Pin.CTS | Pin.DSR, Pin.CTS | Pin.DSR))
    assert link.take(c) == [ModemStatus(0x33, 0xF0)]
    # data with every byte value, both ways
    data = bytes(range(256)) * 4
    for a, b in ((c, s), (s, c)):
        link.write(a, LineData(data))
        assert b"".join(m.data for m in link.take(b)) == data
    # purge, break
    link.write(c, PurgeTx(), SetPins(Pin.BREAK, Pin.BREAK))
    assert link.take(s) == [PurgeTxIn(), BreakStatus(True)]
    assert link.take(c) == []


# ---- interop: our client against pyserial's RFC 2217 server (PortManager, loop://) ---------


class _Connection:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)


def test_client_against_pyserial_port_manager() -> None:
    port = serial.serial_for_url("loop://", timeout=0)
    conn = _Connection()
    pm = PortManager(port, conn)  # queues WILL ECHO, WILL SGA, DO BINARY, WILL COM-PORT
    f, _ = make("client", wanted=CLIENT_WANTS, connect=False)
    written = bytearray()  # what pyserial's server writes to the serial port

    def exchange(data: bytes = b"") -> list:
        """Our bytes to pyserial's server, its answers back to us, until both are quiet."""
        got: list = []
        while True:
            written.extend(b"".join(pm.filter(data)))
            answer = b"".join(conn.sent)
            conn.sent.clear()
            if not answer:
                return got
            out, echo = run_in(f, [LineData(answer)])
            got += out
            data = joined(echo)

    got = exchange(joined(run_in(f, [Connect(True)])[1]))
    assert f._session is not None and f._session.comport and f._session.engine.errors == 0
    # pyserial's server notifies once per COM-PORT direction (rfc2217-peers.md 3.1: BB then B0)
    assert got == [ModemStatus(0xBB, 0xF0), ModemStatus(0xB0, 0xF0)]
    # settings are applied to the port and confirmed
    _, data = write(f, SetBaud(38400), SetLineControl(LineControl(7, Parity.EVEN, StopBits.TWO)))
    assert exchange(data) == [
        LocalBaudStatus(38400),
        LocalLcStatus(LineControl(data_bits=7)),
        LocalLcStatus(LineControl(parity=Parity.EVEN)),
        LocalLcStatus(LineControl(stop_bits=StopBits.TWO)),
    ]
    assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (38400, 7, "E", 2)
    # DTR and RTS are set on the port; on loop:// DSR follows DTR and CTS follows RTS
    _, data = write(f, SetPins(Pin.DTR, Pin.DTR | Pin.RTS))
    assert exchange(data) == []
    assert port.dtr and not port.rts
    pm.check_modem_lines()
    assert exchange() == [ModemStatus(0xA1, 0xF0)]  # CD, DSR, delta CTS
    # data with 0xFF arrives un-doubled at the port; purge is answered
    _, data = write(f, LineData(b"a\xffb"), PurgeTx())
    assert exchange(data) == []
    assert bytes(written) == b"a\xffb"
