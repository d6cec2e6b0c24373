"""escparse: pass-through on Linux by default, parsing with --request-esc-mode=no."""

from __future__ import annotations

import logging

import docopt
import pytest

from filters._esc import PROVIDES
from filters.escparse import EscParseFilter
from hub.caps import In
from hub.errors import UsageError
from hub.messages import (
    BreakStatus,
    Connect,
    LineControl,
    LineData,
    LineStatus,
    LocalBaudStatus,
    Message,
    ModemStatus,
    Parity,
    RemoteBaudStatus,
    RemoteLcStatus,
    StopBits,
)
from hub.options import option_names
from hub.testing import FakeContext, make_filter, run_in

NATIVE: list[Message] = [
    ModemStatus(0x30, 0xF0),
    LineStatus(0x04, 0x04),
    BreakStatus(True),
    RemoteBaudStatus(9600),
    RemoteLcStatus(LineControl(8)),
]


def parser(wanted: In = PROVIDES, ctx: FakeContext | None = None) -> EscParseFilter:
    f = make_filter(EscParseFilter, ["--request-esc-mode=no"], ctx=ctx)
    assert isinstance(f, EscParseFilter)
    f.wanted = wanted  # as the hub's negotiation does
    return f


def test_usage_parses() -> None:
    names = option_names(EscParseFilter.USAGE)
    assert names == {"--request-esc-mode"}
    after = docopt.parse_docstring_sections(EscParseFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert EscParseFilter.has_in() and not EscParseFilter.has_out()


@pytest.mark.parametrize(
    ("argv", "parses"),
    [
        ([], False),
        (["--request-esc-mode=yes"], False),
        (["--request-esc-mode=no"], True),
        (["--REQUEST-ESC-MODE=NO"], True),
    ],
)
def test_mode_option(argv: list[str], parses: bool) -> None:
    f = make_filter(EscParseFilter, argv)
    assert isinstance(f, EscParseFilter)
    assert (f.parser is not None) == parses
    assert f.provides == (PROVIDES if parses else In.NONE)


@pytest.mark.parametrize(
    ("argv", "arg", "text"),
    [
        (["--request-esc-mode=maybe"], "--request-esc-mode=maybe", "Invalid value (expected yes or no)"),
        (["--request-esc-mode="], "--request-esc-mode=", "Invalid value (expected yes or no)"),
        (["--request-esc=no"], "--request-esc=no", "Unknown option"),
        (["--request-esc-mode=no", "--request-esc-mode=yes"], "--request-esc-mode=yes", "Duplicated option"),
    ],
)
def test_option_errors(argv: list[str], arg: str, text: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(EscParseFilter, argv)
    assert (exc.value.arg, exc.value.text) == (arg, text)


def test_request_mode_passes_everything_unchanged_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    ctx = FakeContext(port_name="ttyS0(0)", name="parse")
    with caplog.at_level(logging.INFO):
        f = make_filter(EscParseFilter, [], ctx=ctx)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert "ttyS0(0): escape mode is not available on Linux" in record.getMessage()
    f.wanted = In.NONE
    msgs: list[Message] = [LineData(b"a\xff\x03\x10b"), *NATIVE, Connect(True)]
    out, echo = run_in(f, msgs)
    assert echo == []
    assert all(o is m for o, m in zip(out, msgs, strict=True))


def test_parses_records_out_of_the_data() -> None:
    f = parser()
    out, _ = run_in(f, [LineData(b"a\xff\x00b\xff\x03\x30c"), LineData(b"\xff\x10\x80\x25\x00\x00")])
    assert out == [LineData(b"a\xffb"), ModemStatus(0x30, 0xF0), LineData(b"c"), RemoteBaudStatus(9600)]


def test_reports_only_what_is_wanted() -> None:
    f = parser(In.CTS | In.BREAK)
    out, _ = run_in(f, [LineData(b"\xff\x03\x30\xff\x02\x14\xff\x10\x80\x25\x00\x00x")])
    assert out == [ModemStatus(0x30, 0x10), BreakStatus(True), LineData(b"x")]
    f.wanted = In.NONE
    assert run_in(f, [LineData(b"\xff\x03\x30\xff\x02\x14y")])[0] == [LineData(b"y")]


def test_data_without_escapes_is_the_same_message() -> None:
    f = parser()
    msg = LineData(b"plain data")
    assert run_in(f, [msg])[0][0] is msg
    empty = LineData(b"")
    assert run_in(f, [empty])[0][0] is empty


def test_record_split_across_reads() -> None:
    f = parser()
    out, _ = run_in(f, [LineData(b"ab\xff"), LineData(b"\x11\x07"), LineData(b"\x02"), LineData(b"\x02cd")])
    assert out == [
        LineData(b"ab"),
        RemoteLcStatus(LineControl(7, Parity.EVEN, StopBits.TWO)),
        LineData(b"cd"),
    ]


def test_native_statuses_are_replaced_by_the_stream() -> None:
    f = parser()
    other = LocalBaudStatus(19200)
    assert run_in(f, [*NATIVE, other])[0] == [other]


def test_a_new_connection_starts_a_new_stream() -> None:
    f = parser()
    on, off = Connect(True), Connect(False)
    out, _ = run_in(f, [LineData(b"x\xff\x10\x01"), off, on, LineData(b"\x02\x03\x04\x05")])
    assert out == [LineData(b"x"), off, on, LineData(b"\x02\x03\x04\x05")]
    assert out[1] is off


def test_bad_codes_are_counted() -> None:
    f = parser()
    assert run_in(f, [LineData(b"a\xff\x42b")])[0] == [LineData(b"ab")]
    assert f.parser is not None and f.parser.errors == 1
