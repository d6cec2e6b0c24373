"""What the status page and the JSON API show, as plain data, computed at request time.

Everything here reads the ports' counters and snapshots (`Port.snapshot`);
nothing runs on the data path. No aiohttp: the server turns these dicts into
JSON responses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..hub import Hub
from ..port import Port

__all__ = [
    "LIST_SESSIONS",
    "MAX_PAGE",
    "Provider",
    "RateMeter",
    "find_port",
    "health",
    "hub_label",
    "hub_summary",
    "list_ports",
    "port_view",
]

#: A callable returning the hubs the process runs now (today one).
Provider = Callable[[], Sequence[Hub]]

#: Most ports one list request returns.
MAX_PAGE = 500
#: Sessions shown per port in the list (the port's own view shows all).
LIST_SESSIONS = 20


def hub_label(hub: Hub, position: int) -> str:
    """The `hub` label of a hub: its name if it has one, else its position."""
    return str(getattr(hub, "name", "") or position)


@dataclass
class _Sample:
    time_s: float
    bytes_in: int
    bytes_out: int
    rate_in: float = 0.0
    rate_out: float = 0.0


class RateMeter:
    """Bytes per second in and out of each port, from samples taken about once a second."""

    def __init__(self) -> None:
        self._samples: dict[int, _Sample] = {}

    def sample(self, ports: Iterable[Port], now: float) -> None:
        """Update the rates of `ports` from their byte counters at time `now` (seconds)."""
        seen: dict[int, _Sample] = {}
        for p in ports:
            key = id(p)
            old = self._samples.get(key)
            new = _Sample(now, p.bytes_in, p.bytes_out)
            if old is not None:
                dt = now - old.time_s
                if dt < 0.2:  # too soon to tell: keep the last rates and sample
                    seen[key] = old
                    continue
                new.rate_in = max(0.0, (p.bytes_in - old.bytes_in) / dt)
                new.rate_out = max(0.0, (p.bytes_out - old.bytes_out) / dt)
            seen[key] = new
        self._samples = seen

    def rates(self, port: Port) -> tuple[float, float]:
        s = self._samples.get(id(port))
        return (s.rate_in, s.rate_out) if s is not None else (0.0, 0.0)


def port_view(
    hub: str, port: Port, rates: RateMeter | None = None, sessions: int | None = None
) -> dict[str, Any]:
    """A port's snapshot with its hub label and rates; at most `sessions` sessions listed."""
    snap = port.snapshot()
    snap["hub"] = hub
    rate_in, rate_out = rates.rates(port) if rates is not None else (0.0, 0.0)
    snap["rate_in"] = round(rate_in, 1)
    snap["rate_out"] = round(rate_out, 1)
    listed = snap.get("sessions")
    if listed is not None:
        snap["sessions_total"] = len(listed)
        if sessions is not None and len(listed) > sessions:
            snap["sessions"] = listed[:sessions]
    snap["tapped"] = port.taps is not None
    return snap


def _search_text(port: Port) -> str:
    peers = getattr(port, "peer", None) or ""
    return f"{port.name} {port.kind} {port.status()} {peers}".lower()


def list_ports(
    hubs: Sequence[Hub],
    rates: RateMeter | None = None,
    query: str = "",
    state: str = "",
    offset: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    """One page of ports, filtered by text (name, kind, status, peer) and state.

    Returns {"total", "matched", "offset", "limit", "states": {state: count of all
    ports}, "ports": [port views]}. Only the page's ports are snapshot.
    """
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    words = query.lower().split()
    states: dict[str, int] = {}
    matched: list[tuple[str, Port]] = []
    total = 0
    for i, h in enumerate(hubs):
        label = hub_label(h, i)
        for p in h.ports:
            total += 1
            st = p.port_state().value
            states[st] = states.get(st, 0) + 1
            if state and st != state:
                continue
            if words:
                text = _search_text(p)
                if not all(w in text for w in words):
                    continue
            matched.append((label, p))
    page = matched[offset : offset + limit]
    return {
        "total": total,
        "matched": len(matched),
        "offset": offset,
        "limit": limit,
        "states": states,
        "ports": [port_view(label, p, rates, LIST_SESSIONS) for label, p in page],
    }


def find_port(hubs: Sequence[Hub], ident: str, hub: str | None = None) -> tuple[Hub, Port] | None:
    """The port named `ident` (e.g. ``TCPM(2)``) or with index `ident`, in hub `hub`
    (a label; None: the first hub that has it)."""
    for i, h in enumerate(hubs):
        if hub is not None and hub_label(h, i) != hub:
            continue
        for p in h.ports:
            if p.name == ident:
                return h, p
        if ident.isdigit() and int(ident) < len(h.ports):
            return h, h.ports[int(ident)]
    return None


def hub_summary(hub: Hub, label: str, started_s: float | None = None) -> dict[str, Any]:
    """A hub's ports, routes and filter chains (the picture of the hub)."""
    names = [p.name for p in hub.ports]
    routes = {
        kind: [{"from": names[src], "to": [names[d] for d in dsts]} for src, dsts in table.items() if dsts]
        for kind, table in (("data", hub.routes.data), ("flow_control", hub.routes.fc))
    }
    chains = []
    for i, slots in enumerate(hub.slots):
        if slots:
            chain = [
                {
                    "name": s.name,
                    "in": s.use_in,
                    "out": s.use_out,
                    "sources": sorted(names[x] for x in s.sources) if s.sources is not None else None,
                }
                for s in slots
            ]
            chains.append({"port": names[i], "filters": chain})
    summary: dict[str, Any] = {
        "hub": label,
        "version": __version__,
        "ports": [{"index": p.index, "name": p.name, "kind": p.kind} for p in hub.ports],
        "routes": routes,
        "chains": chains,
    }
    if started_s is not None:
        summary["started"] = started_s
        summary["uptime_s"] = round(time.time() - started_s, 1)
    return summary


def health(hubs: Sequence[Hub]) -> tuple[bool, list[dict[str, str]]]:
    """(True, []) while every required port works, else (False, [{hub, port, problem}])."""
    problems = []
    for i, h in enumerate(hubs):
        for p in h.ports:
            if not p.required:
                continue
            text = p.problem()
            if text is not None:
                problems.append({"hub": hub_label(h, i), "port": p.name, "problem": text})
    return not problems, problems
