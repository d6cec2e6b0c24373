"""The HTTP server: its listening socket, admission control and life cycle.

Connections are accepted the way TCP listeners accept them (`hub.accept`,
`hub.netsec`): the socket is watched only while --http-max-connections has
room; each accepted connection passes --http-allow/--http-deny and
--http-max-rate before anything it sent is read, a refused one is reset
(SO_LINGER 0) and logged once per address and interval; with TLS the
handshake (client certificates with --http-tls-ca) runs before aiohttp sees
the connection. Admitted connections are handed to aiohttp's low-level server
on the hub's own loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import struct
import time
from typing import Any

from aiohttp import web

from .. import netsec
from ..accept import Acceptor
from ..errors import PortError
from ..logs import SELF_LIMITED
from ..port import Port
from .app import WebState, make_app
from .options import HttpSettings
from .views import Provider

__all__ = ["HttpServer", "PortErrorLog"]

log = logging.getLogger("hub.web")

#: SO_LINGER on, 0 s: close() sends RST (refusing a connection).
_LINGER_RESET = struct.pack("ii", 1, 0)
#: Seconds aiohttp may take to finish requests at shutdown.
_SHUTDOWN_TIMEOUT_S = 1.0


class _Admitted(asyncio.Protocol):
    """aiohttp's protocol for one admitted connection; frees its place when it ends."""

    def __init__(self, inner: asyncio.Protocol, ticket: netsec.Ticket):
        self.inner = inner
        self.ticket = ticket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ticket.release()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class PortErrorLog(logging.Handler):
    """Keeps warnings logged about a port (lines that start with its name) as its last errors."""

    def __init__(self, provider: Provider):
        super().__init__(logging.WARNING)
        self.provider = provider
        self._names: dict[str, list[Port]] = {}
        self._key: tuple[int, ...] = ()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            return
        end = len(text)
        for sep in (" ", ":"):
            i = text.find(sep)
            if 0 < i < end:
                end = i
        for port in self._ports_named(text[:end]):
            port.note_error(text)

    def _ports_named(self, name: str) -> list[Port]:
        hubs = self.provider()
        key = tuple(id(p) for h in hubs for p in h.ports)
        if key != self._key:
            self._key = key
            self._names = {}
            for h in hubs:
                for p in h.ports:
                    self._names.setdefault(p.name, []).append(p)
        return self._names.get(name, [])


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class HttpServer:
    """Serves the status page, API, taps, metrics and health for the hubs `provider` returns."""

    def __init__(self, settings: HttpSettings, provider: Provider):
        self.settings = settings
        self.provider = provider
        self.loop: asyncio.AbstractEventLoop | None = None
        policy = settings.policy
        self.gate = netsec.Gate(policy, ports=0)
        self.ssl_context: ssl.SSLContext | None = None
        if policy.tls is not None:
            self.ssl_context = netsec.TlsContexts().get(policy.tls, server_side=True)
        self._acceptor = Acceptor(lambda: "HTTP", self._has_room, self._accepted)
        self.gate.limit.on_release = self._acceptor.watch
        self.state = WebState(provider, self._extra_metrics)
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self._wrapping: set[asyncio.Task[None]] = set()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._errors = PortErrorLog(provider)
        #: The bound address as host:port once listening.
        self.address: str | None = None
        self.url: str | None = None

    # ---- life cycle --------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving. Raises PortError (one line) if it cannot listen."""
        self.loop = asyncio.get_running_loop()
        host, port = self.settings.host, self.settings.port
        try:
            infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, _, _, _, sockaddr = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(sockaddr)
                sock.listen(socket.SOMAXCONN)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise PortError("HTTP", exc.errno, f"Cannot listen on {where}: {exc.strerror or exc}") from exc
        self._sock = sock
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.address = f"{shown}:{bound[1]}"
        scheme = "https" if self.ssl_context is not None else "http"
        self.url = f"{scheme}://{self.address}/"
        self._runner = web.AppRunner(
            make_app(self.state), access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
        )
        await self._runner.setup()
        self.state.start()
        logging.getLogger().addHandler(self._errors)
        self.gate.ports = 1
        self._acceptor.start(self.loop, sock)
        tls = ""
        if self.ssl_context is not None:
            tls = " (TLS, client certificates required)" if self.settings.policy.authenticates else " (TLS)"
        log.info("HTTP: status page on %s%s", self.url, tls)
        if not _is_loopback(host) and not self.settings.policy.authenticates:
            log.warning(
                "Warning: the HTTP server on %s lets anybody in; use --http-allow=<addresses> or "
                "--http-tls-ca with client certificates, or leave the address out (this machine only)",
                self.address,
            )

    async def close(self) -> None:
        """Stop accepting, close live connections and WebSockets. Never raises."""
        self._acceptor.close()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        logging.getLogger().removeHandler(self._errors)
        for task in list(self._wrapping):
            task.cancel()
        await self.state.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            try:
                await runner.cleanup()
            except Exception:  # shutting down: report, never raise
                log.exception("HTTP: error while shutting down")

    def _extra_metrics(self) -> dict[str, Any]:
        refused = {v.name.lower(): n for v, n in self.gate.counts.items() if v is not netsec.Verdict.ADMIT}
        refused["tls_handshake"] = self.gate.handshake_failures
        return {
            "tap_clients": len(self.state.taps),
            "tap_lost_events": self.state.tap_lost_events(),
            "http_refused": refused,
        }

    # ---- accepting -----------------------------------------------------------------

    def _has_room(self) -> bool:
        return not self.gate.limit.full

    def _accepted(self, conn: socket.socket, addr: Any) -> None:
        loop = self.loop
        assert loop is not None
        host = str(addr[0]) if isinstance(addr, tuple) else str(addr)
        peer = f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
        verdict, ticket = self.gate.admit(host, loop.time())
        if ticket is None:
            try:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:
                pass  # closing without the reset still refuses
            conn.close()
            text = self.gate.refusal_text(verdict, peer, loop.time())
            if text is None:
                self._arm_flush()
            else:
                log.warning("HTTP: %s", text, extra=SELF_LIMITED)
            return
        task = loop.create_task(self._serve(conn, peer, ticket))
        self._wrapping.add(task)
        task.add_done_callback(self._wrapping.discard)

    async def _serve(self, conn: socket.socket, peer: str, ticket: netsec.Ticket) -> None:
        """Wrap an admitted connection (TLS: the handshake) and hand it to aiohttp."""
        loop = self.loop
        assert loop is not None and self._runner is not None
        server = self._runner.server
        assert server is not None
        proto = _Admitted(server(), ticket)
        tls: dict[str, Any] = {}
        if self.ssl_context is not None:
            timeout_s = self.settings.policy.tls.timeout_s if self.settings.policy.tls is not None else None
            tls = {
                "ssl": self.ssl_context,
                "ssl_handshake_timeout": timeout_s,
                "ssl_shutdown_timeout": timeout_s,
            }
        try:
            conn.setblocking(False)
            await loop.connect_accepted_socket(lambda: proto, sock=conn, **tls)
        except OSError as exc:  # ssl.SSLError, a reset, the handshake timeout
            conn.close()
            ticket.release()
            if self.ssl_context is None:
                log.debug("HTTP: connection from %s failed: %s", peer, exc)
                return
            text = self.gate.handshake_failed(peer, exc, loop.time())
            if text is None:
                self._arm_flush()
            else:
                log.warning("HTTP: %s", text, extra=SELF_LIMITED)
        except BaseException:  # cancelled by close(), or a bug: nothing may leak
            conn.close()
            ticket.release()
            raise

    def _arm_flush(self) -> None:
        if self._flush_timer is None and self.loop is not None and self._sock is not None:
            self._flush_timer = self.loop.call_later(self.gate.log.interval_s, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        for line in self.gate.flush(time.monotonic() if self.loop is None else self.loop.time()):
            log.warning("HTTP: %s", line, extra=SELF_LIMITED)
        if self.gate.log.pending:
            self._arm_flush()
