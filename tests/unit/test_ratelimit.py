"""ratelimit: pacing to the line speed on a manual clock, order, flow control, options."""

from __future__ import annotations

import logging

import docopt
import pytest

from filters.ratelimit import RateLimitFilter, bits_per_char
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import (
    Connect,
    FlowControl,
    LineControl,
    LineData,
    LocalBaudStatus,
    Message,
    Parity,
    PurgeTx,
    RemoteBaudStatus,
    SetBaud,
    SetLineControl,
    SetPins,
    StopBits,
)
from hub.options import option_names
from hub.testing import FakeContext, make_filter, run_in, run_out

XOFF, XON = FlowControl(True), FlowControl(False)


class Clock(FakeContext):
    """Records when each message left the filter."""

    def __init__(self) -> None:
        super().__init__(name="ratelimit")
        self.log_out: list[tuple[float, Message]] = []
        self.log_in: list[tuple[float, Message]] = []

    def send_out(self, msgs: list[Message]) -> None:
        super().send_out(msgs)
        self.log_out.extend((self.now, m) for m in msgs)

    def send_in(self, msgs: list[Message]) -> None:
        super().send_in(msgs)
        self.log_in.extend((self.now, m) for m in msgs)


def limiter(*argv: str) -> tuple[RateLimitFilter, Clock]:
    ctx = Clock()
    f = make_filter(RateLimitFilter, list(argv), ctx=ctx)
    assert isinstance(f, RateLimitFilter)
    return f, ctx


def write(f: RateLimitFilter, ctx: Clock, msgs: list[Message]) -> None:
    """Write messages now; what passes at once is logged like the rest."""
    ctx.log_out.extend((ctx.now, m) for m in run_out(f, msgs, src=1))


def data_sent(ctx: Clock) -> list[tuple[float, int]]:
    return [(t, len(m.data)) for t, m in ctx.log_out if isinstance(m, LineData)]


def finish_time(f: RateLimitFilter, ctx: Clock) -> float:
    """When the line is idle again: the last send plus its line time."""
    ctx.advance(1000)
    assert f.queued == 0 and ctx.pending_timers == 0
    t, n = data_sent(ctx)[-1]
    return t + n / f.rate


def assert_never_faster(ctx: Clock, rate: float, burst: int) -> None:
    """By any send time t, at most rate * t bytes (plus one burst) have gone out."""
    total = 0
    for t, n in data_sent(ctx):
        total += n
        assert total <= rate * t + burst + 1e-6


def test_usage_parses() -> None:
    names = option_names(RateLimitFilter.USAGE)
    assert names == {"--baud", "--data", "--parity", "--stop", "--bytes-per-second", "--queue-limit"}
    after = docopt.parse_docstring_sections(RateLimitFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert RateLimitFilter.has_out() and RateLimitFilter.has_in()
    f, _ = limiter()
    assert (f.provides, f.needs, f.sends, f.accepts) == (In.NONE, In.NONE, Out.NONE, Out.NONE)


@pytest.mark.parametrize(
    ("lc", "bits"),
    [
        (LineControl(8, Parity.NONE, StopBits.ONE), 10),
        (LineControl(7, Parity.EVEN, StopBits.TWO), 11),
        (LineControl(8, Parity.ODD, StopBits.ONE), 11),
        (LineControl(5, Parity.NONE, StopBits.ONE_POINT_FIVE), 7.5),
        (LineControl(8, Parity.SPACE, StopBits.TWO), 12),
        (LineControl(), 10),
    ],
)
def test_bits_per_char(lc: LineControl, bits: float) -> None:
    assert bits_per_char(lc) == bits


@pytest.mark.parametrize(
    ("argv", "rate"),
    [
        ([], 960),
        (["--baud=115200"], 11520),
        (["--baud=9600", "--data=7", "--parity=e", "--stop=2"], 9600 / 11),
        (["--parity=Odd", "--stop=1.5"], 9600 / 11.5),
        (["--stop=1,5"], 9600 / 10.5),
        (["--bytes-per-second=123.5"], 123.5),
    ],
)
def test_pace_from_options(argv: list[str], rate: float) -> None:
    f, _ = limiter(*argv)
    assert f.rate == pytest.approx(rate)


@pytest.mark.parametrize(
    ("argv", "arg", "text"),
    [
        (["--baud=0"], "--baud=0", "Invalid value (expected a baud rate above 0)"),
        (["--baud=fast"], "--baud=fast", "Invalid value (expected a baud rate above 0)"),
        (["--data=9"], "--data=9", "Invalid value (expected 5, 6, 7 or 8)"),
        (["--data=x"], "--data=x", "Invalid value (expected 5, 6, 7 or 8)"),
        (["--parity=x"], "--parity=x", "Invalid value (expected n[o], o[dd], e[ven], m[ark] or s[pace])"),
        (["--stop=3"], "--stop=3", "Invalid value (expected 1, 1.5 or 2)"),
        (["--bytes-per-second=0"], "--bytes-per-second=0", "Invalid value (expected a number above 0)"),
        (["--bytes-per-second=inf"], "--bytes-per-second=inf", "Invalid value (expected a number above 0)"),
        (["--bytes-per-second=nan"], "--bytes-per-second=nan", "Invalid value (expected a number above 0)"),
        (["--queue-limit=-5"], "--queue-limit=-5", "Invalid value (expected a number of bytes above 0)"),
        (["--queue-limit=1k"], "--queue-limit=1k", "Invalid value (expected a number of bytes above 0)"),
        (
            ["--bytes-per-second=100", "--baud=300"],
            "--baud=300",
            "Conflicting options (--bytes-per-second replaces --baud, --data, --parity, --stop)",
        ),
        (["--speed=1"], "--speed=1", "Unknown option"),
        (["--baud=1", "--baud=2"], "--baud=2", "Duplicated option"),
    ],
)
def test_option_errors(argv: list[str], arg: str, text: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(RateLimitFilter, argv)
    assert (exc.value.arg, exc.value.text) == (arg, text)


def test_9600_8n1_is_960_bytes_per_second() -> None:
    f, ctx = limiter()
    write(f, ctx, [LineData(bytes(range(256)) * 18 + bytes(192))])  # 4800 bytes
    assert finish_time(f, ctx) == pytest.approx(5.0, abs=0.02)
    assert b"".join(m.data for _, m in ctx.log_out if isinstance(m, LineData)) == bytes(
        range(256)
    ) * 18 + bytes(192)
    # slices of 10 ms worth (10 bytes), never faster than the line
    assert {n for _, n in data_sent(ctx)} == {10}
    assert_never_faster(ctx, 960, 10)


class EarlyClock(Clock):
    """Timers fire up to 1 ms early: uvloop rounds call_later delays to whole milliseconds."""

    def call_later(self, delay_s, callback):  # type: ignore[no-untyped-def]
        return super().call_later(int(delay_s * 1000) / 1000, callback)


def test_early_timers_do_not_speed_up_the_pace() -> None:
    ctx = EarlyClock()
    f = make_filter(RateLimitFilter, [], ctx=ctx)
    assert isinstance(f, RateLimitFilter)
    write(f, ctx, [LineData(bytes(1920))])  # 10.4 ms slices, fired after 10 ms
    ctx.advance(3)
    assert sum(n for _, n in data_sent(ctx)) == 1920
    # Each send may be a millisecond early (about one byte), but that never adds up.
    assert_never_faster(ctx, 960, 11)
    assert data_sent(ctx)[-1][0] >= (1920 - 10) / 960 - 0.001


def test_many_small_writes_are_paced_too() -> None:
    f, ctx = limiter()
    for _ in range(480):
        write(f, ctx, [LineData(b"0123456789")])
        ctx.advance(0.001)
    assert finish_time(f, ctx) == pytest.approx(5.0, abs=0.02)
    assert_never_faster(ctx, 960, 10)
    assert sum(n for _, n in data_sent(ctx)) == 4800


def test_small_write_on_an_idle_line_passes_at_once_unchanged() -> None:
    f, ctx = limiter()
    msg = LineData(b"hello")
    assert run_out(f, [msg]) == [msg]
    assert run_out(f, [msg]) == []  # the line is busy for 5.2 ms: queued
    ctx.advance(0.1)
    assert ctx.sent_out == [LineData(b"hello")]


def test_set_baud_mid_stream_doubles_the_pace() -> None:
    f, ctx = limiter()
    write(f, ctx, [LineData(bytes(960)), SetBaud(19200), LineData(bytes(1920))])
    end = finish_time(f, ctx)
    assert end == pytest.approx(2.0, abs=0.02)
    assert f.rate == 1920
    # the setting goes to the port after the data before it, and the rest is twice as fast
    [k] = [k for k, (_, m) in enumerate(ctx.log_out) if isinstance(m, SetBaud)]
    t_set = ctx.log_out[k][0]
    assert t_set == pytest.approx(1.0, abs=0.02)
    assert sum(len(m.data) for _, m in ctx.log_out[:k] if isinstance(m, LineData)) == 960
    assert_never_faster(ctx, 1920, 20)
    after = [len(m.data) for _, m in ctx.log_out[k + 1 :] if isinstance(m, LineData)]
    assert sum(after) == 1920 and max(after) == 19  # slices of 10 ms at the new pace


def test_7e2_changes_bits_per_char() -> None:
    f, ctx = limiter()
    write(f, ctx, [SetLineControl(LineControl(7, Parity.EVEN, StopBits.TWO)), LineData(bytes(8727))])
    assert f.rate == pytest.approx(9600 / 11)
    assert finish_time(f, ctx) == pytest.approx(10.0, abs=0.02)


def test_line_control_fields_merge() -> None:
    f, _ = limiter("--data=7", "--parity=e", "--stop=2")
    run_out(f, [SetLineControl(LineControl(8))])
    assert f.lc == LineControl(8, Parity.EVEN, StopBits.TWO)
    run_out(f, [SetLineControl(LineControl(None, Parity.NONE, StopBits.ONE)), SetBaud(4800)])
    assert f.rate == 480


def test_bad_settings_do_not_change_the_pace() -> None:
    f, _ = limiter()
    bad: list[Message] = [SetBaud(0), SetLineControl(LineControl(0))]
    assert run_out(f, bad) == bad
    assert f.rate == 960


def test_source_statuses_do_not_change_the_pace() -> None:
    f, _ = limiter()
    msgs: list[Message] = [LocalBaudStatus(300), RemoteBaudStatus(300)]
    assert run_out(f, msgs) == msgs
    assert f.rate == 960


def test_fixed_pace_ignores_settings_but_passes_them() -> None:
    f, ctx = limiter("--bytes-per-second=100")
    write(f, ctx, [LineData(bytes(1000)), SetBaud(115200), LineData(bytes(1000))])
    assert finish_time(f, ctx) == pytest.approx(20.0, abs=0.02)
    assert SetBaud(115200) in ctx.sent_out
    assert_never_faster(ctx, 100, 1)


def test_slow_lines_send_one_byte_at_a_time() -> None:
    f, ctx = limiter("--baud=300")
    write(f, ctx, [LineData(b"abc")])
    assert data_sent(ctx) == [(0.0, 1)]
    assert finish_time(f, ctx) == pytest.approx(0.1)


def test_messages_keep_their_place_behind_queued_data() -> None:
    f, ctx = limiter()
    pins, off = SetPins(1, 1), Connect(False)
    write(f, ctx, [LineData(bytes(100)), pins, LineData(bytes(5)), off])
    ctx.advance(1)
    kinds = [type(m).__name__ for _, m in ctx.log_out]
    assert kinds[-3:] == ["SetPins", "LineData", "Connect"]
    assert sum(n for _, n in data_sent(ctx)) == 105
    [t_off] = [t for t, m in ctx.log_out if m is off]
    assert t_off == pytest.approx(100 / 960, abs=0.011)


def test_messages_on_an_empty_queue_pass_at_once() -> None:
    f, _ = limiter()
    run_out(f, [LineData(bytes(10))])  # the line is busy, the queue is empty
    msgs: list[Message] = [SetPins(1, 1), Connect(True)]
    out = run_out(f, msgs)
    assert out == msgs and out[0] is msgs[0]


def test_flow_control_for_the_port_is_never_held_back() -> None:
    f, _ = limiter()
    run_out(f, [LineData(bytes(100))])
    assert run_out(f, [XOFF]) == [XOFF]


def test_xoff_above_the_limit_and_xon_at_a_third() -> None:
    f, ctx = limiter("--queue-limit=300")
    write(f, ctx, [LineData(bytes(300))])
    assert ctx.log_in == []  # 290 queued: not above the limit
    write(f, ctx, [LineData(bytes(20))])
    assert ctx.log_in == [(0.0, XOFF)]
    assert f.paused
    write(f, ctx, [LineData(bytes(500))])  # still paused: no second XOFF
    ctx.advance(100)
    assert [m for _, m in ctx.log_in] == [XOFF, XON]
    # XON when 100 bytes (a third) are left: 810 queued, 710 sent at 960 B/s
    assert ctx.log_in[1][0] == pytest.approx(710 / 960, abs=0.011)


def test_default_limit_is_one_second_of_data() -> None:
    f, _ = limiter()
    assert f.limit == 960
    run_out(f, [SetBaud(115200)])
    assert f.limit == 11520
    f, _ = limiter("--baud=300")
    assert f.limit == 256


def test_the_ports_own_xoff_holds_the_queue() -> None:
    f, ctx = limiter()
    out, echo = run_in(f, [XOFF])
    assert out == [XOFF] and out[0] is XOFF and echo == []
    write(f, ctx, [LineData(bytes(100))])  # held: even the first slice waits
    ctx.advance(1)
    assert data_sent(ctx) == [] and f.queued == 100
    run_in(f, [XOFF, XON])  # counted: still held
    ctx.advance(1)
    assert data_sent(ctx) == []
    run_in(f, [XON])
    end = finish_time(f, ctx)
    assert end == pytest.approx(2 + 100 / 960, abs=0.011)
    assert sum(n for _, n in data_sent(ctx)) == 100


def test_xoff_while_sending_stops_after_the_current_slice() -> None:
    f, ctx = limiter()
    write(f, ctx, [LineData(bytes(100))])
    ctx.advance(0.025)  # slices at 0, 10.4 and 20.8 ms
    run_in(f, [XOFF])
    ctx.advance(5)
    assert sum(n for _, n in data_sent(ctx)) == 30
    run_in(f, [XON])
    ctx.advance(5)
    assert sum(n for _, n in data_sent(ctx)) == 100
    assert_never_faster(ctx, 960, 10)


def test_purge_empties_the_queue() -> None:
    f, ctx = limiter("--queue-limit=100")
    pins = SetPins(1, 1)
    write(f, ctx, [LineData(bytes(500)), pins, LineData(bytes(500))])
    assert f.paused
    out = run_out(f, [PurgeTx()])
    assert out == [pins, PurgeTx()]
    assert f.queued == 0 and not f.paused
    assert ctx.sent_in == [XOFF, XON]
    ctx.advance(10)
    assert ctx.sent_out == []


def test_empty_data_passes() -> None:
    f, _ = limiter()
    run_out(f, [LineData(bytes(100))])
    empty = LineData(b"")
    assert run_out(f, [empty])[0] is empty


def test_close_cancels_the_timer() -> None:
    f, ctx = limiter()
    run_out(f, [LineData(bytes(100))])
    assert ctx.pending_timers == 1
    f.close()
    assert ctx.pending_timers == 0


def test_warns_once_when_sources_are_not_throttled(caplog: pytest.LogCaptureFixture) -> None:
    f, ctx = limiter("--queue-limit=1000")
    with caplog.at_level(logging.WARNING):
        write(f, ctx, [LineData(bytes(600 * 1024))])  # one large read: no warning
        assert caplog.records == []
        for _ in range(4):
            write(f, ctx, [LineData(bytes(600 * 1024))])
    assert len(caplog.records) == 1
    assert "flow-control route" in caplog.records[0].getMessage()
    assert ctx.sent_in == [XOFF]
