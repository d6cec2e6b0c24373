"""escinsert: signals sent to the port become escape records, hub4com's way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters._esc import EscParser
from filters.escinsert import ACCEPTS, EscInsertFilter
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import (
    Connect,
    FlowControl,
    LineControl,
    LineData,
    Lsr,
    Message,
    ModemStatus,
    Parity,
    Pin,
    SetBaud,
    SetLineControl,
    SetLsr,
    SetPins,
    StopBits,
)
from hub.options import option_names
from hub.testing import make_filter, run_in, run_out

ON, OFF = Connect(True), Connect(False)
CTS, DSR, RI, DCD, BRK, DTR, RTS = Pin.CTS, Pin.DSR, Pin.RI, Pin.DCD, Pin.BREAK, Pin.DTR, Pin.RTS
LC_7E2 = LineControl(7, Parity.EVEN, StopBits.TWO)


def insert(offered: Out = ACCEPTS, connected: bool = True) -> EscInsertFilter:
    f = make_filter(EscInsertFilter)
    assert isinstance(f, EscInsertFilter)
    f.offered = offered  # as the hub's negotiation does
    if connected:
        run_in(f, [ON])
    return f


def wire(out: list[Message]) -> bytes:
    assert all(isinstance(m, LineData) for m in out), out
    return b"".join(m.data for m in out if isinstance(m, LineData))


def test_usage_and_capabilities() -> None:
    assert option_names(EscInsertFilter.USAGE) == frozenset()
    f = make_filter(EscInsertFilter)
    assert f.accepts == Out.MODEM | Out.BREAK | Out.LSR | Out.SET_BR | Out.SET_LC
    assert (f.provides, f.needs, f.sends) == (In.NONE, In.NONE, Out.NONE)
    assert EscInsertFilter.has_in() and EscInsertFilter.has_out()


def test_it_has_no_options() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(EscInsertFilter, ["--esc=255"])
    assert (exc.value.arg, exc.value.text) == ("--esc=255", "Unknown option")


@pytest.mark.parametrize(
    ("data", "escaped"),
    [(b"a\xffb", b"a\xff\x00b"), (b"\xff\xff", b"\xff\x00\xff\x00"), (b"\xff\x00", b"\xff\x00\x00")],
)
def test_escape_bytes_are_doubled(data: bytes, escaped: bytes) -> None:
    assert run_out(insert(), [LineData(data)]) == [LineData(escaped)]


def test_data_without_escapes_is_the_same_message() -> None:
    f = insert(connected=False)
    for msg in (LineData(b"plain"), LineData(b"")):
        assert run_out(f, [msg])[0] is msg


# (messages sent to a connected port with everything offered, expected output)
CASES: list[tuple[list[Message], list[Message]]] = [
    ([SetPins(CTS, CTS)], [LineData(b"\xff\x03\x10")]),
    ([SetPins(CTS, CTS), SetPins(CTS, CTS)], [LineData(b"\xff\x03\x10")]),
    ([SetPins(CTS | DCD, CTS | DSR | DCD)], [LineData(b"\xff\x03\x90")]),
    ([SetPins(0, CTS)], []),  # no change
    # the MSR carries every emulated line, not just the one that changed
    ([SetPins(CTS, CTS), SetPins(RI, RI)], [LineData(b"\xff\x03\x10"), LineData(b"\xff\x03\x50")]),
    # pins that are not ours stay in the message
    ([SetPins(DTR | CTS, DTR | RTS | CTS)], [SetPins(DTR, DTR | RTS), LineData(b"\xff\x03\x10")]),
    # break on is left to SET_LSR (BI is offered); break off is always written
    ([SetPins(BRK, BRK)], []),
    ([SetPins(BRK, BRK), SetPins(0, BRK)], [LineData(b"\xff\x02\x00")]),
    ([SetPins(BRK | CTS, BRK | CTS)], [LineData(b"\xff\x03\x10")]),
    ([SetLsr(Lsr.BI, Lsr.BI)], [LineData(b"\xff\x02\x10")]),
    ([SetLsr(Lsr.PE | Lsr.FE, Lsr.PE | Lsr.FE)], [LineData(b"\xff\x02\x0c")]),
    ([SetLsr(0, Lsr.PE)], []),
    # LSR bits the stream does not take (DR, THRE, TEMT) stay in the message
    ([SetLsr(0xFF, 0xFF)], [SetLsr(0x61, 0x61), LineData(b"\xff\x02\x9e")]),
    ([SetBaud(9600)], [LineData(b"\xff\x10\x80\x25\x00\x00")]),
    ([SetBaud(9600), SetBaud(9600)], [LineData(b"\xff\x10\x80\x25\x00\x00")]),
    ([SetBaud(115200)], [LineData(b"\xff\x10\x00\xc2\x01\x00")]),
    ([SetLineControl(LC_7E2)], [LineData(b"\xff\x11\x07\x02\x02")]),
    ([SetLineControl(LC_7E2), SetLineControl(LineControl(7))], [LineData(b"\xff\x11\x07\x02\x02")]),
    # fields not given keep their value; nothing goes out before all three are known
    ([SetLineControl(LineControl(8)), SetLineControl(LineControl(None, Parity.ODD))], []),
    (
        [SetLineControl(LineControl(8)), SetLineControl(LineControl(None, Parity.ODD, StopBits.ONE))],
        [LineData(b"\xff\x11\x08\x01\x00")],
    ),
    (
        [SetLineControl(LC_7E2), SetLineControl(LineControl(8))],
        [LineData(b"\xff\x11\x07\x02\x02"), LineData(b"\xff\x11\x08\x02\x02")],
    ),
    # everything else passes
    ([ModemStatus(0x10, 0x10), FlowControl(True), OFF], [ModemStatus(0x10, 0x10), FlowControl(True), OFF]),
]


@pytest.mark.parametrize(("msgs", "expected"), CASES)
def test_signals_become_records(msgs: list[Message], expected: list[Message]) -> None:
    assert run_out(insert(), msgs) == expected


def test_break_on_is_written_when_lsr_bi_is_not_offered() -> None:
    f = insert(Out.BREAK | Out.MODEM)
    assert run_out(f, [SetPins(BRK, BRK)]) == [LineData(b"\xff\x02\x10")]
    assert run_out(f, [SetLsr(Lsr.BI, Lsr.BI)]) == [SetLsr(Lsr.BI, Lsr.BI)]


def test_only_offered_signals_are_taken_over() -> None:
    f = insert(Out.CTS)
    baud, lc, lsr = SetBaud(9600), SetLineControl(LC_7E2), SetLsr(Lsr.PE, Lsr.PE)
    out = run_out(f, [baud, lc, lsr, SetPins(CTS | DSR, CTS | DSR)])
    assert out == [baud, lc, lsr, SetPins(DSR, DSR), LineData(b"\xff\x03\x10")]
    assert out[0] is baud and out[1] is lc and out[2] is lsr


def test_nothing_is_written_while_not_connected_but_state_is_kept() -> None:
    f = insert(connected=False)
    msgs: list[Message] = [SetPins(CTS, CTS), SetLsr(Lsr.PE, Lsr.PE), SetBaud(9600), SetLineControl(LC_7E2)]
    assert run_out(f, msgs) == []
    out, echo = run_in(f, [ON])
    assert out == [ON]
    assert wire(echo) == (
        b"\xff\x10\x80\x25\x00\x00"  # RBR
        + b"\xff\x11\x07\x02\x02"  # RLC
        + b"\xff\x03\x10"  # MST
        + b"\xff\x02\x00"  # LSR: the break state only
    )
    assert len(echo) == 1


def test_disconnect_stops_records() -> None:
    f = insert()
    assert run_in(f, [OFF]) == ([OFF], [])
    assert run_out(f, [SetPins(CTS, CTS), SetBaud(300)]) == []
    assert f.pins == CTS and f.baud == 300
    assert run_out(f, [LineData(b"\xff")]) == [LineData(b"\xff\x00")]


@pytest.mark.parametrize(
    ("offered", "state", "snapshot"),
    [
        (Out.NONE, [], b""),
        (Out.SET_BR, [], b""),  # baud rate not known yet
        (Out.SET_LC, [SetLineControl(LineControl(8))], b""),  # incomplete
        (
            Out.SET_BR | Out.SET_LC,
            [SetBaud(300), SetLineControl(LC_7E2)],
            b"\xff\x10\x2c\x01\x00\x00\xff\x11\x07\x02\x02",
        ),
        (Out.DCD, [SetPins(DCD, DCD)], b"\xff\x03\x80"),
        (Out.DCD, [], b"\xff\x03\x00"),
        (Out.BREAK, [SetPins(BRK, BRK)], b"\xff\x02\x10"),
        (Out.LSR_PE, [SetLsr(Lsr.PE, Lsr.PE)], b"\xff\x02\x00"),
        (Out.MODEM | Out.BREAK, [SetPins(BRK | CTS, BRK | CTS)], b"\xff\x03\x10\xff\x02\x10"),
    ],
)
def test_snapshot_on_connect(offered: Out, state: list[Message], snapshot: bytes) -> None:
    f = insert(offered, connected=False)
    run_out(f, state)
    _, echo = run_in(f, [ON])
    assert wire(echo) == snapshot


def test_each_connection_gets_a_snapshot() -> None:
    f = insert(Out.CTS)
    run_in(f, [OFF])
    assert run_in(f, [ON])[1] == [LineData(b"\xff\x03\x00")]


pin_changes = st.builds(
    SetPins,
    st.sampled_from([0, CTS, DSR, RI, DCD, CTS | DCD, 0xF000]),
    st.sampled_from([CTS, DSR | RI, 0xF000]),
)


@given(msgs=st.lists(st.builds(LineData, st.binary(max_size=20)) | pin_changes, max_size=30))
def test_escparse_reads_back_what_escinsert_wrote(msgs: list[Message]) -> None:
    f = insert()
    stream = wire(run_out(f, msgs))
    parsed = EscParser(In.MODEM).feed(stream)
    data = b"".join(m.data for m in msgs if isinstance(m, LineData))
    assert b"".join(m.data for m in parsed if isinstance(m, LineData)) == data
    # one modem status per change of the emulated lines, carrying all four
    pins = 0
    expected = []
    for m in msgs:
        if isinstance(m, SetPins):
            new = (m.value & m.mask) | (pins & ~m.mask)
            if new != pins:
                expected.append(ModemStatus(new >> 8, 0xF0))
            pins = new
    assert [m for m in parsed if isinstance(m, ModemStatus)] == expected
