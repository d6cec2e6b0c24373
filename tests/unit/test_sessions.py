"""The sans-IO session machinery of multi-client ports (drivers/_sessions.py)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers._sessions import (
    MAX_LINE_BYTES,
    Frame,
    LineState,
    Policy,
    Session,
    SessionConfig,
    SessionSet,
    SlowClient,
    describe_drops,
    format_bytes,
)

# ---- helpers -----------------------------------------------------------------


class Client:
    """A session with a sink that records what was written to it."""

    def __init__(self, ss: SessionSet, sid: int, now: float = 0.0, join: bool = True):
        self.ss = ss
        self.chunks: list[bytes] = []
        self.session = Session(sid, f"peer{sid}", self.chunks.append, now)
        if join:
            ss.add(self.session, now)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    def stall(self) -> None:
        self.ss.pause(self.session)

    def drain(self) -> None:
        self.ss.resume(self.session)


def make(**kw: object) -> SessionSet:
    """A session set; with line framing its stream is put at a line end first.

    (Where a port's first line starts is unknown, so until its first LF even a
    session that was there from the start gets nothing.)
    """
    ss = SessionSet(SessionConfig(**kw))  # type: ignore[arg-type]
    if ss.framed:
        ss.send(b"\n", -1.0)
        ss.unheard = 0
    return ss


def clients(ss: SessionSet, n: int) -> list[Client]:
    return [Client(ss, i + 1, now=float(i)) for i in range(n)]


def numbered_lines(n: int, crlf: bool = True, start: int = 0) -> list[bytes]:
    end = b"\r\n" if crlf else b"\n"
    return [b"$LINE,%d,%s" % (i, b"x" * (i % 7)) + end for i in range(start, start + n)]


def split_lines(data: bytes) -> list[bytes]:
    """Lines of `data`, each with its LF; a trailing partial line is returned as is."""
    return data.splitlines(keepends=True) if data else []


def is_subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


# ---- fan-out -----------------------------------------------------------------


def test_every_session_gets_the_same_bytes_object():
    ss = make()
    cs = clients(ss, 100)
    cs[5].stall()  # a queued session shares the object too
    chunk = b"$GPGGA,1*00\r\n" * 10
    assert ss.send(chunk, 1.0) == 0
    for c in cs:
        if c is not cs[5]:
            assert c.chunks[0] is chunk
    assert cs[5].session.queue[0] is chunk
    cs[5].drain()
    assert cs[5].chunks[0] is chunk


def test_a_backlog_drains_in_one_call_when_the_sink_takes_several():
    ss = make()
    batches: list[list[bytes]] = []
    c = Client(ss, 1)
    c.session.sink_many = batches.append
    c.stall()
    chunks = [b"a" * 10, b"b" * 10, b"c" * 10]
    for chunk in chunks:
        ss.send(chunk, 0.0)
    c.drain()
    assert batches == [chunks] and batches[0][1] is chunks[1]
    assert c.session.queued == 0
    ss.send(b"d", 0.0)
    assert c.chunks == [b"d"]


def test_no_session_output_is_unheard_not_lost():
    ss = make()
    assert ss.send(b"abc", 0.0) == 0
    assert ss.unheard == 3
    assert ss.dropped_bytes == 0


SEND_TO_CASES = [
    # policy, receivers among sessions 1..3 (3 is the newest; 2 sent last)
    (Policy.ALL, [1, 2, 3]),
    (Policy.NONE, []),
    (Policy.FIRST, [1]),
    (Policy.LAST, [3]),
    (Policy.LAST_ACTIVE, [2]),
]


@pytest.mark.parametrize(("policy", "expected"), SEND_TO_CASES)
def test_send_to(policy, expected):
    ss = make(send_to=policy)
    cs = clients(ss, 3)
    assert ss.received(cs[1].session, 1, 5.0)
    ss.send(b"data\n", 6.0)
    got = [c.session.id for c in cs if c.data == b"data\n"]
    assert got == expected
    assert all(c.data in (b"", b"data\n") for c in cs)


RECV_FROM_CASES = [
    (Policy.ALL, [1, 2, 3]),
    (Policy.NONE, []),
    (Policy.FIRST, [1]),
    (Policy.LAST, [3]),
]


@pytest.mark.parametrize(("policy", "expected"), RECV_FROM_CASES)
def test_recv_from(policy, expected):
    ss = make(recv_from=policy)
    cs = clients(ss, 3)
    taken = [c.session.id for c in cs if ss.received(c.session, 4, 10.0)]
    assert taken == expected
    ignored = sum(c.session.discarded_in for c in cs)
    assert ignored == 4 * (3 - len(expected)) == ss.discarded_in
    assert ss.bytes_in == 4 * len(expected)
    assert all(c.session.bytes_in == 4 for c in cs)


def test_first_and_last_follow_departures():
    ss = make(recv_from=Policy.FIRST, send_to=Policy.LAST)
    a, b, c = clients(ss, 3)
    ss.remove(a.session, 1.0)
    assert ss.received(b.session, 1, 1.0)
    assert not ss.received(c.session, 1, 1.0)
    ss.remove(c.session, 1.0)
    ss.send(b"x", 2.0)
    assert b.data == b"x"


def test_last_active_switching_between_two_writers():
    ss = make(recv_from=Policy.LAST_ACTIVE, send_to=Policy.LAST_ACTIVE, hold_s=1.0)
    a, b, observer = clients(ss, 3)
    # nobody has written yet: the newest session is the active one
    ss.send(b"hello\n", 2.0)
    assert observer.data == b"hello\n" and a.data == b"" and b.data == b""
    assert ss.received(a.session, 3, 3.0)  # A takes the floor
    ss.send(b"to-a\n", 3.1)
    assert a.data == b"to-a\n"
    assert not ss.received(b.session, 3, 3.5)  # A holds the floor for 1 s
    assert ss.received(a.session, 3, 3.9)  # A keeps talking: the hold restarts
    assert not ss.received(b.session, 3, 4.8)
    assert ss.received(b.session, 3, 4.95)  # A quiet for 1.05 s: B takes over
    ss.send(b"to-b\n", 5.0)
    assert b.data == b"to-b\n"
    assert a.data == b"to-a\n"
    assert not ss.received(a.session, 3, 5.5)
    assert b.session.discarded_in == 6 and a.session.discarded_in == 3
    # B leaves: A, the last one whose data entered, is active again
    ss.remove(b.session, 6.0)
    ss.send(b"again\n", 6.1)
    assert a.data == b"to-a\nagain\n"
    assert observer.data == b"hello\n"


def test_send_to_last_active_with_recv_from_all():
    ss = make(send_to=Policy.LAST_ACTIVE)
    a, b = clients(ss, 2)
    assert ss.received(a.session, 1, 1.0)
    assert ss.received(b.session, 1, 1.0)  # all: nobody holds a floor
    ss.send(b"r\n", 1.1)
    assert (a.data, b.data) == (b"", b"r\n")
    assert ss.received(a.session, 1, 1.2)
    ss.send(b"s\n", 1.3)
    assert (a.data, b.data) == (b"s\n", b"r\n")


# ---- slow sessions -----------------------------------------------------------------


def test_drop_bytes_mode_counts_and_keeps_order():
    ss = make(limit=10)
    fast, slow = clients(ss, 2)
    slow.stall()
    sent = [b"0123", b"4567", b"89ab", b"cdef", b"ghij"]
    dropped = [ss.send(x, 1.0) for x in sent]
    # 0..ab queued (12 > 10 after the third), then full: cdef and ghij dropped
    assert dropped == [0, 0, 0, 4, 4]
    assert slow.session.queued == 12
    assert slow.session.dropped_bytes == 8 == ss.dropped_bytes
    slow.drain()
    assert slow.data == b"0123456789ab"
    assert fast.data == b"".join(sent)
    ss.send(b"klmn", 2.0)
    assert slow.data.endswith(b"klmn")


def test_line_framing_late_joiner_starts_at_next_line():
    ss = make(frame=Frame.LINE)
    first = Client(ss, 1)
    ss.send(b"$GPGGA,1,2,3*00\r\n$GPRMC,", 1.0)
    late = Client(ss, 2)
    assert late.session.line is LineState.SYNC
    ss.send(b"4,5,6*11\r\n$GPVTG,7*22\r\n$GP", 1.1)
    ss.send(b"GSA,8*33\n", 1.2)
    assert late.data == b"$GPVTG,7*22\r\n$GPGSA,8*33\n"
    assert late.session.dropped_bytes == 0  # not a loss: it was not there
    assert first.data == b"$GPGGA,1,2,3*00\r\n$GPRMC,4,5,6*11\r\n$GPVTG,7*22\r\n$GPGSA,8*33\n"


def test_line_framing_starts_at_the_first_line_end():
    ss = SessionSet(SessionConfig(frame=Frame.LINE))
    c = Client(ss, 1)
    ss.send(b"GA,1*00\r\n$GPRMC,2*00\r\n", 0.0)
    assert c.data == b"$GPRMC,2*00\r\n"


def test_line_framing_joiner_at_a_line_boundary_starts_at_once():
    ss = make(frame=Frame.LINE)
    ss.send(b"$A*00\r\n", 0.0)  # no session yet: the stream still ends at a line end
    c = Client(ss, 1)
    ss.send(b"$B*00\r\n", 1.0)
    assert c.data == b"$B*00\r\n"


def test_line_framing_drops_whole_lines_only():
    ss = make(frame=Frame.LINE, limit=10)
    c = Client(ss, 1)
    c.stall()
    ss.send(b"line-one\r\nline-t", 1.0)  # queued: 16 bytes, over the limit, a line open
    ss.send(b"wo\r\nline-three\r\nline-f", 1.1)  # completes "line-two", drops the rest
    ss.send(b"our\r\nline-five\r\n", 1.2)  # drops the rest of line-four, then line-five
    assert c.session.line is LineState.START
    c.drain()
    ss.send(b"line-six\r\n", 1.3)
    assert c.data == b"line-one\r\nline-two\r\nline-three\r\n"[:20] + b"line-six\r\n"
    assert c.session.dropped_lines == 3
    assert c.session.dropped_bytes == len(b"line-three\r\nline-four\r\nline-five\r\n")


def test_plain_lf_lines():
    ss = make(frame=Frame.LINE, limit=0)
    c = Client(ss, 1)
    c.stall()
    ss.send(b"a\nb", 0.0)
    ss.send(b"b\nc\n", 0.0)
    c.drain()
    assert c.data == b"a\nbb\n"
    assert c.session.dropped_lines == 1


def test_an_endless_line_is_cut_once_far_over_the_limit():
    ss = make(frame=Frame.LINE, limit=100)
    c = Client(ss, 1)
    c.stall()
    ss.send(b"x" * 50, 0.0)
    piece = b"y" * 8192
    for _ in range(MAX_LINE_BYTES // len(piece) + 2):
        ss.send(piece, 0.0)
    assert ss.cut_lines == 1
    assert c.session.line is LineState.SKIP
    assert c.session.queued <= 100 + MAX_LINE_BYTES + len(piece)
    ss.send(b"rest\nnext\n", 0.0)
    c.drain()
    assert c.data.endswith(b"y")  # the cut line
    ss.send(b"more\n", 0.0)
    assert c.data.endswith(b"ymore\n")  # resumes at a line start


@settings(max_examples=300, deadline=None)
@given(
    nlines=st.integers(1, 60),
    crlf=st.booleans(),
    cuts=st.lists(st.integers(0, 4000), max_size=40),
    actions=st.lists(st.sampled_from(["stall", "drain", "none", "none"]), max_size=60),
    limit=st.integers(0, 300),
    join_at=st.integers(0, 10),
)
def test_a_slow_session_gets_whole_lines_in_order(nlines, crlf, cuts, actions, limit, join_at):
    """Whatever the chunking and the stalls, a session only ever gets whole lines, in order."""
    lines = numbered_lines(nlines, crlf)
    stream = b"".join(lines)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    ss = make(frame=Frame.LINE, limit=limit)
    fast = Client(ss, 1)
    slow: Client | None = None
    sent_after_join = b""
    for i, chunk in enumerate(chunks):
        if i == join_at:
            slow = Client(ss, 2)
        if slow is not None:
            action = actions[i % len(actions)] if actions else "none"
            if action == "stall":
                slow.stall()
            elif action == "drain":
                slow.drain()
            sent_after_join += chunk
        ss.send(chunk, float(i))
    assert fast.data == stream
    if slow is None:
        return
    slow.drain()
    got = split_lines(slow.data)
    assert all(line.endswith(b"\n") for line in got), got
    assert is_subsequence(got, lines)
    if join_at == 0:
        # joined at the start: everything is delivered or counted as dropped
        assert len(slow.data) + slow.session.dropped_bytes == len(stream)
        assert len(got) + slow.session.dropped_lines == nlines
    else:
        assert len(slow.data) + slow.session.dropped_bytes <= len(sent_after_join)


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 3000), max_size=30), switch_at=st.lists(st.integers(0, 40), max_size=8))
def test_switching_receivers_never_cuts_a_line(cuts, switch_at):
    """send-to=last-active moving between sessions: each gets whole lines."""
    lines = numbered_lines(40)
    stream = b"".join(lines)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    ss = make(frame=Frame.LINE, send_to=Policy.LAST_ACTIVE, recv_from=Policy.ALL)
    a, b = clients(ss, 2)
    for i, chunk in enumerate(chunks):
        if i in switch_at:
            ss.received((a if i % 2 else b).session, 1, float(i))
        ss.send(chunk, float(i))
    for c in (a, b):
        got = split_lines(c.data)
        assert all(line.endswith(b"\n") for line in got)
        assert is_subsequence(got, lines)
    # together they got every line at least once (none falls between two receivers)
    assert set(split_lines(a.data)) | set(split_lines(b.data)) >= set(lines[1:-1])


# ---- block and disconnect -------------------------------------------------------------


def test_block_mode_is_lossless_and_signals_xoff_xon():
    ss = make(slow=SlowClient.BLOCK, limit=30)  # high water 20, low water 10
    fast, slow = clients(ss, 2)
    slow.stall()
    for i in range(10):
        assert ss.send(b"%04d\n" % i, 0.0, lossless=True) == 0
        assert ss.blocking is (slow.session.queued > 20)
    assert ss.blocking
    assert slow.session.queued == 50  # over the limit, nothing lost
    slow.drain()
    assert not ss.blocking
    assert slow.data == fast.data == b"".join(b"%04d\n" % i for i in range(10))


def test_block_mode_caps_a_queue_whose_source_does_not_stop():
    ss = make(slow=SlowClient.BLOCK, limit=10)
    c = Client(ss, 1)
    c.stall()
    dropped = [ss.send(b"x" * 10, 0.0, lossless=True) for _ in range(8)]
    # the XOFF did not reach the real source: queued up to 4 x the limit, then lost
    assert dropped == [0, 0, 0, 0, 0, 10, 10, 10]
    assert c.session.queued == 50 == 10 + ss.hard_limit


def test_block_mode_drops_from_a_source_it_cannot_throttle():
    ss = make(slow=SlowClient.BLOCK, limit=4)
    c = Client(ss, 1)
    c.stall()
    ss.send(b"12345", 0.0, lossless=False)
    assert ss.send(b"678", 0.0, lossless=False) == 3
    assert ss.blocking


def test_disconnect_after_send_timeout():
    ss = make(slow=SlowClient.DISCONNECT, limit=30, send_timeout_s=2.0)
    _ok, stuck = clients(ss, 2)
    stuck.stall()
    for t in range(5):
        ss.send(b"x" * 10, float(t))
    # over high water (20) since t=2
    assert ss.expired(3.9) == []
    assert ss.expired(4.0) == [(stuck.session, "send timeout")]
    stuck.drain()
    assert ss.expired(10.0) == []


def test_drop_mode_never_disconnects():
    ss = make(limit=10, send_timeout_s=1.0)
    c = Client(ss, 1)
    c.stall()
    for t in range(5):
        ss.send(b"x" * 10, float(t))
    assert ss.expired(100.0) == []
    assert ss.next_check_s() is None


def test_idle_timeout_counts_traffic_both_ways():
    ss = make(idle_timeout_s=10.0)
    a, b = clients(ss, 2)  # joined at 0 and 1
    assert ss.next_check_s() == 1.0
    ss.received(a.session, 1, 5.0)
    assert ss.expired(10.5) == []
    assert ss.expired(11.0) == [(b.session, "idle timeout")]
    ss.send(b"x", 11.0)  # output counts as activity
    assert ss.expired(20.0) == []
    assert ss.expired(21.0) == [(a.session, "idle timeout"), (b.session, "idle timeout")]


def test_remove_counts_the_queue_as_dropped():
    ss = make()
    c = Client(ss, 1)
    c.stall()
    ss.send(b"abc", 0.0)
    assert ss.remove(c.session, 1.0) == 3
    assert c.session.dropped_bytes == 3 == ss.dropped_bytes
    assert ss.remove(c.session, 1.0) == 0  # twice is harmless
    assert ss.stalled == 0


# ---- one session with a sink that takes part of a chunk (the pty) ------------------------


class PartialClient:
    """A session whose sink writes only what fits in `room` and returns the rest,
    as the pty port's sink does with a pty master that is full."""

    def __init__(self, ss: SessionSet, room: int = 0):
        self.ss = ss
        self.room = room
        self.out = bytearray()
        self.calls: list[int] = []
        self.session = Session(1, "pty", self.sink, 0.0)
        ss.add(self.session, 0.0)

    def sink(self, data: bytes | memoryview) -> bytes | memoryview | None:
        n = min(self.room, len(data))
        self.calls.append(n)
        self.out += data[:n]
        self.room -= n
        if n == len(data):
            return None
        return memoryview(data)[n:]

    def read(self, n: int) -> None:
        """The application read `n` bytes: room for more, and the fd is writable."""
        self.room += n
        self.ss.resume(self.session)


def test_a_sink_that_takes_part_keeps_the_rest_at_the_head_of_the_queue():
    ss = make(slow=SlowClient.BLOCK, limit=30)  # high water 20, low water 10
    c = PartialClient(ss, room=4)
    ss.send(b"abcdefgh", 0.0)
    assert bytes(c.out) == b"abcd"
    assert not c.session.writable
    assert c.session.queued == 4 and bytes(c.session.queue[0]) == b"efgh"
    ss.send(b"ijklmnopqrstuvwxyz", 0.0)  # queued behind the rest, not offered to the sink
    assert c.calls == [4]
    assert c.session.queued == 22 and ss.blocking  # the rest counts towards the watermarks
    c.read(6)
    assert bytes(c.out) == b"abcdefghij"
    assert c.session.queued == 16 and not c.session.writable and ss.blocking
    c.read(100)
    assert bytes(c.out) == b"abcdefghijklmnopqrstuvwxyz"
    assert c.session.queued == 0 and c.session.writable and not ss.blocking
    ss.send(b"!", 0.0)
    assert bytes(c.out).endswith(b"!")


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 4000), max_size=40),
    reads=st.lists(st.integers(0, 200), max_size=60),
    limit=st.integers(0, 300),
)
def test_a_partial_sink_with_line_framing_gets_whole_lines_and_counts_the_rest(cuts, reads, limit):
    """The half-written line is completed from the queue; drops are whole lines,
    and what was not delivered is exactly what was counted."""
    lines = numbered_lines(60)
    stream = b"".join(lines)
    bounds = sorted({0, len(stream), *(x % (len(stream) + 1) for x in cuts)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    ss = make(frame=Frame.LINE, limit=limit)
    c = PartialClient(ss)
    for i, chunk in enumerate(chunks):
        ss.send(chunk, 0.0)
        if reads:
            c.read(reads[i % len(reads)])
    c.read(len(stream))
    got = split_lines(bytes(c.out))
    assert all(line.endswith(b"\n") for line in got), got
    assert is_subsequence(got, lines)
    assert len(c.out) + c.session.dropped_bytes == len(stream)
    assert len(got) + c.session.dropped_lines == len(lines)


def test_purge_empties_the_queue_without_a_loss():
    ss = make(slow=SlowClient.BLOCK, limit=30)
    c = PartialClient(ss, room=0)
    ss.send(b"x" * 25, 0.0)
    assert ss.blocking
    assert ss.purge(c.session) == 25
    assert c.session.queued == 0 and not ss.blocking
    assert c.session.dropped_bytes == 0 == ss.dropped_bytes
    assert ss.purge(c.session) == 0


def test_purge_with_lines_resumes_at_the_next_line_start():
    ss = make(frame=Frame.LINE, limit=100)
    c = PartialClient(ss, room=10)
    ss.send(b"$FIRST,abcdefghij\n$SECOND,", 0.0)  # 10 bytes out, the rest queued
    ss.purge(c.session)
    ss.send(b"rest of the second\n$THIRD\n", 0.0)
    c.read(100)
    assert bytes(c.out) == b"$FIRST,abc$THIRD\n"  # the cut is the purge's, not a drop
    assert c.session.dropped_bytes == 0


# ---- admission --------------------------------------------------------------------------


def test_max_clients_refuses():
    ss = make(max_clients=2)
    clients(ss, 2)
    assert ss.admit() == (False, None)
    assert ss.refused == 1


def test_max_clients_kicks_the_oldest():
    ss = make(max_clients=2, kick_oldest=True)
    a, _b = clients(ss, 2)
    assert ss.admit() == (True, a.session)
    assert ss.kicked == 1


def test_no_limit():
    ss = make()
    clients(ss, 500)
    assert ss.admit() == (True, None)


# ---- the buffer while nobody is connected --------------------------------------------------


def test_buffer_is_delivered_to_the_first_session_only():
    ss = make(buffer=100)
    ss.send(b"early-1 ", 0.0)
    ss.send(b"early-2 ", 0.1)
    a = Client(ss, 1)
    b = Client(ss, 2)
    ss.send(b"live", 1.0)
    assert a.data == b"early-1 early-2 live"
    assert b.data == b"live"
    assert ss.unheard == 0


def test_buffer_keeps_the_oldest_bytes():
    ss = make(buffer=10)
    ss.send(b"0123456", 0.0)
    ss.send(b"789abc", 0.0)
    ss.send(b"def", 0.0)  # frozen: a gap would follow
    c = Client(ss, 1)
    assert c.data == b"0123456789"
    assert ss.unheard == 6


def test_buffer_with_lines_keeps_whole_lines():
    ss = make(buffer=30, frame=Frame.LINE)
    ss.send(b"$A*00\r\n$B*00\r\n$C*", 0.0)  # 17 bytes, C open
    ss.send(b"00\r\n$D*00\r\n$E*00", 0.1)  # fits up to D (28 bytes); E would not fit
    ss.send(b"\r\n$F*00\r\n", 0.2)
    c = Client(ss, 1)
    assert c.data == b"$A*00\r\n$B*00\r\n$C*00\r\n$D*00\r\n"
    ss.send(b"$G*00\r\n", 0.3)
    assert c.data.endswith(b"$D*00\r\n$G*00\r\n")


def test_buffer_with_lines_drops_an_open_line_that_cannot_be_completed():
    ss = make(buffer=20, frame=Frame.LINE)
    ss.send(b"$A*00\r\n$BBBB", 0.0)
    ss.send(b"BBBBBBBBBBBBBBBBB\r\n", 0.1)  # B does not fit: removed, backlog frozen
    c = Client(ss, 1)
    assert c.data == b"$A*00\r\n"


def test_buffer_runs_on_into_live_data():
    ss = SessionSet(SessionConfig(buffer=100, frame=Frame.LINE))
    ss.send(b"GA,1*00\r\n$GPRMC,", 0.0)  # the first line may be partial: skipped
    c = Client(ss, 1)
    ss.send(b"2*00\r\n", 0.1)
    assert c.data == b"$GPRMC,2*00\r\n"


def test_buffer_refills_after_the_last_session_leaves():
    ss = make(buffer=100)
    c = Client(ss, 1)
    ss.remove(c.session, 1.0)
    ss.send(b"while away", 2.0)
    d = Client(ss, 2)
    assert d.data == b"while away"


def test_buffer_not_delivered_when_nobody_receives():
    ss = make(buffer=100, send_to=Policy.NONE)
    ss.send(b"abc", 0.0)
    c = Client(ss, 1)
    assert c.data == b""
    assert ss.unheard == 3


# ---- text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (45_200, "45.2 kB"),
        (1_300_000, "1.3 MB"),
        (10**13, "10.0 TB"),
    ],
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_counters_text():
    ss = make(frame=Frame.LINE, limit=0)
    c = Client(ss, 1)
    c.stall()
    ss.send(b"ab\ncd\n", 0.0)
    ss.send(b"ef\n", 0.0)
    ss.received(c.session, 5, 0.0)
    assert c.session.counters() == "in 5 B, out 6 B, dropped 1 line (3 B)"
    assert describe_drops(100, 0) == "100 B"


def test_config_refuses_negative_values():
    with pytest.raises(ValueError):
        SessionConfig(limit=-1)
