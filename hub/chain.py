"""Filter chains: a port's filter instances in order, and where what passes them goes.

Every port has one chain. A port that serves many connections at once (a
tcp-multi listener) gives each of them, a *session*, a chain of its own, made
from the port's filters (`Hub.session_chain`): every session then has the
state a filter would have on a port of its own, its telnet negotiation and
RFC 2217 settings, its echo, its trace lines. The port's own chain is then
empty; the driver decides what of a session's chain output enters the hub
(its --recv-from policy, observers) and which sessions a message written to
the port reaches (--send-to).

A chain runs (spec 1.7, 2.3):

* `run_in`: IN methods first to last; echo from filter k runs back through the
  OUT methods of filters k-1..0 to `to_port`; what is left goes to `to_hub`;
* `deliver`: what the hub routes to the port, through the OUT methods last to
  first (skipping instances whose source list excludes the source), to
  `to_port` (or the `sink` given);
* `run_out_below`: OUT methods below a position (a filter's `send_out`).

`Sticky` remembers the state-setting messages written to a port (baud rate,
line control, pins, modem lines, ...) so that a new session's filters start
knowing the port's current state, as a filter on a port of its own would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .filter import Filter, FilterContext
from .messages import (
    BreakStatus,
    LocalBaudStatus,
    LocalFlowStatus,
    LocalLcStatus,
    Message,
    ModemStatus,
    RemoteBaudStatus,
    RemoteFlowStatus,
    RemoteLcStatus,
    SetBaud,
    SetFlow,
    SetLineControl,
    SetPins,
)

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["Chain", "Factory", "Slot", "Sticky"]

#: Makes one filter instance for a context (the configured filter class and its options).
Factory = Callable[[FilterContext], Filter]
#: Where a message that passed the OUT methods goes: (message, source port).
ToPort = Callable[[Message, int], None]
#: Where the messages that passed the IN methods go.
ToHub = Callable[[list[Message]], None]


@dataclass(eq=False)
class Slot:
    """One filter instance attached to one port, with the methods it uses there."""

    filter: Filter
    use_in: bool
    use_out: bool
    #: OUT only runs for messages from these sources (None: from every source).
    sources: frozenset[int] | None = None
    #: Makes another instance of the same filter (for the sessions of a port).
    make: Factory | None = None

    @property
    def name(self) -> str:
        return self.filter.ctx.name


def _dropped(*_: Any) -> None:
    """The sink of a closed chain."""


class Chain:
    """The filter slots of one port or session, and the two ends they lead to.

    `observer` answers whether the chain's peer is an observer now (its requests
    are answered, not applied); None means the port's own `observer` flag.
    """

    __slots__ = ("_in", "_out", "hub", "index", "name", "observer", "slots", "to_hub", "to_port")

    def __init__(
        self,
        hub: Hub,
        index: int,
        name: str,
        slots: list[Slot],
        to_port: ToPort,
        to_hub: ToHub,
        observer: Callable[[], bool] | None = None,
    ):
        self.hub = hub
        #: The port the chain belongs to (the source of what it sends to the hub).
        self.index = index
        #: Shown in filters' log and trace lines: the port's name, "TCPM(1)#3" for a session.
        self.name = name
        self.slots = slots
        self.to_port = to_port
        self.to_hub = to_hub
        self.observer = observer
        # Tuples: a port without filters (most of 1,000 listener slots) holds the one empty tuple.
        self._in = tuple((k, s) for k, s in enumerate(slots) if s.use_in)
        self._out = tuple(s for s in reversed(slots) if s.use_out)

    def __repr__(self) -> str:
        return f"<Chain {self.name} {[s.name for s in self.slots]}>"

    def __bool__(self) -> bool:
        return bool(self.slots)

    @property
    def has_in(self) -> bool:
        """Some filter runs on what is read from the port."""
        return bool(self._in)

    @property
    def has_out(self) -> bool:
        """Some filter runs on what is written to the port."""
        return bool(self._out)

    # ---- the three paths (run inside Hub._enqueue) ----------------------------------

    def run_in(self, start: int, msgs: list[Message]) -> None:
        """Run the IN methods from slot position `start`, write echoes, then pass on."""
        for k, slot in self._in:
            if k < start:
                continue
            out: list[Message] = []
            echo: list[Message] = []
            f = slot.filter
            for m in msgs:
                f.on_in(m, out, echo)
            if echo:
                self.run_out_below(k, echo)
            msgs = out
            if not msgs:
                return
        self.to_hub(msgs)

    def run_out_below(self, pos: int, msgs: list[Message], src: int | None = None) -> None:
        """Run the OUT methods below `pos` (no source check) and write.

        `src` is the source port handed to the filters and the port (default: this one)."""
        if src is None:
            src = self.index
        slots = self.slots
        for k in range(pos - 1, -1, -1):
            slot = slots[k]
            if not slot.use_out:
                continue
            out: list[Message] = []
            f = slot.filter
            for m in msgs:
                f.on_out(m, src, out)
            msgs = out
            if not msgs:
                return
        to_port = self.to_port
        for m in msgs:
            to_port(m, src)

    def deliver(self, src: int, msgs: list[Message], sink: ToPort | None = None) -> None:
        """Messages routed from port `src`: every OUT method, last to first, then `sink`
        (default `to_port`)."""
        for slot in self._out:
            if slot.sources is not None and src not in slot.sources:
                continue
            out: list[Message] = []
            f = slot.filter
            for m in msgs:
                f.on_out(m, src, out)
            msgs = out
            if not msgs:
                return
        to_port = self.to_port if sink is None else sink
        for m in msgs:
            to_port(m, src)

    # ---- for drivers that own session chains -----------------------------------------

    def received(self, msgs: list[Message]) -> None:
        """Messages read from the session: run the IN methods (queued behind the hub's work)."""
        self.hub._enqueue(self.run_in, 0, msgs)

    def write(self, msgs: list[Message], src: int, sink: ToPort | None = None) -> None:
        """Messages written to the session from port `src`: run the OUT methods, then `sink`."""
        self.hub._enqueue(self.deliver, src, msgs, sink)

    def start(self) -> None:
        """Send each filter's start messages towards the session (pinmap's initial pins)."""
        for k, s in enumerate(self.slots):
            if s.use_out:
                out: list[Message] = []
                s.filter.start(out)
                if out:
                    self.hub._enqueue(self.run_out_below, k, out)

    def close_after(self, then: Callable[[], None] | None = None) -> None:
        """Close once everything queued before has run, after calling `then`."""
        self.hub._enqueue(self._close_now, then)

    def _close_now(self, then: Callable[[], None] | None) -> None:
        try:
            if then is not None:
                then()
        finally:
            self.close()

    def close(self) -> None:
        """Close every filter instance; later messages and timers go nowhere. Never raises."""
        self.to_port = _dropped
        self.to_hub = _dropped
        self.hub.close_filters(self.slots)


class Sticky:
    """The last state-setting message of each kind written to a port, per source.

    Line control, pins and modem lines are merged field by field, so that
    `replay` gives a new session everything a filter attached from the start
    would have seen, and no more.
    """

    __slots__ = ("_state",)

    #: Kinds whose fields are merged (the newer message's present fields win).
    _MERGED_LC = (SetLineControl, LocalLcStatus, RemoteLcStatus)
    _MERGED_FLOW = (SetFlow, LocalFlowStatus, RemoteFlowStatus)
    _MERGED_MASK = (SetPins, ModemStatus)
    _REPLACED = (SetBaud, LocalBaudStatus, RemoteBaudStatus, BreakStatus)
    KINDS = frozenset((*_MERGED_LC, *_MERGED_FLOW, *_MERGED_MASK, *_REPLACED))

    def __init__(self) -> None:
        self._state: dict[tuple[type, int], Message] = {}

    def note(self, msg: Message, src: int) -> None:
        """Remember `msg` (from port `src`) if it sets state; ignore anything else."""
        kind = type(msg)
        if kind not in self.KINDS:
            return
        key = (kind, src)
        old: Any = self._state.get(key)
        if old is not None:
            if kind in self._MERGED_LC:
                msg = kind(old.lc.merged(msg.lc))  # type: ignore[union-attr, call-arg]
            elif kind in self._MERGED_FLOW:
                msg = kind(old.flow.merged(msg.flow))  # type: ignore[union-attr, call-arg]
            elif kind in self._MERGED_MASK:
                mask = msg.mask  # type: ignore[union-attr]
                value = (old.value & ~mask) | (msg.value & mask)  # type: ignore[union-attr]
                msg = kind(value, old.mask | mask)  # type: ignore[call-arg]
        self._state[key] = msg

    def replay(self) -> dict[int, list[Message]]:
        """The remembered messages by source, in the order their kinds were first seen."""
        out: dict[int, list[Message]] = {}
        for (_, src), msg in self._state.items():
            out.setdefault(src, []).append(msg)
        return out

    def __len__(self) -> int:
        return len(self._state)
