"""pinmap: wires, inversion, the data gate, connect/on inputs, initial pins, errors."""

from __future__ import annotations

import docopt
import pytest

from filters.pinmap import PinMapFilter
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import (
    BreakStatus,
    Connect,
    FlowControl,
    LineData,
    LineStatus,
    ModemStatus,
    Msr,
    Pin,
    SetBaud,
    SetPins,
)
from hub.options import option_names
from hub.testing import make_filter, run_out

CTS, DSR, RI, DCD = Msr.CTS, Msr.DSR, Msr.RI, Msr.DCD
RTS, DTR, BRK = Pin.RTS, Pin.DTR, Pin.BREAK
DATA = LineData(b"abc")


def started(argv: list[str]) -> tuple[PinMapFilter, list]:
    f = make_filter(PinMapFilter, argv)
    assert isinstance(f, PinMapFilter)
    out: list = []
    f.start(out)
    return f, out


def test_usage_parses_and_declares_every_output() -> None:
    names = option_names(PinMapFilter.USAGE)
    assert names == {f"--{o}" for o in "rts dtr out1 out2 cts dsr ring dcd break data".split()}
    after = docopt.parse_docstring_sections(PinMapFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert PinMapFilter.has_out() and not PinMapFilter.has_in()


def test_default_is_null_modem_cross() -> None:
    f, init = started([])
    assert f.needs == In.CTS | In.DSR
    assert f.sends == Out.RTS | Out.DTR
    assert init == [SetPins(0, RTS | DTR)]
    msgs = [ModemStatus(CTS, CTS), ModemStatus(CTS | DSR, CTS | DSR), ModemStatus(0, CTS | DSR)]
    assert run_out(f, msgs) == [
        msgs[0],
        SetPins(RTS, RTS),
        msgs[1],
        SetPins(DTR, DTR),
        msgs[2],
        SetPins(0, RTS | DTR),
    ]


# (argv, initial SetPins, messages routed to the port, what leaves the filter)
CASES = [
    # an inverted wire starts high and follows the opposite level
    (["--rts=!cts"], [SetPins(RTS, RTS)], [ModemStatus(CTS, CTS)], [ModemStatus(CTS, CTS), SetPins(0, RTS)]),
    # one input drives several outputs, each with its own polarity
    (
        ["--rts=cts", "--dtr=!cts"],
        [SetPins(DTR, RTS | DTR)],
        [ModemStatus(CTS, CTS)],
        [ModemStatus(CTS, CTS), SetPins(RTS, RTS | DTR)],
    ),
    # bits outside the mask are not reported: no change
    (["--rts=cts"], [SetPins(0, RTS)], [ModemStatus(CTS, DSR)], [ModemStatus(CTS, DSR)]),
    # an input that does not change inserts nothing
    (
        ["--rts=cts"],
        [SetPins(0, RTS)],
        [ModemStatus(CTS, CTS), ModemStatus(CTS | DSR, CTS | DSR)],
        [ModemStatus(CTS, CTS), SetPins(RTS, RTS), ModemStatus(CTS | DSR, CTS | DSR)],
    ),
    # ring and dcd inputs
    (
        ["--dtr=ring", "--rts=dcd"],
        [SetPins(0, DTR | RTS)],
        [ModemStatus(RI | DCD, RI | DCD)],
        [ModemStatus(RI | DCD, RI | DCD), SetPins(DTR | RTS, DTR | RTS)],
    ),
    # the break input
    (
        ["--break=break"],
        [SetPins(0, BRK)],
        [BreakStatus(True), BreakStatus(True), BreakStatus(False)],
        [BreakStatus(True), SetPins(BRK, BRK), BreakStatus(True), BreakStatus(False), SetPins(0, BRK)],
    ),
    # break status is ignored when break is not an input
    (["--rts=cts"], [SetPins(0, RTS)], [BreakStatus(True)], [BreakStatus(True)]),
    # on: constant; the initial state is the only SetPins ever sent
    (
        ["--dtr=on"],
        [SetPins(DTR, DTR)],
        [ModemStatus(0xF0, 0xF0), Connect(True)],
        [ModemStatus(0xF0, 0xF0), Connect(True)],
    ),
    (["--dtr=!on"], [SetPins(0, DTR)], [], []),
    # emulated-port outputs
    (
        ["--cts=cts", "--dsr=dsr", "--ring=ring", "--dcd=dcd"],
        [SetPins(0, Pin.CTS | Pin.DSR | Pin.RI | Pin.DCD)],
        [ModemStatus(CTS | DCD, 0xF0)],
        # only the inputs that changed are sent again
        [ModemStatus(CTS | DCD, 0xF0), SetPins(Pin.CTS | Pin.DCD, Pin.CTS | Pin.DCD)],
    ),
    (["--out1=dsr", "--out2=!dsr"], [SetPins(Pin.OUT2, Pin.OUT1 | Pin.OUT2)], [], []),
    # option names and input names are case-insensitive
    (["--RTS=CTS"], [SetPins(0, RTS)], [ModemStatus(CTS, CTS)], [ModemStatus(CTS, CTS), SetPins(RTS, RTS)]),
]


@pytest.mark.parametrize(("argv", "init", "msgs", "expected"), CASES)
def test_wiring(argv: list[str], init: list, msgs: list, expected: list) -> None:
    f, got_init = started(argv)
    assert got_init == init
    assert run_out(f, msgs) == expected


def test_connect_input_follows_the_connection_counter() -> None:
    f, init = started(["--dtr=connect", "--rts=!connect"])
    assert f.needs == In.NONE
    assert init == [SetPins(RTS, DTR | RTS)]
    on, off = Connect(True), Connect(False)
    assert run_out(f, [on]) == [on, SetPins(DTR, DTR | RTS)]
    assert run_out(f, [on], src=2) == [on]  # counter 2: no change
    assert run_out(f, [off]) == [off]  # counter 1
    assert run_out(f, [off], src=2) == [off, SetPins(RTS, DTR | RTS)]
    # an unbalanced CONNECT(FALSE) does not push the counter below 0
    assert run_out(f, [off]) == [off]
    assert f.connections == 0
    assert run_out(f, [on]) == [on, SetPins(DTR, DTR | RTS)]


def test_inputs_are_per_port_not_per_source() -> None:
    f, _ = started(["--rts=cts"])
    assert run_out(f, [ModemStatus(CTS, CTS)], src=1) == [ModemStatus(CTS, CTS), SetPins(RTS, RTS)]
    assert run_out(f, [ModemStatus(0, CTS)], src=2) == [ModemStatus(0, CTS), SetPins(0, RTS)]


def test_controlled_bits_are_removed_from_other_set_pins() -> None:
    f, _ = started(["--rts=cts", "--break=break"])
    mine_and_other = SetPins(RTS | DTR, RTS | DTR | BRK)
    other_only = SetPins(DTR, DTR | Pin.OUT1)
    assert run_out(f, [mine_and_other, SetPins(RTS, RTS | BRK), other_only]) == [
        SetPins(DTR, DTR),
        other_only,
    ]
    assert run_out(f, [other_only])[0] is other_only


@pytest.mark.parametrize(
    ("argv", "needs", "opened_by", "closed_by"),
    [
        (["--data=cts"], In.CTS, ModemStatus(CTS, CTS), ModemStatus(0, CTS)),
        (["--data=!dsr"], In.DSR, ModemStatus(0, DSR), ModemStatus(DSR, DSR)),
        (["--data=break"], In.BREAK, BreakStatus(True), BreakStatus(False)),
        (["--data=connect"], In.NONE, Connect(True), Connect(False)),
    ],
)
def test_data_gate(argv: list[str], needs: In, opened_by: object, closed_by: object) -> None:
    f, init = started(argv)
    assert f.needs == needs
    assert f.sends == Out.NONE
    assert init == []  # the gate drives no pin
    gate_closed_at_start = argv[0].startswith("--data=!") is False
    if gate_closed_at_start:
        assert run_out(f, [DATA]) == []
    assert run_out(f, [opened_by, DATA]) == [opened_by, DATA]
    assert run_out(f, [DATA])[0] is DATA
    assert run_out(f, [closed_by, DATA, LineData(b"more")]) == [closed_by]
    assert isinstance(f, PinMapFilter)
    assert f.gated_bytes == len(b"abcmore") + (len(DATA.data) if gate_closed_at_start else 0)


def test_data_gate_with_constant_input() -> None:
    f, _ = started(["--data=on"])
    assert run_out(f, [DATA]) == [DATA]
    f, _ = started(["--data=!on"])
    assert run_out(f, [DATA]) == []


def test_data_gate_alone_disables_the_default_wires() -> None:
    f, _ = started(["--data=cts"])
    assert f.sends == Out.NONE
    assert run_out(f, [ModemStatus(CTS | DSR, CTS | DSR)]) == [ModemStatus(CTS | DSR, CTS | DSR)]


def test_gate_and_pins_share_an_input() -> None:
    f, init = started(["--data=cts", "--rts=cts"])
    assert init == [SetPins(0, RTS)]
    assert run_out(f, [DATA, ModemStatus(CTS, CTS), DATA]) == [ModemStatus(CTS, CTS), SetPins(RTS, RTS), DATA]


def test_other_messages_pass_unchanged() -> None:
    f, _ = started([])
    msgs = [DATA, SetBaud(9600), LineStatus(0x10, 0x10), FlowControl(True)]
    out = run_out(f, msgs)
    assert all(a is b for a, b in zip(out, msgs, strict=True))


@pytest.mark.parametrize(
    ("argv", "arg", "text"),
    [
        (["--rts=foo"], "--rts=foo", "Unknown input 'foo'"),
        (["--dtr=!"], "--dtr=!", "Unknown input ''"),
        (["--data="], "--data=", "Unknown input ''"),
        (["--ring=!!cts"], "--ring=!!cts", "Unknown input '!cts'"),
        (["--rts=cts", "--dtr=data"], "--dtr=data", "Unknown input 'data'"),
    ],
)
def test_bad_input(argv: list[str], arg: str, text: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(PinMapFilter, argv)
    assert exc.value.arg == arg
    assert exc.value.text.startswith(text)
    assert "cts, dsr, dcd, ring, break, connect or on" in exc.value.text


def test_duplicated_option() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(PinMapFilter, ["--rts=cts", "--RTS=dsr"])
    assert exc.value.text.startswith("Duplicated")


@pytest.mark.parametrize("arg", ["--txd=cts", "rts=cts", "--rts"])
def test_unknown_or_incomplete_option(arg: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(PinMapFilter, [arg])
    assert exc.value.arg == arg
