"""pin2con: CONNECT follows a signal; the port's own CONNECT is discarded; delayed disconnect."""

from __future__ import annotations

import docopt
import pytest

from filters.pin2con import Pin2ConFilter
from hub.caps import In
from hub.errors import UsageError
from hub.messages import BreakStatus, Connect, LineData, ModemStatus, Msr
from hub.options import option_names
from hub.testing import FakeContext, make_filter, run_in

CTS, DSR, RI, DCD = Msr.CTS, Msr.DSR, Msr.RI, Msr.DCD
ON, OFF = Connect(True), Connect(False)


def dsr(on: bool) -> ModemStatus:
    return ModemStatus(DSR if on else 0, DSR)


def test_usage_parses() -> None:
    names = option_names(Pin2ConFilter.USAGE)
    assert names == {"--connect", "--delay-disconnect"}
    after = docopt.parse_docstring_sections(Pin2ConFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert Pin2ConFilter.has_in() and not Pin2ConFilter.has_out()


@pytest.mark.parametrize(
    ("argv", "needs", "on", "off"),
    [
        ([], In.DSR, dsr(True), dsr(False)),
        (["--connect=cts"], In.CTS, ModemStatus(CTS, CTS), ModemStatus(0, CTS)),
        (["--connect=DCD"], In.DCD, ModemStatus(DCD | CTS, 0xF0), ModemStatus(CTS, 0xF0)),
        (["--connect=ring"], In.RI, ModemStatus(RI, RI), ModemStatus(0, RI)),
        (["--connect=!dsr"], In.DSR, dsr(False), dsr(True)),
        (["--connect=break"], In.BREAK, BreakStatus(True), BreakStatus(False)),
        (["--connect=!break"], In.BREAK, BreakStatus(False), BreakStatus(True)),
    ],
)
def test_signal_drives_connect(argv: list[str], needs: In, on: object, off: object) -> None:
    f = make_filter(Pin2ConFilter, argv)
    assert f.needs == needs
    out, echo = run_in(f, [on, on, off, off, on])
    assert out == [on, ON, on, off, OFF, off, on, ON]
    assert echo == []


def test_ports_own_connect_is_discarded() -> None:
    f = make_filter(Pin2ConFilter, [])
    assert run_in(f, [ON, dsr(True), OFF, ON]) == ([dsr(True), ON], [])


def test_initial_state_is_disconnected() -> None:
    f = make_filter(Pin2ConFilter, [])
    assert run_in(f, [dsr(False)]) == ([dsr(False)], [])


def test_unrelated_status_is_ignored() -> None:
    f = make_filter(Pin2ConFilter, [])
    cts = ModemStatus(CTS | DSR, CTS)  # DSR is outside the mask: not reported
    brk = BreakStatus(True)  # not the chosen signal
    data = LineData(b"x")
    out, _ = run_in(f, [cts, brk, data])
    assert out == [cts, brk, data]
    assert all(a is b for a, b in zip(out, [cts, brk, data], strict=True))


def test_delayed_disconnect_is_sent_when_the_signal_stays_off() -> None:
    ctx = FakeContext()
    f = make_filter(Pin2ConFilter, ["--delay-disconnect=500"], ctx=ctx)
    assert run_in(f, [dsr(True), dsr(False)])[0] == [dsr(True), ON, dsr(False)]
    ctx.advance(0.499)
    assert ctx.sent_in == []
    ctx.advance(0.001)
    assert ctx.sent_in == [OFF]
    assert ctx.pending_timers == 0
    # and the next "on" connects again
    assert run_in(f, [dsr(True)])[0] == [dsr(True), ON]


def test_delayed_disconnect_is_cancelled_when_the_signal_returns() -> None:
    ctx = FakeContext()
    f = make_filter(Pin2ConFilter, ["--delay-disconnect=500"], ctx=ctx)
    run_in(f, [dsr(True), dsr(False)])
    ctx.advance(0.3)
    assert run_in(f, [dsr(True)])[0] == [dsr(True)]  # still connected: nothing new
    assert ctx.pending_timers == 0
    ctx.advance(10)
    assert ctx.sent_in == []
    # a second "off" waits the full delay again
    run_in(f, [dsr(False), dsr(False)])
    assert ctx.pending_timers == 1
    ctx.advance(0.5)
    assert ctx.sent_in == [OFF]


def test_close_cancels_the_pending_disconnect() -> None:
    ctx = FakeContext()
    f = make_filter(Pin2ConFilter, ["--delay-disconnect=100"], ctx=ctx)
    run_in(f, [dsr(True), dsr(False)])
    f.close()
    ctx.advance(1)
    assert ctx.sent_in == []


def test_no_stray_output(capsys: pytest.CaptureFixture[str]) -> None:
    ctx = FakeContext()
    f = make_filter(Pin2ConFilter, ["--delay-disconnect=100"], ctx=ctx)
    run_in(f, [dsr(True), dsr(False), dsr(True)])
    assert capsys.readouterr() == ("", "")


def test_zero_delay_disconnects_at_once() -> None:
    ctx = FakeContext()
    f = make_filter(Pin2ConFilter, ["--delay-disconnect=0"], ctx=ctx)
    assert run_in(f, [dsr(True), dsr(False)])[0] == [dsr(True), ON, dsr(False), OFF]
    assert ctx.pending_timers == 0


@pytest.mark.parametrize(
    ("arg", "text"),
    [
        ("--connect=rts", "Unknown signal 'rts' (expected cts, dsr, dcd, ring or break)"),
        ("--connect=!", "Unknown signal '' (expected cts, dsr, dcd, ring or break)"),
        ("--connect=", "Unknown signal '' (expected cts, dsr, dcd, ring or break)"),
        ("--delay-disconnect=abc", "Invalid delay (expected a number of milliseconds)"),
        ("--delay-disconnect=-5", "Invalid delay (expected a number of milliseconds)"),
        ("--delay-disconnect=1.5", "Invalid delay (expected a number of milliseconds)"),
        ("--delay-disconnect=", "Invalid delay (expected a number of milliseconds)"),
    ],
)
def test_bad_value(arg: str, text: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(Pin2ConFilter, [arg])
    assert (exc.value.arg, exc.value.text) == (arg, text)


def test_duplicated_option() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(Pin2ConFilter, ["--connect=dsr", "--connect=cts"])
    assert exc.value.text.startswith("Duplicated")
