"""hub.logs: peer strings made safe for a log line, and the limiter of repeated warnings."""

from __future__ import annotations

import asyncio
import io
import logging
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.logs import SELF_LIMITED, PortLogger, RepeatLimiter, install_limiter, peer_text

# ---- peer_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"hub4com-py 0.1", "'hub4com-py 0.1'"),
        ("plain", "'plain'"),
        (b"evil\nFAKE: root\r\x1b[2J", "'evil\\nFAKE: root\\r\\x1b[2J'"),
        ("bidi \u202e and \u2028 line", "'bidi \\u202e and \\u2028 line'"),
        (b"\xff\xfe", "'\\\\xff\\\\xfe'"),
        (b"caf\xc3\xa9", "'café'"),
        (42, "'42'"),
    ],
)
def test_peer_text_escapes(value: object, expected: str) -> None:
    assert peer_text(value) == expected


def test_peer_text_bounds_and_says_how_long_it_was() -> None:
    assert peer_text(b"A" * 1000, limit=10) == "'AAAAAAAAAA'... (1000 bytes in all)"
    assert peer_text("B" * 11, limit=10) == "'BBBBBBBBBB'... (11 chars in all)"
    assert peer_text(b"x" * 10_000_000).endswith("(10000000 bytes in all)")


@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_peer_text_is_one_printable_bounded_line(value: bytes | str) -> None:
    text = peer_text(value, limit=50)
    assert text.isprintable()
    # quotes, escapes of up to 10 characters per character, the length note
    assert len(text) <= 50 * 10 + 40


# ---- RepeatLimiter --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, level: int = logging.WARNING, name: str = "x", **extra: object):
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def passed(limiter: RepeatLimiter, records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if limiter.filter(r)]


def test_a_repeated_warning_is_logged_once_then_summarised_on_the_next_after_the_interval() -> None:
    clock = Clock()
    lim = RepeatLimiter(10.0, clock, ports=["TCP(1)", "TCP(2)"])
    out = passed(lim, [record("%s: bad record %d", "TCP(1)", i) for i in range(1000)])
    assert out == ["TCP(1): bad record 0"]
    clock.now += 10.0
    out = passed(lim, [record("%s: bad record %d", "TCP(1)", 1000)])
    assert out == ["TCP(1): bad record 1000 (999 more like this in the last 10 s)"]
    assert lim.suppressed_total == 999


def test_ports_kinds_and_loggers_are_limited_apart() -> None:
    lim = RepeatLimiter(10.0, Clock(), ports=["TCP(1)", "TCP(2)", "gps(3)"])
    out = passed(
        lim,
        [
            record("%s: bad record %d", "TCP(1)", 1),
            record("%s: bad record %d", "TCP(2)", 1),  # another port (an argument)
            record("no port name in the args: %s", "on gps(3) here"),  # found in the message
            record("no port name in the args: %s", "nowhere"),  # no port at all
            record("%s: other kind", "TCP(1)"),  # another template
            record("%s: bad record %d", "TCP(1)", 2, name="y"),  # another logger
            record("engine said %s", "x", port="TCP(1)"),  # a filter's record names its port
            record("engine said %s", "x", port="TCP(2)"),
        ],
    )
    assert len(out) == 8
    assert passed(lim, [record("%s: bad record %d", "TCP(1)", 3)]) == []


def test_a_template_without_words_is_keyed_by_its_message_with_digits_masked() -> None:
    lim = RepeatLimiter(10.0, Clock(), ports=["TCPM(1)"])
    out = passed(
        lim,
        [
            record("%s: %s", "TCPM(1)", "refused connection from 10.0.0.1:5"),
            record("%s: %s", "TCPM(1)", "TLS handshake with 10.0.0.1:6 failed"),
            record("%s: %s", "TCPM(1)", "refused connection from 10.0.0.2:7"),  # same kind: held
        ],
    )
    assert len(out) == 2


def test_info_self_limited_and_summary_records_pass() -> None:
    lim = RepeatLimiter(10.0, Clock())
    recs = [record("same %d", i, level=logging.INFO) for i in range(5)]
    recs += [record("Write lost %s", "TCP(1)", **SELF_LIMITED) for _ in range(5)]
    assert len(passed(lim, recs)) == 10


def test_flush_summarises_what_was_held_once_the_interval_is_over() -> None:
    clock = Clock()
    lim = RepeatLimiter(10.0, clock)
    passed(lim, [record("bad %d", i, level=logging.ERROR) for i in range(3)])
    assert lim.flush() == []
    assert lim.next_due_s() == 10.0
    clock.now += 10.0
    (summary,) = lim.flush()
    assert summary.getMessage() == "bad 2 (2 more like this in the last 10 s)"
    assert summary.levelno == logging.ERROR and summary.ratelimited
    assert lim.flush() == [] and lim.next_due_s() is None
    assert lim.pending == 0


def test_an_exception_is_logged_with_the_first_only() -> None:
    clock = Clock()
    lim = RepeatLimiter(10.0, clock)
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    first, second = (logging.LogRecord("x", logging.ERROR, "f", 1, "bug %s", ("a",), exc_info) for _ in "ab")
    assert lim.filter(first) and not lim.filter(second)
    clock.now += 11
    (summary,) = lim.flush()
    assert summary.exc_info is None


def test_keys_stay_bounded() -> None:
    clock = Clock()
    lim = RepeatLimiter(10.0, clock)
    for i in range(20_000):
        clock.now += 0.001
        lim.filter(record("%s", f"different {'x' * (i % 7)} {chr(65 + i % 26)}{i}"))
    assert len(lim._seen) <= 4096


def test_port_logger_adds_the_port() -> None:
    got: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record)

    logger = logging.getLogger("test.portlogger")
    logger.propagate = False
    handler = Keep()
    logger.addHandler(handler)
    try:
        PortLogger(logger, lambda: "TCP(4)").warning("telnet peer: %s", "bad")
    finally:
        logger.removeHandler(handler)
    assert got[0].port == "TCP(4)" and got[0].getMessage() == "telnet peer: bad"


class Captured:
    """A logger with its own handler writing to a string."""

    def __init__(self, name: str):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.logger = logging.getLogger(name)
        self.logger.propagate = False
        self.logger.addHandler(self.handler)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


def test_installed_limiter_bounds_a_flood_of_200000() -> None:
    cap = Captured("test.flood")
    clock = Clock()
    try:
        handle = install_limiter(None, ["TCP(1)"], handlers=[cap.handler])
        handle.limiter.clock = clock
        for i in range(200_000):
            cap.logger.warning("%s: invalid escape record (error %d)", "TCP(1)", i + 1)
        clock.now += 10
        handle.close()  # logs what is still held back
    finally:
        cap.close()
    assert cap.lines() == [
        "TCP(1): invalid escape record (error 1)",
        "TCP(1): invalid escape record (error 200000) (199999 more like this in the last 10 s)",
    ]
    assert cap.handler.filters == []


def test_on_several_handlers_a_record_is_judged_once() -> None:
    first, second = Captured("test.two"), Captured("test.two")  # one logger, two handlers
    try:
        handle = install_limiter(None, handlers=[first.handler, second.handler])
        first.logger.warning("device gone")
        first.logger.warning("device gone")
        handle.close()
    finally:
        first.close()
        second.close()
    expected = ["device gone", "device gone (1 more like this in the last 0 s)"]
    assert first.lines() == second.lines() == expected


def test_the_loop_timer_summarises_when_the_flood_stops() -> None:
    cap = Captured("test.timer")
    clock = Clock()
    loop = asyncio.new_event_loop()

    async def wait_for_summary() -> None:
        for _ in range(500):
            if len(cap.lines()) == 2:
                return
            await asyncio.sleep(0.01)

    try:
        handle = install_limiter(loop, interval_s=0.05, handlers=[cap.handler])
        handle.limiter.clock = clock  # the test says when the interval is over
        for _ in range(3):
            cap.logger.error("device gone")
        clock.now += 1
        loop.run_until_complete(wait_for_summary())
        handle.close()
    finally:
        cap.close()
        loop.close()
    assert cap.lines() == ["device gone", "device gone (2 more like this in the last 1 s)"]
