"""The hub: ports, their filter chains, routing, and capability negotiation.

Life of a message read from port S (spec 2.3):

1. it runs through the IN methods of S's filters, first to last; echo from
   filter k runs through the OUT methods of filters k-1..0 and is written to S
   at once;
2. for each destination D of S (flow-control routes for FlowControl, data
   routes for everything else), it runs through D's OUT methods, last to
   first (skipping instances whose source list excludes S), and what is left
   is written to D.

Each port's filters form its `Chain` (hub.chain). A port that serves many
sessions (``Port.serves_sessions``, the tcp-multi listener) keeps its filters as
templates: each session gets a chain of fresh instances (`session_chain`), so a
filter works per session exactly as on a port of its own, and the port's own
chain is empty. Capabilities are negotiated once per port; session instances
take the port's result.

Drivers may call back into the hub from inside a write (the connector does);
such calls are queued and handled when the current one is done, in order.

Taps (hub.tap): what is finally written to a port is shown to its taps; the
path checks ``port.taps`` once per message, so untapped ports pay nothing more.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable
from typing import Any

from .caps import In, Out, describe_in, describe_out
from .chain import Chain, Factory, Slot
from .logs import PortLogger
from .messages import FlowControl, LineData, Message
from .port import Port
from .routes import Routes
from .tap import Direction, TapClient, TapPoint

__all__ = ["Chain", "Hub", "Slot"]

log = logging.getLogger("hub")


def _nothing() -> None:
    """A no-op queued to make the hub run what is waiting."""


class _Context:
    """The FilterContext the hub hands one filter instance (on a port or a session)."""

    def __init__(self, hub: Hub, port: int, name: str, pos: int):
        self._hub = hub
        self.port = port
        self.name = name
        self.pos = pos
        #: Set once the instance's chain exists.
        self.chain: Chain | None = None
        #: Its records carry the port (not the session: one flood, one key), so
        #: repeated warnings are limited per port (hub.logs).
        self.log = PortLogger(logging.getLogger(f"filters.{name}"), lambda: hub.ports[port].name)

    @property
    def port_name(self) -> str:
        chain = self.chain
        return chain.name if chain is not None else self._hub.ports[self.port].name

    @property
    def observer(self) -> bool:
        chain = self.chain
        if chain is not None and chain.observer is not None:
            return chain.observer()
        return self._hub.ports[self.port].observer

    def port_name_of(self, index: int) -> str:
        return self._hub.ports[index].name

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self._hub.loop.call_later(delay_s, self._hub._guard, callback)

    def time(self) -> float:
        return self._hub.loop.time()

    def send_in(self, msgs: list[Message]) -> None:
        assert self.chain is not None
        self._hub._enqueue(self.chain.run_in, self.pos + 1, msgs)

    def send_out(self, msgs: list[Message], src: int | None = None) -> None:
        assert self.chain is not None
        self._hub._enqueue(self.chain.run_out_below, self.pos, msgs, src)


class Hub:
    """Owns the ports, their filter chains and the routes; routes every message."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self.loop: asyncio.AbstractEventLoop = loop or asyncio.get_event_loop_policy().get_event_loop()
        #: Its label on status pages (a config file's component); "" for a command line's hub.
        self.name = ""
        self.ports: list[Port] = []
        #: Each port's filters as configured (for a port that serves sessions: the
        #: templates its session chains are made from).
        self.slots: list[list[Slot]] = []
        #: Each port's own chain (empty for a port that serves sessions).
        self.chains: list[Chain] = []
        self.routes = Routes({}, {})
        self._data: list[tuple[int, ...]] = []
        self._fc: list[tuple[int, ...]] = []
        self._queue: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self._busy = False
        #: Per port: its data destinations' deliver_data, where neither the port
        #: nor they have filters on the way (None otherwise): data read there goes
        #: straight to them (the hub's fast path).
        self._direct: list[tuple[Callable[[bytes, int], None], ...] | None] = []
        self.started = False

    # ---- building -----------------------------------------------------------

    def add_port(self, port: Port) -> None:
        assert port.index == len(self.ports)
        self.ports.append(port)
        self.slots.append([])

    def attach(
        self,
        port: int,
        name: str,
        make: Factory,
        use_in: bool,
        use_out: bool,
        sources: frozenset[int] | None = None,
    ) -> Slot:
        """Create a filter instance with `make` and append it to `port`'s filters."""
        ctx = _Context(self, port, name, len(self.slots[port]))
        slot = Slot(make(ctx), use_in, use_out, sources, make)
        self.slots[port].append(slot)
        return slot

    def set_routes(self, routes: Routes) -> None:
        """Install the final routes and build every port's chain."""
        self.routes = routes
        n = len(self.ports)
        self._data = [routes.data.get(i, ()) for i in range(n)]
        self._fc = [routes.fc.get(i, ()) for i in range(n)]
        self.chains = []
        shared: dict[frozenset[int], frozenset[int]] = {}  # one set per distinct value, not per port
        route = self._route  # one bound method for all chains, not one per port
        for i, port in enumerate(self.ports):
            fc = frozenset(routes.fc.get(i, ()))
            port.fc_sources = shared.setdefault(fc, fc)
            port.has_filters = bool(self.slots[i])
            slots = [] if port.serves_sessions else self.slots[i]
            chain = Chain(self, i, port.name, slots, self._port_writer(port), self._hub_reader(port, route))
            for slot in slots:
                slot.filter.ctx.chain = chain  # type: ignore[attr-defined]
            self.chains.append(chain)
        writers: dict[tuple[int, ...], tuple[Callable[[bytes, int], None], ...]] = {}  # shared
        # One bound method per port, shared by every tuple it appears in: with
        # --route=All:All on 1,000 ports a method per entry would be 64 MB.
        delivers: list[Callable[[bytes, int], None]] = [port.deliver_data for port in self.ports]
        self._direct = [self._direct_writers(i, writers, delivers) for i in range(n)]

    def _direct_writers(
        self,
        src: int,
        made: dict[tuple[int, ...], tuple[Callable[[bytes, int], None], ...]],
        delivers: list[Callable[[bytes, int], None]],
    ) -> tuple[Callable[[bytes, int], None], ...] | None:
        """src's data destinations' deliver_data, if data from src meets no filter on its way
        (one tuple per distinct destination list in `made`: 1,000 slots route to one device)."""
        if self.chains[src].has_in or self.ports[src].gate_in is not None:
            return None
        dests = self._data[src]
        if any(self.chains[d].has_out for d in dests):
            return None
        if dests not in made:
            made[dests] = tuple(delivers[d] for d in dests)
        return made[dests]

    def _port_writer(self, port: Port) -> Callable[[Message, int], None]:
        # A bound method, not a closure: a few hundred bytes less on each of 1,000 ports.
        return port.deliver

    def _hub_reader(
        self, port: Port, route: Callable[[int, list[Message]], None]
    ) -> Callable[[list[Message]], None]:
        index, gate = port.index, port.gate_in
        if gate is None:
            return functools.partial(route, index)

        def to_hub(msgs: list[Message]) -> None:
            msgs = gate(msgs)
            if msgs:
                route(index, msgs)

        return to_hub

    def session_chain(
        self,
        port: int,
        name: str,
        to_port: Callable[[Message, int], None],
        to_hub: Callable[[list[Message]], None],
        observer: Callable[[], bool] | None = None,
    ) -> Chain | None:
        """A new chain of fresh instances of `port`'s filters for one session, or None
        if the port has no filters. The caller starts it and closes it when the session ends."""
        templates = self.slots[port]
        if not templates:
            return None
        slots = []
        for pos, t in enumerate(templates):
            assert t.make is not None
            f = t.make(_Context(self, port, t.name, pos))
            f.wanted = t.filter.wanted  # negotiated once, for the port
            f.offered = t.filter.offered
            slots.append(Slot(f, t.use_in, t.use_out, t.sources, t.make))
        chain = Chain(self, port, name, slots, to_port, to_hub, observer)
        for slot in slots:
            slot.filter.ctx.chain = chain  # type: ignore[attr-defined]
        return chain

    def close_filters(self, slots: list[Slot]) -> None:
        """Close filter instances. Never raises."""
        for s in slots:
            try:
                s.filter.close()
            except Exception:
                log.exception("error closing %r", s.filter)

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

        sources = self.routes.sources()  # once: per port, it was quadratic in the ports
        for dst, sl in enumerate(self.slots):
            srcs = sources.get(dst, ())
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
        for chain in self.chains:
            chain.start()
        for port in self.ports:
            port.start()
        # Reported once all started, so a start-up error stays a single line.
        for port in self.ports:
            log.info("Started %s", port.name)
        self.started = True

    def close(self) -> None:
        for sl in self.slots:
            self.close_filters(sl)
        for port in self.ports:
            try:
                port.close()
            except Exception:
                log.exception("error closing %s", port.name)

    # ---- taps (hub.tap) ---------------------------------------------------------

    def add_tap(self, port: int, client: TapClient) -> None:
        """Show `client` what port `port` reads and is written from now on."""
        p = self.ports[port]
        if p.taps is None:
            p.taps = TapPoint()
        p.taps.clients.append(client)

    def remove_tap(self, port: int, client: TapClient) -> None:
        """Stop tapping; the port pays nothing once its last tap is gone."""
        p = self.ports[port]
        taps = p.taps
        if taps is not None and client in taps.clients:
            taps.clients.remove(client)
            if not taps.clients:
                p.taps = None

    def tap(
        self,
        port: int,
        direction: Direction,
        msgs: list[Message],
        session: int | None = None,
        src: int | None = None,
    ) -> None:
        """Show messages seen on `port` to its taps, if any (for drivers and session chains)."""
        taps = self.ports[port].taps
        if taps is not None:
            taps.messages(direction, msgs, session, src)

    # ---- the data path --------------------------------------------------------

    def received(self, port: int, msgs: list[Message]) -> None:
        """Messages read from `port` (called by drivers)."""
        if len(msgs) == 1 and type(msgs[0]) is LineData:
            self.received_data(port, msgs[0].data)  # type: ignore[union-attr]
        else:
            self._enqueue(self.chains[port].run_in, 0, msgs)

    def received_data(self, port: int, data: bytes) -> None:
        """Data read from `port`: what received(port, [LineData(data)]) does, but the
        message is made only when a filter is on the data's way (the drivers' common call)."""
        direct = self._direct[port]
        if direct is None or self._busy:
            self._enqueue(self.chains[port].run_in, 0, [LineData(data)])
            return
        # The fast path: plain data, no filter anywhere on its way, nothing queued.
        self._busy = True
        try:
            for deliver in direct:
                deliver(data, port)
        except Exception:
            log.exception("error while routing messages of %s", self.ports[port].name)
        finally:
            self._busy = False
        if self._queue:  # what the writes asked the hub to do meanwhile
            self._enqueue(_nothing)

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
                    owner = getattr(fn, "__self__", None)
                    where = owner.name if isinstance(owner, Chain) else "a port"
                    log.exception("error while routing messages of %s", where)
        finally:
            self._busy = False

    def _guard(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("error in timer callback %r", callback)

    def _route(self, src: int, msgs: list[Message]) -> None:
        chains = self.chains
        if len(msgs) == 1:
            dests = self._fc[src] if type(msgs[0]) is FlowControl else self._data[src]
            for d in dests:
                chains[d].deliver(src, msgs)
            return
        fc: list[Message] = [m for m in msgs if type(m) is FlowControl]
        if fc:
            msgs = [m for m in msgs if type(m) is not FlowControl]
            for d in self._fc[src]:
                chains[d].deliver(src, fc)
        for d in self._data[src]:
            chains[d].deliver(src, msgs)
