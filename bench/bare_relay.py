"""The floor for a Python relay: TCP to TCP on uvloop, nothing but forwarding.

    python -m bench.bare_relay LISTEN_PORT TARGET_PORT [LAYERS]

Accepts clients on 127.0.0.1:LISTEN_PORT, connects each to 127.0.0.1:TARGET_PORT
and forwards both ways with one Python call per chunk (plus LAYERS trivial
counting calls, to see what a layer of bookkeeping costs). `python -m
bench.msgcost --relay bare` runs it beside the hub and the peers: what the hub
adds over this is its own per-message work, not Python's or uvloop's.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import cast

import uvloop


class _Layer:
    """One trivial layer of bookkeeping: count, then pass on."""

    def __init__(self, nxt: Callable[[bytes], None]):
        self.nxt = nxt
        self.count = 0
        self.bytes = 0

    def __call__(self, data: bytes) -> None:
        self.count += 1
        self.bytes += len(data)
        self.nxt(data)


class _Half(asyncio.Protocol):
    def __init__(self, layers: int):
        self.layers = layers
        self.transport: asyncio.Transport | None = None
        self.send: Callable[[bytes], None] | None = None
        self.early: list[bytes] = []  # before the other half is connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.send is None:
            self.early.append(data)
        else:
            self.send(data)

    def join(self, other: _Half) -> None:
        assert other.transport is not None
        send: Callable[[bytes], None] = other.transport.write
        for _ in range(self.layers):
            send = _Layer(send)
        self.send = send
        for data in self.early:
            send(data)
        self.early.clear()


async def _serve(listen: int, target: int, layers: int) -> None:
    loop = asyncio.get_running_loop()

    async def link(front: _Half) -> None:
        _, back = await loop.create_connection(lambda: _Half(layers), "127.0.0.1", target)
        front.join(back)
        back.join(front)

    def accepted() -> _Half:
        front = _Half(layers)
        loop.call_soon(lambda: loop.create_task(link(front)))
        return front

    await loop.create_server(accepted, "127.0.0.1", listen)
    await asyncio.Event().wait()


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    uvloop.run(_serve(int(argv[0]), int(argv[1]), int(argv[2]) if len(argv) == 3 else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
