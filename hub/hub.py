"""The hub: ports, their filter chains, routing, and capability negotiation.

Life of a message read from port S (spec 2.3):

1. it runs through the IN methods of S's filters, first to last; echo from
   filter k runs through the OUT methods of filters k-1..0 and is written to S
   at once;
2. for each destination D of S (flow-control routes for FlowControl, data
   routes for everything else), it runs through D's OUT methods, last to
   first (skipping instances whose source list excludes S), and what is left
   is written to D.

Drivers may call back into the hub from inside a write (the connector does);
such calls are queued and handled when the current one is done, in order.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .caps import In, Out, describe_in, describe_out
from .filter import Filter
from .messages import FlowControl, LineData, Message
from .port import Port
from .routes import Routes

__all__ = ["Hub", "Slot"]

log = logging.getLogger("hub")


@dataclass(eq=False)
class Slot:
    """One filter instance attached to one port, with the methods it uses there."""

    filter: Filter
    use_in: bool
    use_out: bool
    #: OUT only runs for messages from these sources (None: from every source).
    sources: frozenset[int] | None = None

    @property
    def name(self) -> str:
        return self.filter.ctx.name


class _Context:
    """The FilterContext the hub hands one filter instance."""

    def __init__(self, hub: Hub, port: int, name: str):
        self._hub = hub
        self.port = port
        self.name = name
        self.pos = -1  # set when the slot is appended
        self.log = logging.getLogger(f"filters.{name}")

    @property
    def port_name(self) -> str:
        return self._hub.ports[self.port].name

    def port_name_of(self, index: int) -> str:
        return self._hub.ports[index].name

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self._hub.loop.call_later(delay_s, self._hub._guard, callback)

    def time(self) -> float:
        return self._hub.loop.time()

    def send_in(self, msgs: list[Message]) -> None:
        self._hub._enqueue(self._hub._in_from, self.port, self.pos + 1, msgs)

    def send_out(self, msgs: list[Message], src: int | None = None) -> None:
        self._hub._enqueue(self._hub._out_below, self.port, self.pos, msgs, src)


class Hub:
    """Owns the ports, their filter slots and the routes; routes every message."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self.loop: asyncio.AbstractEventLoop = loop or asyncio.get_event_loop_policy().get_event_loop()
        self.ports: list[Port] = []
        self.slots: list[list[Slot]] = []
        self.routes = Routes({}, {})
        self._data: list[tuple[int, ...]] = []
        self._fc: list[tuple[int, ...]] = []
        self._in_slots: list[list[tuple[int, Slot]]] = []
        self._out_slots: list[list[Slot]] = []
        self._queue: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self._busy = False
        self.started = False

    # ---- building -----------------------------------------------------------

    def add_port(self, port: Port) -> None:
        assert port.index == len(self.ports)
        self.ports.append(port)
        self.slots.append([])

    def context(self, port: int, name: str) -> _Context:
        return _Context(self, port, name)

    def attach(self, port: int, slot: Slot) -> None:
        ctx = slot.filter.ctx
        if isinstance(ctx, _Context):
            ctx.pos = len(self.slots[port])
        self.slots[port].append(slot)

    def set_routes(self, routes: Routes) -> None:
        self.routes = routes
        n = len(self.ports)
        self._data = [routes.data.get(i, ()) for i in range(n)]
        self._fc = [routes.fc.get(i, ()) for i in range(n)]
        for i, port in enumerate(self.ports):
            port.fc_sources = frozenset(routes.fc.get(i, ()))
        self._in_slots = [[(k, s) for k, s in enumerate(sl) if s.use_in] for sl in self.slots]
        self._out_slots = [[s for s in reversed(sl) if s.use_out] for sl in self.slots]

    # ---- negotiation (spec 2.5, as capabilities) ------------------------------

    def negotiate(self) -> list[str]:
        """Resolve who provides and accepts what; return plain-word warnings."""
        warnings: list[str] = []
        for p in self.ports:
            p.wanted = In.NONE
            p.offered = Out.NONE
        for sl in self.slots:
            for s in sl:
                s.filter.wanted = In.NONE
                s.filter.offered = Out.NONE

        def providers(src: int, below: int) -> list[Any]:
            # nearest the hub first: IN filters below position `below`, then the driver
            found: list[Any] = [s.filter for s in self.slots[src][:below] if s.use_in]
            return [*reversed(found), self.ports[src]]

        def resolve(need: In, chain: list[Any]) -> In:
            for prov in chain:
                got = need & prov.provides
                if got:
                    prov.wanted |= got
                    need &= ~got
            return need

        for dst, sl in enumerate(self.slots):
            srcs = self.routes.sources_of(dst)
            for k, s in enumerate(sl):
                f = s.filter
                if s.use_out and f.needs:
                    for src in srcs:
                        if s.sources is not None and src not in s.sources:
                            continue
                        left = resolve(f.needs, providers(src, len(self.slots[src])))
                        if left:
                            warnings.append(
                                f"{self.ports[src].name} does not provide {describe_in(left)}"
                                f" needed by {s.name} on {self.ports[dst].name}"
                            )
                if s.use_in and f.needs and not s.use_out:
                    left = resolve(f.needs, providers(dst, k))
                    if left:
                        warnings.append(
                            f"{self.ports[dst].name} does not provide {describe_in(left)} needed by {s.name}"
                        )
                if s.use_out and f.sends:
                    sends = f.sends
                    acceptors = [t.filter for t in reversed(sl[:k]) if t.use_out] + [self.ports[dst]]
                    for acc in acceptors:
                        got = sends & acc.accepts
                        if got:
                            acc.offered |= got
                            sends &= ~got
                    if sends:
                        warnings.append(
                            f"{self.ports[dst].name} cannot carry {describe_out(sends)} sent by {s.name}"
                        )
        return warnings

    # ---- start and stop -------------------------------------------------------

    def start(self) -> None:
        """Give filters their start messages, then start every port in order.

        Raises what a port's start() raises (UsageError/PortError)."""
        for i, sl in enumerate(self.slots):
            for k, s in enumerate(sl):
                if s.use_out:
                    out: list[Message] = []
                    s.filter.start(out)
                    if out:
                        self._enqueue(self._out_below, i, k, out)
        for port in self.ports:
            port.start()
        # Reported once all started, so a start-up error stays a single line.
        for port in self.ports:
            log.info("Started %s", port.name)
        self.started = True

    def close(self) -> None:
        for sl in self.slots:
            for s in sl:
                try:
                    s.filter.close()
                except Exception:
                    log.exception("error closing %r", s.filter)
        for port in self.ports:
            try:
                port.close()
            except Exception:
                log.exception("error closing %s", port.name)

    # ---- the data path --------------------------------------------------------

    def received(self, port: int, msgs: list[Message]) -> None:
        """Messages read from `port` (called by drivers)."""
        self._enqueue(self._in_from, port, 0, msgs)

    def _enqueue(self, fn: Callable[..., None], *args: Any) -> None:
        self._queue.append((fn, args))
        if self._busy:
            return
        self._busy = True
        try:
            while self._queue:
                fn, args = self._queue.popleft()
                try:
                    fn(*args)
                except Exception:
                    # A bug in a filter or driver: report it, drop this message chain, keep running.
                    log.exception("error while routing messages of %s", self.ports[args[0]].name)
        finally:
            self._busy = False

    def _guard(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("error in timer callback %r", callback)

    def _in_from(self, src: int, start: int, msgs: list[Message]) -> None:
        """Run src's IN chain from slot position `start`, write echoes, then route."""
        for k, slot in self._in_slots[src]:
            if k < start:
                continue
            out: list[Message] = []
            echo: list[Message] = []
            f = slot.filter
            for m in msgs:
                f.on_in(m, out, echo)
            if echo:
                self._out_below(src, k, echo)
            msgs = out
            if not msgs:
                return
        self._route(src, msgs)

    def _out_below(self, port: int, pos: int, msgs: list[Message], src: int | None = None) -> None:
        """Run the OUT methods of port's slots below `pos` (no source check) and write.

        `src` is the source port handed to the filters and the driver (default: `port`)."""
        if src is None:
            src = port
        sl = self.slots[port]
        for k in range(pos - 1, -1, -1):
            slot = sl[k]
            if not slot.use_out:
                continue
            out: list[Message] = []
            f = slot.filter
            for m in msgs:
                f.on_out(m, src, out)
            msgs = out
            if not msgs:
                return
        dst = self.ports[port]
        for m in msgs:
            dst.write(m, src)

    def _route(self, src: int, msgs: list[Message]) -> None:
        if len(msgs) == 1:
            dests = self._fc[src] if type(msgs[0]) is FlowControl else self._data[src]
            for d in dests:
                self._deliver(d, src, msgs)
            return
        fc: list[Message] = [m for m in msgs if type(m) is FlowControl]
        if fc:
            msgs = [m for m in msgs if type(m) is not FlowControl]
            for d in self._fc[src]:
                self._deliver(d, src, fc)
        for d in self._data[src]:
            self._deliver(d, src, msgs)

    def _deliver(self, dst: int, src: int, msgs: list[Message]) -> None:
        for slot in self._out_slots[dst]:
            if slot.sources is not None and src not in slot.sources:
                continue
            out: list[Message] = []
            f = slot.filter
            for m in msgs:
                f.on_out(m, src, out)
            msgs = out
            if not msgs:
                return
        port = self.ports[dst]
        for m in msgs:
            if type(m) is LineData:
                port.write_data(m.data, src)  # type: ignore[union-attr]
            else:
                port.write(m, src)
