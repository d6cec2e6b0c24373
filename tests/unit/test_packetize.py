"""packetize: pause, size, end bytes and maximum delay, on a manual clock."""

from __future__ import annotations

import docopt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.packetize import PacketizeConfig, PacketizeFilter, parse_end_bytes
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import Connect, FlowControl, LineData, Message, ModemStatus
from hub.options import option_names
from hub.testing import FakeContext, make_filter, run_in

EXPECTED = "two hex digits such as 0A, a name such as LF, or one character"


def packetizer(*argv: str) -> tuple[PacketizeFilter, FakeContext]:
    ctx = FakeContext(name="packetize")
    f = make_filter(PacketizeFilter, list(argv), ctx=ctx)
    assert isinstance(f, PacketizeFilter)
    return f, ctx


def feed(f: PacketizeFilter, *chunks: bytes) -> list[Message]:
    return run_in(f, [LineData(c) for c in chunks])[0]


def test_usage_parses() -> None:
    names = option_names(PacketizeFilter.USAGE)
    assert names == {"--pause", "--size", "--end-byte", "--max-delay", "--gap"}
    after = docopt.parse_docstring_sections(PacketizeFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert PacketizeFilter.has_in() and not PacketizeFilter.has_out()
    f, _ = packetizer()
    assert (f.provides, f.needs, f.sends, f.accepts) == (In.NONE, In.NONE, Out.NONE, Out.NONE)


@pytest.mark.parametrize(
    ("argv", "config"),
    [
        ([], PacketizeConfig(0.010, None, b"", None)),
        (["--pause=50"], PacketizeConfig(0.050, None, b"", None)),
        (["--size=64"], PacketizeConfig(None, 64, b"", None)),
        (["--end-byte=LF", "--max-delay=2.5"], PacketizeConfig(None, None, b"\n", 0.0025)),
        (["--max-delay=100"], PacketizeConfig(None, None, b"", 0.1)),
        (["--gap=20"], PacketizeConfig(0.010, None, b"", None, 0.02)),
        (["--end-byte=LF", "--gap=5"], PacketizeConfig(None, None, b"\n", None, 0.005)),
    ],
)
def test_configuration(argv: list[str], config: PacketizeConfig) -> None:
    f, _ = packetizer(*argv)
    assert f.config == config


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("0A", b"\n"),
        ("0x0d", b"\r"),
        ("LF", b"\n"),
        ("cr", b"\r"),
        ("CR,LF", b"\r\n"),
        ("NUL", b"\x00"),
        ("ETX,EOT", b"\x03\x04"),
        ("FF", b"\xff"),
        ("ff", b"\xff"),
        (";", b";"),
        ("A", b"A"),
        ("$,*", b"$*"),
        ("é", b"\xe9"),
    ],
)
def test_end_byte_values(text: str, end: bytes) -> None:
    assert parse_end_bytes(text) == end


@pytest.mark.parametrize(
    ("argv", "arg", "text"),
    [
        (["--pause=0"], "--pause=0", "Invalid value (expected a number of milliseconds above 0)"),
        (["--pause=soon"], "--pause=soon", "Invalid value (expected a number of milliseconds above 0)"),
        (["--max-delay=-1"], "--max-delay=-1", "Invalid value (expected a number of milliseconds above 0)"),
        (["--max-delay=inf"], "--max-delay=inf", "Invalid value (expected a number of milliseconds above 0)"),
        (["--size=0"], "--size=0", "Invalid value (expected a number of bytes above 0)"),
        (["--size=1.5"], "--size=1.5", "Invalid value (expected a number of bytes above 0)"),
        (
            ["--end-byte=LINEFEED"],
            "--end-byte=LINEFEED",
            "Invalid value 'LINEFEED' (expected " + EXPECTED + ")",
        ),
        (
            ["--end-byte=CR,"],
            "--end-byte=CR,",
            "Invalid value '' (expected " + EXPECTED + ")",
        ),
        (["--timeout=5"], "--timeout=5", "Unknown option"),
        (["--size=1", "--size=2"], "--size=2", "Duplicated option"),
    ],
)
def test_option_errors(argv: list[str], arg: str, text: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(PacketizeFilter, argv)
    assert (exc.value.arg, exc.value.text) == (arg, text)


def test_pause_sends_after_silence() -> None:
    f, ctx = packetizer("--pause=10")
    assert feed(f, b"ab") == []
    ctx.advance(0.008)
    assert feed(f, b"cd") == []  # restarts the pause
    ctx.advance(0.008)
    assert ctx.sent_in == []
    ctx.advance(0.002)
    assert ctx.sent_in == [LineData(b"abcd")]
    assert ctx.pending_timers == 0


def test_default_is_a_pause_of_10_ms() -> None:
    f, ctx = packetizer()
    feed(f, b"x")
    ctx.advance(0.0099)
    assert ctx.sent_in == []
    ctx.advance(0.0001)
    assert ctx.sent_in == [LineData(b"x")]


# (options, chunks, packets sent at once, data left pending)
CASES: list[tuple[list[str], list[bytes], list[bytes], bytes]] = [
    (["--size=4"], [b"abcdefghij"], [b"abcd", b"efgh"], b"ij"),
    (["--size=4"], [b"ab", b"cd", b"e"], [b"abcd"], b"e"),
    (["--size=4"], [b"abc", b"defghijkl"], [b"abcd", b"efgh", b"ijkl"], b""),
    (["--end-byte=LF"], [b"a\nb\nc"], [b"a\n", b"b\n"], b"c"),
    (["--end-byte=LF"], [b"ab", b"c\nd"], [b"abc\n"], b"d"),
    (["--end-byte=LF"], [b"\n\n"], [b"\n", b"\n"], b""),
    (["--end-byte=CR,LF"], [b"a\r\nb"], [b"a\r", b"\n"], b"b"),
    # whichever comes first
    (["--end-byte=LF", "--size=3"], [b"ab\ncdefg\nh"], [b"ab\n", b"cde", b"fg\n"], b"h"),
    (["--end-byte=LF", "--size=3"], [b"abc\n"], [b"abc", b"\n"], b""),
    (["--end-byte=LF", "--size=3"], [b"a", b"b", b"\n"], [b"ab\n"], b""),
]


@pytest.mark.parametrize(("argv", "chunks", "packets", "pending"), CASES)
def test_size_and_end_bytes(
    argv: list[str], chunks: list[bytes], packets: list[bytes], pending: bytes
) -> None:
    f, _ = packetizer(*argv)
    assert feed(f, *chunks) == [LineData(p) for p in packets]
    assert f.pending_bytes == len(pending)
    out = run_in(f, [Connect(False)])[0]
    assert out == ([LineData(pending)] if pending else []) + [Connect(False)]


def test_a_chunk_that_is_one_packet_passes_unchanged() -> None:
    f, _ = packetizer("--end-byte=LF")
    msg = LineData(b"$GPGGA,...*47\r\n")
    assert run_in(f, [msg])[0][0] is msg
    f, _ = packetizer("--size=3")
    msg = LineData(b"abc")
    assert run_in(f, [msg])[0][0] is msg


def test_max_delay_bounds_the_oldest_byte() -> None:
    f, ctx = packetizer("--pause=10", "--max-delay=25")
    for _ in range(4):
        feed(f, b"x")
        ctx.advance(0.006)
    assert ctx.sent_in == []  # 24 ms: no pause yet, not too old yet
    ctx.advance(0.001)
    assert ctx.sent_in == [LineData(b"xxxx")]
    # the next packet has its own deadline
    feed(f, b"y")
    ctx.advance(0.010)
    assert ctx.sent_in == [LineData(b"xxxx"), LineData(b"y")]


def test_max_delay_alone() -> None:
    f, ctx = packetizer("--max-delay=100")
    for _ in range(30):
        feed(f, b"z")
        ctx.advance(0.030)
    # a byte every 30 ms: each packet holds what came within 100 ms of its first byte
    assert ctx.sent_in == [LineData(b"zzzz")] * 7
    assert f.pending_bytes == 2


def test_only_size_waits_for_the_packet() -> None:
    f, ctx = packetizer("--size=10")
    feed(f, b"abc")
    ctx.advance(3600)
    assert ctx.sent_in == [] and f.pending_bytes == 3


def test_a_complete_packet_cancels_the_timers() -> None:
    f, ctx = packetizer("--end-byte=LF", "--pause=10", "--max-delay=50")
    feed(f, b"ab")
    assert ctx.pending_timers == 2
    assert feed(f, b"c\n") == [LineData(b"abc\n")]
    assert ctx.pending_timers == 0
    ctx.advance(1)
    assert ctx.sent_in == []


def test_other_messages_send_pending_data_first() -> None:
    f, ctx = packetizer("--pause=10")
    ms = ModemStatus(0x10, 0x10)
    out = run_in(f, [LineData(b"ab"), LineData(b"cd"), ms, LineData(b"ef")])[0]
    assert out == [LineData(b"abcd"), ms]
    assert out[1] is ms
    ctx.advance(1)
    assert ctx.sent_in == [LineData(b"ef")]
    # nothing pending: messages pass alone
    assert run_in(f, [ms])[0] == [ms]


def test_empty_data() -> None:
    f, _ = packetizer()
    empty = LineData(b"")
    assert run_in(f, [empty])[0][0] is empty
    feed(f, b"a")
    assert feed(f, b"") == []


def test_close_cancels_the_timers() -> None:
    f, ctx = packetizer("--pause=10", "--max-delay=20")
    feed(f, b"a")
    f.close()
    assert ctx.pending_timers == 0


@given(
    chunks=st.lists(
        st.binary(max_size=30).map(lambda b: b.translate(bytes(b"ab\n"[i % 3] for i in range(256))))
    ),
    size=st.none() | st.integers(1, 8),
    end=st.booleans(),
)
def test_packets_keep_every_byte_in_order(chunks: list[bytes], size: int | None, end: bool) -> None:
    argv = [f"--size={size}"] if size else []
    if end or not size:
        argv.append("--end-byte=LF")
    f, _ = packetizer(*argv)
    out = feed(f, *chunks) + run_in(f, [Connect(False)])[0][:-1]
    packets = [m.data for m in out if isinstance(m, LineData) and m.data]
    assert b"".join(packets) == b"".join(chunks)
    by_end = end or not size
    for p in packets[:-1]:  # the last one may have been cut short by CONNECT(FALSE)
        assert (by_end and p.endswith(b"\n")) or len(p) == size
    for p in packets:
        assert size is None or len(p) <= size
        assert not by_end or b"\n" not in p[:-1]


# ---- --gap ------------------------------------------------------------------------------


def test_gap_holds_each_packet_after_the_one_before() -> None:
    f, ctx = packetizer("--end-byte=LF", "--gap=100")
    assert feed(f, b"one\ntwo\nthree\n") == [LineData(b"one\n")]
    ctx.advance(0.099)
    assert ctx.sent_in == []
    ctx.advance(0.001)
    assert ctx.sent_in == [LineData(b"two\n")]
    ctx.advance(0.1)
    assert ctx.sent_in == [LineData(b"two\n"), LineData(b"three\n")]
    ctx.advance(0.1)  # the gap after the last one passes; nothing waits
    assert ctx.pending_timers == 0
    assert feed(f, b"four\n") == [LineData(b"four\n")]  # after the gap: at once


def test_gap_keeps_other_messages_in_their_place() -> None:
    f, ctx = packetizer("--end-byte=LF", "--gap=50")
    out = run_in(f, [LineData(b"a\nb\n"), Connect(False), LineData(b"c\n")])[0]
    assert out == [LineData(b"a\n")]
    ctx.advance(0.05)
    assert ctx.sent_in == [LineData(b"b\n")]
    ctx.advance(0.05)
    assert ctx.sent_in == [LineData(b"b\n"), Connect(False), LineData(b"c\n")]


def test_gap_after_a_packet_the_pause_timer_made() -> None:
    f, ctx = packetizer("--pause=10", "--gap=100")
    assert feed(f, b"ab") == []
    ctx.advance(0.01)
    assert ctx.sent_in == [LineData(b"ab")]
    assert feed(f, b"cd") == []
    ctx.advance(0.01)  # grouped, but the gap after "ab" (sent at 0.01) is not over
    assert ctx.sent_in == [LineData(b"ab")]
    ctx.advance(0.08)
    assert ctx.sent_in == [LineData(b"ab")]
    ctx.advance(0.015)
    assert ctx.sent_in == [LineData(b"ab"), LineData(b"cd")]


def test_gap_pauses_the_port_while_much_waits() -> None:
    f, ctx = packetizer("--size=1024", "--gap=10")
    feed(f, bytes(1024 * 80))
    assert f.waiting_bytes == 79 * 1024 and ctx.sent_out == [FlowControl(True)]
    ctx.advance(0.01 * (79 - 22) + 0.005)  # 22 KiB left: more than a third of 64 KiB
    assert f.waiting_bytes == 22 * 1024 and ctx.sent_out == [FlowControl(True)]
    ctx.advance(0.01)
    assert f.waiting_bytes == 21 * 1024 and ctx.sent_out == [FlowControl(True), FlowControl(False)]
    ctx.advance(1.0)
    assert f.waiting_bytes == 0 and len(ctx.sent_in) == 79


def test_close_cancels_the_gap() -> None:
    f, ctx = packetizer("--end-byte=LF", "--gap=10")
    feed(f, b"a\nb\n")
    f.close()
    assert ctx.pending_timers == 0
