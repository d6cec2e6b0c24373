"""escparse, escinsert, ratelimit and packetize inside a real hub (hub.cli.build), fake ports."""

from __future__ import annotations

import asyncio

from filters.escinsert import EscInsertFilter
from filters.escparse import EscParseFilter
from filters.packetize import PacketizeFilter
from filters.pinmap import PinMapFilter
from filters.ratelimit import RateLimitFilter
from hub.caps import In, Out
from hub.cli import build
from hub.messages import Connect, FlowControl, LineData, Message, ModemStatus, Msr, Pin, SetPins

from .fakes import new_loop, registry

FILTERS = {
    "escparse": EscParseFilter,
    "escinsert": EscInsertFilter,
    "pinmap": PinMapFilter,
    "ratelimit": RateLimitFilter,
    "packetize": PacketizeFilter,
}


def make(argv: list[str], loop: asyncio.AbstractEventLoop | None = None):  # type: ignore[no-untyped-def]
    cfg = build(argv, loop or new_loop(), registry(**FILTERS))
    cfg.hub.start()
    return cfg


def data_of(written: list[Message]) -> bytes:
    return b"".join(m.data for m in written if isinstance(m, LineData))


def pins_and_data(written: list[Message]) -> list[Message]:
    """SetPins and data written, adjacent data joined (chunking is free)."""
    out: list[Message] = []
    for m in written:
        if isinstance(m, LineData) and out and isinstance(out[-1], LineData):
            out[-1] = LineData(out[-1].data + m.data)
        elif isinstance(m, LineData | SetPins):
            out.append(m)
    return out


def test_com2tcp_esc_signals_cross_an_escape_stream() -> None:
    # 0: the device; 1: the link out (escinsert); 2: the link in (escparse); 3: the far device
    cfg = make(
        [
            "--create-filter=escinsert,ins",
            "--create-filter=pinmap,ins:--cts=cts --dsr=dsr",
            "--create-filter=escparse,par:--request-esc-mode=no",
            "--create-filter=pinmap,far",
            "--add-filters=1:ins",
            "--add-filters=2:par",
            "--add-filters=3:far",
            "--route=0:1",
            "--route=2:3",
            "dev",
            "out",
            "in",
            "far",
        ]
    )
    hub = cfg.hub
    assert cfg.warnings == []
    ins = hub.slots[1][0].filter
    par = hub.slots[2][0].filter
    assert ins.offered == Out.CTS | Out.DSR
    assert par.wanted == In.CTS | In.DSR  # the far pinmap's default --rts=cts --dtr=dsr
    assert hub.ports[0].wanted == In.CTS | In.DSR  # the near pinmap's inputs
    # the link comes up: escinsert writes its snapshot back to it
    hub.received(1, [Connect(True)])
    hub.received(0, [ModemStatus(Msr.CTS, Msr.CTS | Msr.DSR)])
    hub.received(0, [LineData(b"a\xffb")])
    hub.received(0, [ModemStatus(Msr.CTS | Msr.DSR, Msr.CTS | Msr.DSR)])
    stream = data_of(hub.ports[1].written)
    assert stream == b"\xff\x03\x00" + b"\xff\x03\x10" + b"a\xff\x00b" + b"\xff\x03\x30"
    # the stream arrives on the other link split in awkward places
    for chunk in (stream[:4], stream[4:8], stream[8:]):
        hub.received(2, [LineData(chunk)])
    assert pins_and_data(hub.ports[3].written) == [
        SetPins(0, Pin.RTS | Pin.DTR),  # pinmap's initial state
        SetPins(Pin.RTS, Pin.RTS),
        LineData(b"a\xffb"),
        SetPins(Pin.DTR, Pin.DTR),
    ]


def test_escparse_by_default_leaves_the_ports_signals_alone() -> None:
    cfg = make(["--create-filter=escparse", "--create-filter=pinmap,far", "--add-filters=0:escparse",
                "--add-filters=1:far", "a", "b"])  # fmt: skip
    hub = cfg.hub
    assert hub.ports[0].wanted == In.CTS | In.DSR  # the driver provides them, not escparse
    hub.received(0, [ModemStatus(Msr.CTS, Msr.CTS | Msr.DSR), LineData(b"\xff\x03\x30")])
    assert pins_and_data(hub.ports[1].written) == [
        SetPins(0, Pin.RTS | Pin.DTR),
        SetPins(Pin.RTS, Pin.RTS),
        LineData(b"\xff\x03\x30"),
    ]


def test_ratelimit_paces_and_throttles_the_source() -> None:
    loop = new_loop()
    try:
        cfg = make(
            [
                "--create-filter=ratelimit:--bytes-per-second=2000 --queue-limit=100",
                "--add-filters=1:ratelimit",
                "a",
                "b",
            ],
            loop,
        )
        hub = cfg.hub
        src, dst = hub.ports
        start = loop.time()
        hub.received(0, [LineData(bytes(range(200)))])
        assert data_of(dst.written) == bytes(range(20))  # 10 ms worth at once
        assert src.xoff_count == 1  # along the default flow-control route 1 -> 0
        loop.run_until_complete(asyncio.sleep(0.06))
        assert src.xoff_count == 1
        loop.run_until_complete(asyncio.sleep(0.1))
        assert data_of(dst.written) == bytes(range(200))
        assert src.xoff_count == 0
        # 180 bytes after the first slice take at least 90 ms at 2000 bytes per second
        assert loop.time() - start >= 0.09
    finally:
        loop.close()


def test_ratelimit_holds_while_the_port_reports_xoff() -> None:
    loop = new_loop()
    try:
        cfg = make(
            ["--create-filter=ratelimit:--bytes-per-second=10000", "--add-filters=1:ratelimit", "a", "b"],
            loop,
        )
        hub = cfg.hub
        src, dst = hub.ports
        hub.received(1, [FlowControl(True)])  # b's write queue is full (or its peer said suspend)
        assert src.xoff_count == 1  # the port's own XOFF still reaches the source
        hub.received(0, [LineData(b"x" * 300)])
        loop.run_until_complete(asyncio.sleep(0.05))
        assert data_of(dst.written) == b""
        hub.received(1, [FlowControl(False)])
        loop.run_until_complete(asyncio.sleep(0.08))
        assert data_of(dst.written) == b"x" * 300
        assert src.xoff_count == 0
    finally:
        loop.close()


def test_packetize_sends_after_a_pause() -> None:
    loop = new_loop()
    try:
        cfg = make(
            ["--create-filter=packetize:--pause=20 --end-byte=LF", "--add-filters=0:packetize", "a", "b"],
            loop,
        )
        hub = cfg.hub
        hub.received(0, [LineData(b"one\ntw")])
        hub.received(0, [LineData(b"o")])
        assert hub.ports[1].written == [LineData(b"one\n")]
        loop.run_until_complete(asyncio.sleep(0.06))
        assert hub.ports[1].written == [LineData(b"one\n"), LineData(b"two")]
    finally:
        loop.close()
