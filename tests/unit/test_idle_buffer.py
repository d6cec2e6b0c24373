"""IdleBuffer: --buffer and --frame for a port with one connection at a time (sans-IO)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from drivers._sessions import IdleBuffer


def connect(buf: IdleBuffer, *live: bytes) -> tuple[bytes, int]:
    """What a connection gets: the kept chunks, then its share of `live`; and the bytes skipped."""
    out = b"".join(buf.begin())
    skipped = 0
    for chunk in live:
        data, n = buf.live(chunk)
        out += data
        skipped += n
    return out, skipped


def test_bytes_kept_up_to_the_limit_and_the_rest_is_unheard() -> None:
    buf = IdleBuffer(10, framed=False)
    assert buf.nobody(b"abcdef") == 0
    assert buf.nobody(b"ghijkl") == 2  # 10 kept, 2 unheard
    assert buf.kept == 10
    assert connect(buf, b"mn") == (b"abcdefghijmn", 0)


def test_without_a_limit_nothing_is_kept_and_bytes_flow_as_they_come() -> None:
    buf = IdleBuffer(0, framed=False)
    assert buf.nobody(b"abc") == 3
    assert connect(buf, b"d", b"ef") == (b"def", 0)


def test_lines_kept_whole_and_a_partial_first_line_skipped() -> None:
    buf = IdleBuffer(30, framed=True)
    assert buf.nobody(b"tail of a line\n$GPGGA,1*00\r\n") == len(b"tail of a line\n")
    assert buf.nobody(b"$GPRMC,2*00\r\n$GPGSA,3*00\r\n") == 13  # the second line does not fit: frozen
    assert buf.nobody(b"$GPVTG,4") == 8
    # kept: two whole lines; the live data is mid-line, so the connection starts at the next line
    got, skipped = connect(buf, b"*00\r\n", b"$GPGGA,5*00\r\n")
    assert got == b"$GPGGA,1*00\r\n$GPRMC,2*00\r\n$GPGGA,5*00\r\n"
    assert skipped == 5


def test_kept_data_that_ends_mid_line_runs_on_into_the_live_data() -> None:
    buf = IdleBuffer(100, framed=True)
    buf.nobody(b"x\n$GPGGA,1")
    got, skipped = connect(buf, b"*00\r\n")
    assert (got, skipped) == (b"$GPGGA,1*00\r\n", 0)


def test_framing_without_a_buffer_starts_a_connection_at_a_line_start() -> None:
    buf = IdleBuffer(0, framed=True)
    assert buf.nobody(b"one\ntw") == 6
    assert connect(buf, b"o\nthree\n") == (b"three\n", 2)
    buf.end()
    assert buf.nobody(b"four\n") == 5
    assert connect(buf, b"five\n") == (b"five\n", 0)  # the port was at a line start


def test_a_connection_that_never_came_leaves_the_buffer_collecting_again() -> None:
    buf = IdleBuffer(100, framed=False)
    buf.nobody(b"abc")
    assert buf.begin() == [b"abc"]
    assert buf.nobody(b"def") == 0  # the connection failed: the next one gets what comes now
    assert connect(buf) == (b"def", 0)


def test_begin_twice_gives_the_kept_data_once() -> None:
    buf = IdleBuffer(100, framed=False)
    buf.nobody(b"abc")
    assert buf.begin() == [b"abc"]
    assert buf.begin() == []


@given(
    lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    join_at=st.integers(min_value=0, max_value=8),
    limit=st.integers(min_value=0, max_value=80),
)
def test_framed_connection_gets_whole_lines_and_every_byte_is_accounted(
    lines: list[bytes], cuts: list[int], join_at: int, limit: int
) -> None:
    stream = b"".join(lines)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    buf = IdleBuffer(limit, framed=True)
    unheard = sum(buf.nobody(c) for c in chunks[:join_at])
    got, skipped = connect(buf, *chunks[join_at:])
    assert len(got) + unheard + skipped == len(stream)
    # whole lines of the stream, in order (a subsequence: what was not kept is missing)
    assert got == b"" or got.endswith(b"\n")
    rest = iter(lines)
    got_lines = [line + b"\n" for line in got.split(b"\n")[:-1]]
    assert all(any(line == candidate for candidate in rest) for line in got_lines)


def test_a_partial_line_removed_when_the_buffer_fills_counts_as_unheard() -> None:
    buf = IdleBuffer(20, framed=True)
    assert buf.nobody(b"x\n$GPGGA,1*00\r\n$GP") == 2
    assert buf.nobody(b"RMC,2*00\r\n") == 3 + 10  # "$GP" was kept, then removed with its line
    assert buf.kept == 13
