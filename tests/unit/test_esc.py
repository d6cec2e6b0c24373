"""The com0com escape codec: records, hub4com's quirks, split streams, round trips."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters._esc import (
    PROVIDES,
    EscParser,
    encode,
    escape,
    lsr_record,
    mst_record,
    rbr_record,
    rlc_record,
)
from hub.caps import In
from hub.messages import (
    MODEM_MASK,
    BreakStatus,
    LineControl,
    LineData,
    LineStatus,
    Lsr,
    Message,
    ModemStatus,
    Parity,
    RemoteBaudStatus,
    RemoteLcStatus,
    SetBaud,
    StopBits,
)

LSR_MASK = 0x9E  # the LSR bits a consumer can ask for (OE PE FE BI FIFOERR)
LC_8N1 = LineControl(8, Parity.NONE, StopBits.ONE)

# (stream, expected messages) with every signal wanted
CASES: list[tuple[bytes, list[Message]]] = [
    (b"", []),
    (b"abc", [LineData(b"abc")]),
    (b"a\xff\x00b", [LineData(b"a\xffb")]),
    (b"\xff\x00\xff\x00", [LineData(b"\xff\xff")]),
    (b"\xff\x00\x00\xff\x00", [LineData(b"\xff\x00\xff")]),
    # modem status: the whole byte as received, the mask is what was asked for
    (b"x\xff\x03\xb3y", [LineData(b"x"), ModemStatus(0xB3, 0xF0), LineData(b"y")]),
    # line status: BREAK_STATUS always, LINE_STATUS only with a requested bit set
    (b"\xff\x02\x04", [BreakStatus(False), LineStatus(0x04, LSR_MASK)]),
    (b"\xff\x02\x60", [BreakStatus(False)]),
    (b"\xff\x02\x10", [BreakStatus(True), LineStatus(0x10, LSR_MASK)]),
    # LSR with data: the character follows the statuses as data ...
    (b"a\xff\x01\x04Zb", [LineData(b"a"), BreakStatus(False), LineStatus(0x04, LSR_MASK), LineData(b"Zb")]),
    (b"\xff\x01\x08\x00", [BreakStatus(False), LineStatus(0x08, LSR_MASK), LineData(b"\x00")]),
    (b"\xff\x01\x08\xff", [BreakStatus(False), LineStatus(0x08, LSR_MASK), LineData(b"\xff")]),
    # ... unless it is the NUL of a break
    (b"\xff\x01\x10\x00", [BreakStatus(True), LineStatus(0x10, LSR_MASK)]),
    (b"\xff\x01\x10A", [BreakStatus(True), LineStatus(0x10, LSR_MASK), LineData(b"A")]),
    # com0com's remote baud rate (little-endian) and line control
    (b"\xff\x10\x00\xc2\x01\x00", [RemoteBaudStatus(115200)]),
    (b"\xff\x10\xff\xff\xff\xff", [RemoteBaudStatus(0xFFFFFFFF)]),
    (b"\xff\x11\x08\x00\x00", [RemoteLcStatus(LC_8N1)]),
    (b"\xff\x11\x07\x02\x02", [RemoteLcStatus(LineControl(7, Parity.EVEN, StopBits.TWO))]),
    (b"\xff\x11\x05\x04\x01", [RemoteLcStatus(LineControl(5, Parity.SPACE, StopBits.ONE_POINT_FIVE))]),
    # arguments may be 0xFF without escaping
    (b"\xff\x03\xff\xff\x00", [ModemStatus(0xFF, 0xF0), LineData(b"\xff")]),
]


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_records(stream: bytes, expected: list[Message]) -> None:
    p = EscParser()
    assert p.feed(stream) == expected
    assert not p.pending and p.errors == 0


# (stream, expected, errors): bad input is dropped, counted, and parsing goes on
BAD: list[tuple[bytes, list[Message], int]] = [
    # hub4com drops E and an unknown code; the next byte is data again
    (b"a\xff\x42b", [LineData(b"ab")], 1),
    (b"a\xff\x04\x05b", [LineData(b"a\x05b")], 1),
    # E E is an unknown code too (not PARMRK's literal 0xFF)
    (b"\xff\xff\x00", [LineData(b"\x00")], 1),
    (b"\xff\xff\xff\x00", [LineData(b"\xff")], 1),
    # parity or stop bits outside the Windows numbering are left out
    (b"\xff\x11\x08\x09\x00", [RemoteLcStatus(LineControl(8, None, StopBits.ONE))], 1),
    (b"\xff\x11\x08\x00\x07", [RemoteLcStatus(LineControl(8, Parity.NONE, None))], 1),
    (b"\xff\x11\x08\x05\x03", [RemoteLcStatus(LineControl(8))], 1),
]


@pytest.mark.parametrize(("stream", "expected", "errors"), BAD)
def test_bad_input_is_counted(stream: bytes, expected: list[Message], errors: int) -> None:
    p = EscParser()
    assert p.feed(stream) == expected
    assert p.errors == errors


def test_errors_are_warnings_the_hub_limits(caplog: pytest.LogCaptureFixture) -> None:
    # Each is a warning; hub.logs.RepeatLimiter bounds them in a running hub.
    p = EscParser(name="TCP(1)")
    with caplog.at_level(logging.DEBUG, logger="filters._esc"):
        p.feed(b"\xff\x42\xff\x43")
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]
    assert "TCP(1): unknown escape code 0x42" in caplog.records[0].getMessage()


# (wanted, stream, expected): only what is wanted is reported; data around the
# records nobody asked for stays one chunk
WANTED: list[tuple[In, bytes, list[Message]]] = [
    (
        In.NONE,
        b"a\xff\x03\x10b\xff\x02\x10c\xff\x10\x01\x00\x00\x00d\xff\x11\x08\x00\x00e",
        [LineData(b"abcde")],
    ),
    (In.CTS | In.DCD, b"\xff\x03\x30", [ModemStatus(0x30, 0x90)]),
    (In.LSR_PE, b"\xff\x02\x10", []),
    (In.LSR_PE, b"\xff\x02\x14", [LineStatus(0x14, 0x04)]),
    (In.BREAK, b"\xff\x02\x14", [BreakStatus(True)]),
    (In.BREAK, b"\xff\x01\x10\x00x", [BreakStatus(True), LineData(b"x")]),
    (In.NONE, b"\xff\x01\x10\x00x", [LineData(b"x")]),
    (In.NONE, b"\xff\x01\x04\x00x", [LineData(b"\x00x")]),
    (In.RBR, b"\xff\x10\x80\x25\x00\x00\xff\x11\x08\x00\x00", [RemoteBaudStatus(9600)]),
    (In.RLC, b"\xff\x10\x80\x25\x00\x00\xff\x11\x08\x00\x00", [RemoteLcStatus(LC_8N1)]),
]


@pytest.mark.parametrize(("wanted", "stream", "expected"), WANTED)
def test_only_wanted_signals_are_reported(wanted: In, stream: bytes, expected: list[Message]) -> None:
    assert EscParser(wanted).feed(stream) == expected


def test_wanted_can_change() -> None:
    p = EscParser(In.NONE)
    assert p.feed(b"\xff\x03\x10") == []
    p.set_wanted(In.CTS)
    assert p.feed(b"\xff\x03\x10") == [ModemStatus(0x10, 0x10)]


def test_record_split_anywhere_is_put_together() -> None:
    stream = b"ab\xff\x10\x00\xc2\x01\x00cd"
    for cut in range(len(stream) + 1):
        p = EscParser()
        first = p.feed(stream[:cut])
        assert p.pending == (3 <= cut <= 7)  # the record is bytes 2..7
        assert merged(first + p.feed(stream[cut:])) == [
            LineData(b"ab"),
            RemoteBaudStatus(115200),
            LineData(b"cd"),
        ]


def test_trailing_escape_waits_for_its_code() -> None:
    p = EscParser()
    assert p.feed(b"ab\xff") == [LineData(b"ab")]
    assert p.pending
    assert p.feed(b"\x00") == [LineData(b"\xff")]
    assert p.feed(b"\xff") == []
    assert p.feed(b"\x03") == []
    assert p.feed(b"\x80z") == [ModemStatus(0x80, 0xF0), LineData(b"z")]


def test_reset_forgets_an_incomplete_record() -> None:
    p = EscParser()
    p.feed(b"\xff\x10\x01")
    p.reset()
    assert not p.pending
    assert p.feed(b"\x02\x03\x04") == [LineData(b"\x02\x03\x04")]


def test_data_without_escapes_is_the_same_bytes_object() -> None:
    data = b"plain" * 100
    [msg] = EscParser().feed(data)
    assert isinstance(msg, LineData) and msg.data is data


# ---- encoding ---------------------------------------------------------------------

ENCODINGS: list[tuple[Message, bytes | None]] = [
    (LineData(b"a\xffb\xff"), b"a\xff\x00b\xff\x00"),
    (ModemStatus(0xB0, 0xF0), b"\xff\x03\xb0"),
    (LineStatus(0x1E, 0x04), b"\xff\x02\x04"),
    (BreakStatus(True), b"\xff\x02\x10"),
    (BreakStatus(False), b"\xff\x02\x00"),
    (RemoteBaudStatus(9600), b"\xff\x10\x80\x25\x00\x00"),
    (RemoteLcStatus(LineControl(7, Parity.ODD, StopBits.TWO)), b"\xff\x11\x07\x01\x02"),
    (RemoteLcStatus(LineControl(7)), None),
    (SetBaud(9600), None),
]


@pytest.mark.parametrize(("msg", "wire"), ENCODINGS)
def test_encode(msg: Message, wire: bytes | None) -> None:
    assert encode(msg) == wire


def test_record_builders() -> None:
    assert lsr_record(Lsr.PE, 0x41) == b"\xff\x01\x04A"
    assert lsr_record(Lsr.BI) == b"\xff\x02\x10"
    assert mst_record(0x1F0) == b"\xff\x03\xf0"
    assert rbr_record(1) == b"\xff\x10\x01\x00\x00\x00"
    assert rlc_record(LC_8N1) == b"\xff\x11\x08\x00\x00"
    with pytest.raises(ValueError):
        rlc_record(LineControl(8, Parity.NONE))
    data = b"no escapes"
    assert escape(data) is data


# ---- properties ---------------------------------------------------------------------


def merged(msgs: list[Message]) -> list[Message]:
    """Adjacent LineData joined, empty ones dropped: how data may be chunked is free."""
    out: list[Message] = []
    for m in msgs:
        if isinstance(m, LineData):
            if not m.data:
                continue
            if out and isinstance(out[-1], LineData):
                out[-1] = LineData(out[-1].data + m.data)
                continue
        out.append(m)
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


line_controls = st.builds(
    LineControl, st.integers(0, 255), st.sampled_from(list(Parity)), st.sampled_from(list(StopBits))
)
data_msgs = st.builds(LineData, st.binary(max_size=40) | st.binary(max_size=8).map(lambda b: b + b"\xff" * 3))
common_msgs = (
    data_msgs
    | st.builds(ModemStatus, st.integers(0, 255), st.just(int(MODEM_MASK)))
    | st.builds(RemoteBaudStatus, st.integers(0, 0xFFFFFFFF))
    | st.builds(RemoteLcStatus, line_controls)
)
# a line status with at least one of the bits a consumer can ask for
lsr_msgs = st.builds(
    LineStatus, st.integers(1, 255).map(lambda v: v & LSR_MASK).filter(bool), st.just(LSR_MASK)
)


@given(
    msgs=st.lists(common_msgs | lsr_msgs, max_size=30),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_encode_then_parse_gives_the_messages_back(msgs: list[Message], cuts: list[int]) -> None:
    stream = b"".join(encode(m) or b"" for m in msgs)
    p = EscParser(PROVIDES & ~In.BREAK)
    whole = p.feed(stream)
    assert merged(whole) == merged(msgs)
    q = EscParser(PROVIDES & ~In.BREAK)
    parts = [m for chunk in split(stream, cuts) for m in q.feed(chunk)]
    assert merged(parts) == merged(msgs)
    assert p.errors == q.errors == 0 and not q.pending


@given(
    msgs=st.lists(common_msgs | st.builds(BreakStatus, st.booleans()), max_size=30),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_break_changes_round_trip(msgs: list[Message], cuts: list[int]) -> None:
    stream = b"".join(encode(m) or b"" for m in msgs)
    p = EscParser(PROVIDES & ~In.LSR)
    parts = [m for chunk in split(stream, cuts) for m in p.feed(chunk)]
    assert merged(parts) == merged(msgs)


@given(stream=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=20))
def test_arbitrary_bytes_never_raise_and_split_equals_whole(stream: bytes, cuts: list[int]) -> None:
    p = EscParser()
    whole = p.feed(stream)
    q = EscParser()
    parts = [m for chunk in split(stream, cuts) for m in q.feed(chunk)]
    assert merged(parts) == merged(whole)
    assert p.errors == q.errors
    assert p.pending == q.pending


@given(
    stream=st.lists(
        st.sampled_from([b"\xff", b"\x00", b"\x01", b"\x02", b"\x03", b"\x10", b"\x11", b"a"])
    ).map(b"".join),
    cuts=st.lists(st.integers(0, 400), max_size=20),
)
def test_dense_escapes_split_equals_whole(stream: bytes, cuts: list[int]) -> None:
    whole = EscParser().feed(stream)
    q = EscParser()
    parts = [m for chunk in split(stream, cuts) for m in q.feed(chunk)]
    assert merged(parts) == merged(whole)


@given(data=st.binary(max_size=200))
def test_escaped_data_parses_back(data: bytes) -> None:
    assert merged(EscParser().feed(escape(data))) == merged([LineData(data)])
