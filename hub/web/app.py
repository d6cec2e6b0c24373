"""The aiohttp application: status page, JSON API, live WebSockets, taps, metrics, health.

Routes (documented in README.md, "Watching the hub"):

  GET /                    the status page (static files shipped in the package)
  GET /api                 the list of endpoints
  GET /api/hubs            each hub's ports, routes and filter chains
  GET /api/ports           ports, filtered and paged: ?q=&state=&offset=&limit=
  GET /api/ports/{port}    one port by name or index (?hub=)
  GET /api/health          health as JSON; /healthz the same as 200/503 text
  GET /metrics             Prometheus exposition
  WS  /api/live            the /api/ports page every second; send {"q","state","offset","limit"}
  WS  /api/tap/{port}      the port's traffic: ?dir=in|out|both&session=&max=
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..hub import Hub
from ..port import Port
from ..tap import Direction, TapClient, TapEvent
from .metrics import make_registry
from .views import (
    MAX_PAGE,
    Provider,
    RateMeter,
    find_port,
    health,
    hub_label,
    hub_summary,
    list_ports,
    port_view,
)

__all__ = ["TAP_RATE_BYTES_S", "WebState", "format_tap_event", "make_app"]

#: How often live views are pushed and rates sampled.
LIVE_INTERVAL_S = 1.0
#: A tap client is sent at most this many shown bytes a second; the rest waits in
#: its bounded queue and is lost (counted) when that is full. It keeps a tap's
#: CPU cost on the hub's loop small, whatever the port carries.
TAP_RATE_BYTES_S = 256 * 1024
#: Per-event overhead counted against the budget (formatting a small event costs too).
TAP_EVENT_COST = 64
#: Bytes of one chunk shown by default (?max= changes it, up to TAP_MAX_SHOW).
TAP_SHOW = 4096
TAP_MAX_SHOW = 64 * 1024
#: One WebSocket message holds at most this many events and about this many shown
#: bytes, so formatting it holds the loop (and the data path) for a millisecond or so.
TAP_BATCH = 200
TAP_BATCH_BYTES = 64 * 1024
#: Bound of a tap client's queue (see hub.tap).
TAP_QUEUE_BYTES = 1024 * 1024

STATIC = Path(str(resources.files("hub.web") / "static"))

# Printable ASCII, tab and LF stay; CR goes (CR LF shows as a line break); the rest is a dot.
# A bytes table, so bytes.translate does it at C speed.
_TEXT = bytes(c if 0x20 <= c < 0x7F or c in (0x09, 0x0A) else 0x2E for c in range(256))
_DROP = b"\r"


def format_tap_event(e: TapEvent, names: list[str], show: int = TAP_SHOW) -> dict[str, Any]:
    """One tap line as JSON data: time, direction, session, source, and hex and text of the data."""
    line: dict[str, Any] = {"t": round(e.time_s, 6), "dir": e.direction.value}
    if e.session is not None:
        line["session"] = e.session
    if e.src is not None:
        line["src"] = names[e.src] if 0 <= e.src < len(names) else str(e.src)
    if e.data is None:
        line["signal"] = repr(e.message)
        return line
    shown = e.data[:show]
    line["len"] = len(e.data)
    line["hex"] = shown.hex(" ")
    line["text"] = shown.translate(_TEXT, _DROP).decode("ascii")
    return line


class WebState:
    """What the handlers share: the provider, rates, live taps and sockets."""

    def __init__(self, provider: Provider, extra_metrics: Callable[[], dict[str, Any]] | None = None):
        self.provider = provider
        self.rates = RateMeter()
        self.started_s = time.time()
        self.registry = make_registry(provider, extra_metrics)
        self.taps: set[TapClient] = set()
        self.sockets: set[web.WebSocketResponse] = set()
        self._lost_closed = 0
        self._sampler: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sampler = asyncio.get_running_loop().create_task(self._sample())

    async def close(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):  # the peer may be gone already
                await ws.close(code=1001, message=b"hub stopping")

    def tap_lost_events(self) -> int:
        return self._lost_closed + sum(c.lost_events for c in self.taps)

    def tap_done(self, client: TapClient) -> None:
        self.taps.discard(client)
        self._lost_closed += client.lost_events

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.rates.sample((p for h in self.provider() for p in h.ports), loop.time())
            await asyncio.sleep(LIVE_INTERVAL_S)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:"
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        error = json.dumps({"error": f"{name} must be a number"})
        raise web.HTTPBadRequest(text=error, content_type="application/json")
    return max(low, min(high, int(text)))


def _same_origin(request: web.Request) -> bool:
    """A WebSocket opened by a page from elsewhere (cross-site hijacking) is refused."""
    origin = request.headers.get("Origin")
    if not origin:
        return True  # not a browser (hub4com-tap, curl, a script)
    return origin.split("://", 1)[-1].rstrip("/") == request.host


def make_app(state: WebState) -> web.Application:
    """The application serving the hubs of `state.provider`."""
    app = web.Application(middlewares=[_headers])
    provider = state.provider

    def hubs() -> list[Hub]:
        return list(provider())

    def port_or_404(request: web.Request) -> tuple[Hub, Port, str]:
        hs = hubs()
        found = find_port(hs, request.match_info["port"], request.query.get("hub"))
        if found is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no port {request.match_info['port']}"}),
                content_type="application/json",
            )
        h, p = found
        return h, p, hub_label(h, hs.index(h))

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def api(request: web.Request) -> web.StreamResponse:
        routes = (__doc__ or "").split("Routes", 1)[-1].strip().splitlines()[2:]
        return web.json_response({"endpoints": [" ".join(r.split()) for r in routes if r.strip()]})

    async def api_hubs(request: web.Request) -> web.StreamResponse:
        hs = hubs()
        return web.json_response([hub_summary(h, hub_label(h, i), state.started_s) for i, h in enumerate(hs)])

    async def api_ports(request: web.Request) -> web.StreamResponse:
        result = list_ports(
            hubs(),
            state.rates,
            request.query.get("q", ""),
            request.query.get("state", ""),
            _int(request, "offset", 0, 0, 10**9),
            _int(request, "limit", 100, 1, MAX_PAGE),
        )
        return web.json_response(result)

    async def api_port(request: web.Request) -> web.StreamResponse:
        _, p, label = port_or_404(request)
        return web.json_response(port_view(label, p, state.rates))

    async def api_health(request: web.Request) -> web.StreamResponse:
        ok, problems = health(hubs())
        return web.json_response({"ok": ok, "problems": problems}, status=200 if ok else 503)

    async def healthz(request: web.Request) -> web.StreamResponse:
        ok, problems = health(hubs())
        if ok:
            return web.Response(text="ok\n")
        lines = "".join(f"{p['port']}: {p['problem']}\n" for p in problems)
        return web.Response(text=f"unhealthy\n{lines}", status=503)

    async def metrics(request: web.Request) -> web.StreamResponse:
        body = generate_latest(state.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def live(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin WebSocket refused\n")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024, compress=False)
        await ws.prepare(request)
        state.sockets.add(ws)
        view: dict[str, Any] = {"q": "", "state": "", "offset": 0, "limit": 100}
        changed = asyncio.Event()
        pusher = asyncio.get_running_loop().create_task(_push_live(ws, state, view, changed))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    _update_view(view, msg.data)
                    changed.set()
        finally:
            pusher.cancel()
            state.sockets.discard(ws)
        return ws

    async def tap(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            raise web.HTTPForbidden(text="cross-origin WebSocket refused\n")
        h, p, label = port_or_404(request)
        which = request.query.get("dir", "both")
        directions = {"in": {Direction.IN}, "out": {Direction.OUT}}.get(which, {Direction.IN, Direction.OUT})
        session = request.query.get("session")
        show = _int(request, "max", TAP_SHOW, 1, TAP_MAX_SHOW)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024, compress=False)
        await ws.prepare(request)
        state.sockets.add(ws)
        wake = asyncio.Event()
        client = TapClient(TAP_QUEUE_BYTES, wake=wake.set)
        client.directions = frozenset(directions)
        client.session = int(session) if session and session.isdigit() else None
        index = p.index
        h.add_tap(index, client)
        state.taps.add(client)
        hello = {"type": "hello", "hub": label, "port": p.name, "kind": p.kind, "show": show}
        sender = asyncio.get_running_loop().create_task(_send_tap(ws, h, client, wake, show, hello))
        try:
            async for _ in ws:
                pass  # the page pauses on its side; nothing to read but the close
        finally:
            sender.cancel()
            if index < len(h.ports) and h.ports[index] is p:
                h.remove_tap(index, client)
            state.tap_done(client)
            state.sockets.discard(ws)
        return ws

    async def favicon(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api", api)
    app.router.add_get("/api/hubs", api_hubs)
    app.router.add_get("/api/ports", api_ports)
    app.router.add_get("/api/ports/{port}", api_port)
    app.router.add_get("/api/health", api_health)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/live", live)
    app.router.add_get("/api/tap/{port}", tap)
    return app


def _update_view(view: dict[str, Any], text: str) -> None:
    """Apply a view request from the page; ignore what is not one."""
    try:
        req = json.loads(text)
    except ValueError:
        return
    if not isinstance(req, dict):
        return
    for key in ("q", "state"):
        if isinstance(req.get(key), str):
            view[key] = req[key][:200]
    for key, high in (("offset", 10**9), ("limit", MAX_PAGE)):
        value = req.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            view[key] = max(0 if key == "offset" else 1, min(high, value))


async def _push_live(
    ws: web.WebSocketResponse, state: WebState, view: dict[str, Any], changed: asyncio.Event
) -> None:
    while not ws.closed:
        hs = list(state.provider())
        payload = list_ports(hs, state.rates, view["q"], view["state"], view["offset"], view["limit"])
        ok, problems = health(hs)
        payload.update(type="status", time=time.time(), healthy=ok, problems=problems)
        await ws.send_json(payload)
        changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), LIVE_INTERVAL_S)


async def _send_tap(
    ws: web.WebSocketResponse,
    hub: Hub,
    client: TapClient,
    wake: asyncio.Event,
    show: int,
    hello: dict[str, Any],
) -> None:
    """Send the client's events, at most TAP_RATE_BYTES_S shown bytes a second."""
    loop = asyncio.get_running_loop()
    await ws.send_json(hello)
    allowance = float(TAP_RATE_BYTES_S)
    last = loop.time()
    reported = (-1, -1)
    while not ws.closed:
        await wake.wait()
        wake.clear()
        events: list[TapEvent] = []
        cost = 0
        while client.events and len(events) < TAP_BATCH and cost < TAP_BATCH_BYTES:
            (e,) = client.take(1)
            events.append(e)
            cost += min(e.size, show) + TAP_EVENT_COST
        if client.events:
            wake.set()
        names = [p.name for p in hub.ports]
        lines = [format_tap_event(e, names, show) for e in events]
        lost = (client.lost_events, client.lost_bytes)
        if lines or lost != reported:
            await ws.send_json(
                {"type": "tap", "events": lines, "lost_events": lost[0], "lost_bytes": lost[1]}
            )
            reported = lost
        now = loop.time()
        allowance = min(float(TAP_RATE_BYTES_S), allowance + (now - last) * TAP_RATE_BYTES_S) - cost
        last = now
        if allowance < 0:
            await asyncio.sleep(-allowance / TAP_RATE_BYTES_S)
