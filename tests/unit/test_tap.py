"""Taps (hub.tap) inside a real hub with fake ports: what they see, what they cost, their bounds."""

from __future__ import annotations

import hashlib

import pytest

from hub.cli import build
from hub.messages import LineData, ModemStatus, SetBaud
from hub.tap import Direction, TapClient, TapEvent

from .fakes import new_loop, registry


def make(*argv: str):  # type: ignore[no-untyped-def]
    cfg = build(["--use-driver=fake", *argv], new_loop(), registry())
    cfg.hub.start()
    return cfg.hub


def data_written(port) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(m.data for m in port.written if isinstance(m, LineData))


def event(data: bytes | None, direction: Direction = Direction.IN, session: int | None = None) -> TapEvent:
    return TapEvent(0.0, direction, data, None if data is not None else SetBaud(9600), session)


def test_client_queue_is_bounded_and_counts_what_it_loses() -> None:
    woken = []
    c = TapClient(max_bytes=10, max_events=3, wake=lambda: woken.append(1))
    c.put(event(b"12345"))
    c.put(event(b"123456"))  # would make 11 bytes
    c.put(event(b"12345"))
    c.put(event(None))
    c.put(event(None))  # a fourth event
    assert [e.size for e in c.events] == [5, 5, 0]
    assert (c.lost_events, c.lost_bytes, c.size) == (2, 6, 10)
    assert woken == [1], "woken once, when the queue stopped being empty"
    assert [e.size for e in c.take(2)] == [5, 5]
    assert c.size == 0 and len(c.take()) == 1 and not c.events
    c.put(event(b"x"))
    assert woken == [1, 1]


def test_client_filters_direction_and_session() -> None:
    c = TapClient()
    c.directions = frozenset({Direction.OUT})
    c.session = 2
    for ev in (
        event(b"a"),
        event(b"b", Direction.OUT),
        event(b"c", Direction.OUT, 2),
        event(b"d", session=2),
    ):
        c.put(ev)
    assert [e.data for e in c.take()] == [b"c"]
    assert c.lost_events == 0


def test_tap_sees_data_in_and_out_with_source_and_signals() -> None:
    hub = make("a", "b", "c")
    a, b, _ = hub.ports
    tap = TapClient()
    hub.add_tap(1, tap)
    chunk = bytes(bytearray(b"to b"))
    a.emit_data(chunk)  # routed 0 -> 1, 2: b's tap sees it written (OUT), from a
    b.emit_data(b"from b", session=7)  # read on b (IN), from its session 7
    b.emit([ModemStatus(0x10, 0x10)])
    events = tap.take()
    assert [(e.direction, e.data, e.src, e.session) for e in events] == [
        (Direction.OUT, b"to b", 0, None),
        (Direction.IN, b"from b", None, 7),
        (Direction.IN, None, None, None),
    ]
    assert events[2].message == ModemStatus(0x10, 0x10)
    assert events[0].data is chunk, "the tap holds the chunk itself, not a copy"


def test_removing_the_last_tap_leaves_the_port_untapped() -> None:
    hub = make("a", "b")
    t1, t2 = TapClient(), TapClient()
    hub.add_tap(1, t1)
    hub.add_tap(1, t2)
    hub.remove_tap(1, t1)
    assert hub.ports[1].taps is not None
    hub.remove_tap(1, t2)
    hub.remove_tap(1, t2)  # twice is harmless
    assert hub.ports[1].taps is None
    hub.ports[0].emit_data(b"x")
    assert not t1.events and not t2.events


def test_hub_tap_api_for_drivers_and_session_chains() -> None:
    hub = make("a", "b")
    tap = TapClient()
    hub.tap(0, Direction.IN, [LineData(b"nobody watches")])  # no tap: nothing happens
    hub.add_tap(0, tap)
    hub.tap(0, Direction.IN, [LineData(b"seen")], session=3)
    assert [(e.data, e.session) for e in tap.take()] == [(b"seen", 3)]


@pytest.mark.parametrize("tapped", [False, True])
def test_a_stalled_tap_costs_bounded_memory_and_no_hub_data(tapped: bool) -> None:
    hub = make("--write-limit=100000000", "a", "b")
    a, b = hub.ports
    tap = TapClient(max_bytes=64 * 1024)
    if tapped:
        hub.add_tap(1, tap)
        hub.add_tap(0, tap)
    sent = hashlib.sha256()
    chunk = bytes(range(256)) * 64  # 16 KiB
    for i in range(640):  # 10 MiB, the tap never read
        data = chunk[i % 256 :] + chunk[: i % 256]
        sent.update(data)
        a.emit_data(data)
    assert hashlib.sha256(data_written(b)).digest() == sent.digest()
    assert b.bytes_out == a.bytes_in == 640 * len(chunk)
    if tapped:
        assert tap.size <= 64 * 1024
        assert tap.lost_events > 1000 and tap.lost_bytes > 9 * 1024 * 1024
        assert tap.seen_events == 2 * 640
