"""Password access (hub.password) and its place in the listeners' gate (hub.netsec)."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub import password as pw
from hub.errors import UsageError
from hub.netsec import Gate, ListenerPolicy, RateLimiter, Verdict
from hub.password import Check, PasswordCheck, Secret, read_password_file

SECRET = Secret(b"s3cret pass", "/etc/hub/pw")


@pytest.mark.parametrize(
    ("chunks", "state", "rest"),
    [
        ([b"s3cret pass\n"], Check.OK, b""),
        ([b"s3cret pass\r\nhello"], Check.OK, b"hello"),
        ([b"s3c", b"ret ", b"pass", b"\n", b"data"], Check.OK, b""),
        ([b"s3cret pass"], Check.PENDING, b""),
        ([b"s3cret pas\n"], Check.WRONG, b""),
        ([b"S3CRET PASS\n"], Check.WRONG, b""),
        ([b"\n"], Check.WRONG, b""),
        ([b"s3cret pass \n"], Check.WRONG, b""),
        ([b"x" * 300], Check.TOO_LONG, b""),
        ([b"x" * 200, b"x" * 200], Check.TOO_LONG, b""),
    ],
)
def test_password_line(chunks: list[bytes], state: Check, rest: bytes) -> None:
    check = PasswordCheck(SECRET)
    got: tuple[Check, bytes] = (Check.PENDING, b"")
    for chunk in chunks:
        got = check.feed(chunk)
        if got[0] is not Check.PENDING:
            break
    assert got == (state, rest)


def test_feed_after_the_verdict_is_our_bug() -> None:
    check = PasswordCheck(SECRET)
    check.feed(b"nope\n")
    with pytest.raises(RuntimeError, match="after the verdict"):
        check.feed(b"again\n")


@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=5))
def test_any_bytes_in_any_pieces_give_one_verdict(data: bytes, cuts: list[int]) -> None:
    check = PasswordCheck(SECRET)
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    state = Check.PENDING
    for a, b in itertools.pairwise(points):
        state, _ = check.feed(data[a:b])
        if state is not Check.PENDING:
            break
    whole = PasswordCheck(SECRET).feed(data)[0]
    assert state is whole


def test_secret_never_shows_the_password() -> None:
    assert "s3cret" not in repr(SECRET) and "s3cret" not in str(SECRET)
    assert "s3cret" not in repr(ListenerPolicy(password=SECRET))
    assert SECRET == Secret(b"s3cret pass", "/elsewhere") and SECRET != Secret(b"other", "/etc/hub/pw")
    assert SECRET.line() == b"s3cret pass\n"


def test_password_file(tmp_path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"s3cret pass\r\nsecond line\n")
    f.chmod(0o600)
    secret = read_password_file(str(f))
    assert secret == SECRET and secret is not None and secret.warning() is None
    f.chmod(0o644)
    assert "readable by other users" in (secret.warning() or "")
    assert read_password_file("") is None


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (None, "Cannot read the password file"),
        (b"\nlater\n", "starts with an empty line"),
        (b"", "starts with an empty line"),
        (b"x" * 257 + b"\n", "longer than 256 bytes"),
    ],
)
def test_bad_password_files_are_one_line(tmp_path, content: bytes | None, text: str) -> None:
    f = tmp_path / "pw"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(UsageError) as info:
        read_password_file(str(f))
    assert text in str(info.value) and "\n" not in str(info.value)
    if content:
        assert os.fsdecode(content[:5]) not in str(info.value)


@pytest.mark.parametrize("value", ["0", "-1", "x", "4000"])
def test_bad_timeouts(value: str) -> None:
    with pytest.raises(UsageError, match="Invalid --password-timeout"):
        pw.parse_timeout(value)


def test_warnings() -> None:
    assert pw.warnings("TCP(1)", SECRET, "127.0.0.1", tls=False) == []
    assert pw.warnings("TCP(1)", SECRET, "::1", tls=False) == []
    assert pw.warnings("TCP(1)", SECRET, "localhost", tls=False) == []
    assert pw.warnings("TCP(1)", SECRET, "192.0.2.1", tls=True) == []
    (text,) = pw.warnings("TCP(1)", SECRET, None, tls=False)
    assert text.startswith("TCP(1) sends its password over plain TCP") and "TLS" in text


# ---- the gate ------------------------------------------------------------------------


def test_rate_limiter_burst_and_peek() -> None:
    rl = RateLimiter(5 / 60, burst=5)
    assert rl.burst == 5
    for _ in range(5):
        assert rl.peek("a", 0.0)
        assert rl.allow("a", 0.0)
    assert not rl.peek("a", 0.0) and not rl.peek("a", 11.0)
    assert rl.peek("a", 12.0) and rl.peek("b", 0.0)


def test_an_address_with_too_many_wrong_passwords_is_locked_out_for_a_while() -> None:
    gate = Gate(ListenerPolicy(password=SECRET, max_rate=0), ports=100)
    for i in range(pw.MAX_FAILURES):
        verdict, ticket = gate.admit("192.0.2.7", float(i))
        assert verdict is Verdict.ADMIT and ticket is not None
        ticket.release()
        text = gate.password_failed("192.0.2.7:4000", "wrong password", float(i))
        assert text is None or text.startswith("refused 192.0.2.7:4000: wrong password")
    assert gate.admit("192.0.2.7", 5.0) == (Verdict.LOCKED_OUT, None)
    assert gate.admit("::ffff:192.0.2.7", 5.0)[0] is Verdict.LOCKED_OUT  # the same address, dual stack
    assert gate.admit("192.0.2.8", 5.0)[0] is Verdict.ADMIT  # others are not affected
    # one failure ages out per FAILURE_WINDOW_S / MAX_FAILURES
    later = 4.0 + pw.FAILURE_WINDOW_S / pw.MAX_FAILURES
    assert gate.admit("192.0.2.7", later)[0] is Verdict.ADMIT
    assert gate.counts[Verdict.BAD_PASSWORD] == 5 and gate.counts[Verdict.LOCKED_OUT] == 2
    snap = gate.snapshot()
    assert snap["refused"]["bad_password"] == 5 and snap["refused"]["locked_out"] == 2
    assert "5 wrong or missing passwords, 2 refused for too many of them" in gate.summary()


def test_failures_are_logged_once_per_address_and_interval() -> None:
    gate = Gate(ListenerPolicy(password=SECRET), ports=1)
    first = gate.password_failed("192.0.2.7:1", "wrong password", 0.0)
    assert first == "refused 192.0.2.7:1: wrong password"
    assert gate.password_failed("192.0.2.7:2", "no password within 10 s", 1.0) is None
    assert gate.flush(10.0) == [
        "1 more refused connections (wrong or missing password) from 192.0.2.7 in the last 10 s"
    ]


def test_without_a_password_nothing_is_locked_out() -> None:
    gate = Gate(ListenerPolicy(max_rate=0), ports=1)
    assert gate.failures is None
    assert "passwords" not in gate.summary()


def test_a_password_authenticates_a_listener() -> None:
    assert ListenerPolicy(password=SECRET).authenticates
    assert ListenerPolicy(password=SECRET) != ListenerPolicy(password=Secret(b"x"))
