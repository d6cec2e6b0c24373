"""The tcp-multi driver: one TCP listener port that serves any number of clients.

hub4com serves several TCP clients only as several ``*PORT`` slots of the tcp
driver, one hub port each. A tcp-multi port is one hub port for all its
sessions: the port's data fans out to the sessions `--send-to` picks, the data
of the sessions `--recv-from` picks enters the hub, and each session has its
own bounded queue, so one slow or stalled client loses data (or is closed)
without holding up the device or the other clients. The policy machinery is
sans-IO, in `drivers._sessions`; this module owns the sockets.

Security is the tcp driver's (`hub.netsec`): TLS with client
certificates, --allow/--deny, --max-rate and --max-connections are checked
when a connection is accepted, before it becomes a session, and a listener on
every interface that lets anybody in is warned about at start-up.

Connect state: the first session's arrival reports CONNECT(TRUE), the last
one's departure CONNECT(FALSE), so share-mode devices and pin mappings behave
as with one client. CONNECT requests written to the port are counted but
change nothing: clients stay connected while the device comes and goes.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import re
import socket
import struct
from typing import Any

from hub import netsec as _netsec
from hub import password as _password
from hub.accept import Acceptor
from hub.chain import Sticky
from hub.errors import PortError, UsageError
from hub.logs import SELF_LIMITED
from hub.messages import Connect, FlowControl, LineData, Message
from hub.netsec import Gate, ListenerPolicy, LogLimiter, Ticket, TlsContexts, TlsSettings, Verdict
from hub.password import Admission
from hub.port import DEFAULT_WRITE_LIMIT, Driver, Drop, HubLink, Port, PortState, parse_write_limit

from . import _netopts
from ._netopts import Keepalive
from ._sessions import (
    Chunk,
    Control,
    Frame,
    Policy,
    Session,
    SessionConfig,
    SessionSet,
    SlowClient,
    describe_drops,
    parse_buffer,
    parse_frame,
)
from .tcp import format_hostport, parse_interface, port_number

__all__ = ["USAGE", "TcpMultiDriver", "TcpMultiPort", "hold_nothing", "parse_listen_address"]

log = logging.getLogger(__name__)

USAGE = f"""\
Usage: tcp-multi [options]

A TCP listener that serves many clients as one hub port, shown as TCPM(<n>).
A port argument is [<host>:]<port> or [<IPv6 address>]:<port>: the address to
listen on (a host here replaces --interface for this port). Port 0 picks a
free port; the log line "TCPM(<n>): listening on ..." shows which. The options
apply to every tcp-multi port after them.

Options:
  --interface=<if>     Address to listen on when the port argument has none:
                       an IPv4 or IPv6 address or a host name. Default: all
                       interfaces.
  --max-clients=<n>    At most <n> sessions at once; a further client is
                       refused (closed at once, with a log line). Default 0:
                       no limit.
  --kick-oldest        At --max-clients, close the oldest session for a new
                       client instead of refusing it.
  --no-kick-oldest     Refuse further clients (the default).
  --recv-from=<p>      Whose data enters the hub: none, first, last,
                       last-active or all. Default all.
  --send-to=<p>        Who gets the port's data: none, first, last,
                       last-active or all. Default all.
  --control=<c>        Whose requests may change the port's settings and
                       lines (baud rate, data format, flow control, DTR, RTS,
                       break; RFC 2217 with the telnet filter): writer (the
                       sessions --recv-from admits), all (ser2net's way) or
                       none. The others are observers: their requests are
                       answered with the port's current values and not
                       applied. Default writer.
  --read-only          Every session is an observer: its data and requests are
                       discarded (counted), and its filters still negotiate
                       (telnet, RFC 2217) and answer it.
  --read-write         Undo --read-only for the following ports (the default).
  --active-hold=<ms>   With --recv-from=last-active: how long the session that
                       sent last keeps the floor; another session's data is
                       ignored until it was quiet that long. Default 1000.
  --slow-client=<m>    A session whose queue is full: block (lossless: the
                       port throttles its sources along flow-control routes
                       and everyone slows down; from a source without such a
                       route data is dropped as with drop), drop (that session
                       loses data, counted) or disconnect (as drop, and the
                       session is closed once it stayed stalled for the
                       send timeout). Default drop.
  --send-timeout=<ms>  How long a session may stay stalled (its queue above two
                       thirds of --write-limit) before disconnect closes it;
                       with block, 0 means never. Default 5000 for
                       disconnect, 0 for block.
  --frame=<f>          b[ytes] or l[ine]. line: a session that starts mid-stream
                       starts at the next line, and a slow session loses whole
                       lines, never part of one (lines end with LF: NMEA's
                       CR LF and plain LF alike). Default bytes.
{_netopts.KEEPALIVE_USAGE}  --sndbuf=<bytes>     The kernel's send buffer of each session (SO_SNDBUF;
                       Linux doubles it). The kernel holds that much for a
                       stalled client before its queue and --slow-client come
                       into play, so a small one keeps a resuming client's
                       data fresh. Default 0: the system's, auto-tuned up to
                       megabytes.
  --buffer=<bytes>     Keep up to <bytes> of the port's data while no session
                       is connected and give it to the first one (with line
                       framing whole lines only). Default 0: off.
  --write-limit=<s>    Queue limit of each session in bytes; 0 discards
                       everything written to the port.
                       Default {DEFAULT_WRITE_LIMIT}.
{_netsec.TLS_USAGE}{_netsec.LISTENER_USAGE}{_password.PASSWORD_USAGE}
Without --max-connections a tcp-multi port holds --max-clients plus
{_netsec.EXTRA_CONNECTIONS} connections (sessions and TLS handshakes), or any
number without --max-clients.

Filters attached to a tcp-multi port (--add-filters) run for each session:
every client gets its own telnet negotiation, RFC 2217 settings, echo and
trace (shown as TCPM(<n>)#<client>).

Recipes:
  one controller, many observers:  --recv-from=first  (or last-active)
  read-only sharing (GPS):         --recv-from=none --frame=line
  request/response from many:      --recv-from=last-active (and send-to)
"""

#: Errors that make the default listener fall back from "::" to "0.0.0.0".
_NO_IPV6_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})
#: The gate's "ports" without --max-clients: no connection limit in practice.
_NO_LIMIT = 1 << 30
#: SO_LINGER on, 0 s: close() sends RST (refusing a connection).
_LINGER_RESET = struct.pack("ii", 1, 0)
_NUMBER_RE = re.compile(r"[0-9]+\Z")


# ---- addresses and option values ---------------------------------------------


def parse_listen_address(path: str) -> tuple[str | None, int]:
    """Parse ``[host:]port`` or ``[IPv6]:port``; returns (host or None, port).

    Raises UsageError(path, "Invalid address").
    """
    host: str | None
    if path.startswith("["):
        inner, sep, rest = path[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageError(path, "Invalid address")
        try:
            host = str(ipaddress.IPv6Address(inner))
        except ValueError:
            raise UsageError(path, "Invalid address") from None
        port_text = rest[1:]
    elif ":" in path:
        host_text, _, port_text = path.rpartition(":")
        try:
            host = parse_interface(host_text)
        except UsageError:
            raise UsageError(path, "Invalid address") from None
        if host is None or ":" in host:  # empty, or IPv6 without brackets
            raise UsageError(path, "Invalid address")
    else:
        host, port_text = None, path
    return host, port_number(port_text, path, 0)


def _int_option(name: str, unit: str) -> Any:
    def convert(value: Any) -> int:
        text = str(value).strip()
        if not _NUMBER_RE.match(text):
            raise UsageError(None, f"Invalid {name} value ({unit}, 0 or more)")
        return int(text)

    return convert


def _enum_option(name: str, cls: Any) -> Any:
    choices = ", ".join(m.value for m in cls)

    def convert(value: Any) -> Any:
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise UsageError(None, f"Invalid {name} value (one of {choices})") from None

    return convert


_CONVERTERS = {
    "--interface": parse_interface,
    "--write-limit": parse_write_limit,
    "--max-clients": _int_option("--max-clients", "a number of sessions"),
    "--recv-from": _enum_option("--recv-from", Policy),
    "--send-to": _enum_option("--send-to", Policy),
    "--control": _enum_option("--control", Control),
    "--active-hold": _int_option("--active-hold", "milliseconds"),
    "--slow-client": _enum_option("--slow-client", SlowClient),
    "--send-timeout": _int_option("--send-timeout", "milliseconds"),
    "--frame": parse_frame,
    **_netopts.CONVERTERS,
    "--buffer": parse_buffer,
    "--sndbuf": _int_option("--sndbuf", "bytes"),
}


# ---- listening ------------------------------------------------------------------


def _listening_socket(host: str | None, port: int) -> socket.socket:
    """A bound, listening, non-blocking socket on `host` (None: all interfaces).

    Raises OSError; nothing leaks.
    """
    if host is None:
        if socket.has_ipv6:
            try:
                return _bind(socket.AF_INET6, ("::", port), dual_stack=True)
            except OSError as exc:
                if exc.errno not in _NO_IPV6_ERRNOS:
                    raise
        return _bind(socket.AF_INET, ("0.0.0.0", port), dual_stack=False)
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return _bind(family, sockaddr, dual_stack=False)


def _bind(family: int, sockaddr: Any, dual_stack: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _format_sockaddr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return format_hostport(str(addr[0]), int(addr[1]))
    return str(addr)


def _host_of(peer: str) -> str:
    """The host part of ``host:port`` or ``[v6]:port``."""
    host = peer.rpartition(":")[0] if ":" in peer else peer
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def hold_nothing(transport: Any) -> None:
    """Make `transport` pause its protocol as soon as it holds an unsent byte.

    A plain transport (asyncio's or uvloop's) pauses when its buffer is *above*
    the high-water mark, so high=0 does it. A TLS transport (asyncio's
    sslproto and uvloop's alike) pauses when its buffer is *at or above* it:
    with high=0 it paused after every write, even one that went out whole, and
    resumed only when the peer sent something, so a client that only reads got
    the first write and nothing more, and --slow-client=block stalled the
    device. There high=1 means "any byte left". Under TLS the socket transport
    below still buffers up to its default 64 KiB before that shows.
    """
    tls = transport.get_extra_info("ssl_object") is not None
    transport.set_write_buffer_limits(high=1 if tls else 0, low=0)


# ---- the port ---------------------------------------------------------------------


def _refuse(conn: socket.socket) -> None:
    """Close an accepted connection with a reset (Linux cannot refuse before accept)."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError as exc:
        log.debug("cannot set SO_LINGER on a refused connection: %s", exc)
    conn.close()


class _SessionProtocol(asyncio.Protocol):
    """One client connection's callbacks, forwarded to its port.

    Holds the connection's ticket of the gate (--max-connections) from accept
    to connection_lost.
    """

    __slots__ = ("admission", "controlled", "peer", "port", "session", "ticket", "transport", "xoff")

    def __init__(self, port: TcpMultiPort, peer: str, ticket: Ticket):
        self.port = port
        self.peer = peer
        self.ticket = ticket
        self.session: Session | None = None
        self.transport: asyncio.Transport | None = None
        #: XOFFs this session's filters sent into the hub and no XON yet.
        self.xoff = 0
        #: Whether the session could change the port when it ended (for what its
        #: filters send at the end: the lines its peer drove drop).
        self.controlled = False
        #: --password-file: the password check, before the connection becomes a session.
        self.admission: Admission | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.port.policy.password is None:
            self.port._accepted(self)
        else:
            self.port._check_password(self)

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.port._session_data(self.session, data)
        elif self.admission is not None:
            self.admission.feed(data)  # the password line (ignored once refused)

    def eof_received(self) -> bool:
        return False  # the client shut down its side: the session is over

    def connection_lost(self, exc: Exception | None) -> None:
        self.ticket.release()
        if self.admission is not None:
            self.admission.lost()
            self.port._admitting.discard(self)
        if self.session is not None:
            self.port._session_lost(self.session, exc)

    def pause_writing(self) -> None:
        if self.session is not None:
            self.port.sessions.pause(self.session)

    def resume_writing(self) -> None:
        if self.session is not None:
            self.port._session_writable(self.session)

    # The ends of the session's filter chain (hub.chain), when the port has filters.

    def data_to_session(self, msg: Message, src: int) -> None:
        """The session's share of the port's data, out of its filters."""
        if self.session is not None:
            self.port._data_to_session(self.session, msg, src)

    def to_session(self, msg: Message, src: int) -> None:
        """What the session's filters send on their own (replies, notifications)."""
        if self.session is not None and type(msg) is LineData:
            self.port._control_to_session(self.session, msg.data)  # type: ignore[union-attr]

    def from_session(self, msgs: list[Message]) -> None:
        """What passed the session's IN filters, for the port's policies."""
        if self.session is not None:
            self.port._from_session(self, self.session, msgs)

    def observes(self) -> bool:
        """FilterContext.observer of the session's filters."""
        session = self.session
        if session is None or not session.alive:
            return not self.controlled
        return not self.port.sessions.may_control(session, self.port.hub.loop.time())


class TcpMultiPort(Port):
    """A listener port serving many sessions, named ``TCPM(<index>)``.

    Filters attached to the port run per session (hub.chain): each session gets
    its own instances at connect, so telnet and RFC 2217 negotiate with every
    client, and what comes out of a session's filters passes the port's
    policies: --recv-from for data, --control for requests (baud rate, data
    format, flow control, lines; an observer's are answered, not applied). What
    is written to the port runs through the filters of each session --send-to
    picks; signals (modem lines, settings) reach every session. A new session's
    filters first see the port's current state (`Sticky`).
    """

    serves_sessions = True

    def __init__(
        self,
        hub: HubLink,
        index: int,
        host: str | None,
        port: int,
        config: SessionConfig,
        *,
        keepalive: Keepalive | None = None,
        sndbuf: int = 0,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        policy: ListenerPolicy | None = None,
        ssl_context: Any = None,
        warnings: list[str] | None = None,
    ):
        super().__init__(hub, index, f"TCPM({index})", write_limit)
        self.host = host
        self.port = port
        self.keepalive = keepalive or Keepalive()
        self.sndbuf = sndbuf
        self.sessions = SessionSet(config)
        self.policy = policy or ListenerPolicy()
        self.ssl_context = ssl_context
        #: Logged at start (so that a start-up error stays one line).
        self.warnings = warnings or []
        self.gate = Gate(self.policy, ports=config.max_clients or _NO_LIMIT)
        self._acceptor = Acceptor(lambda: self.name, self._has_room, self._on_connection)
        self.gate.limit.on_release = self._acceptor.watch
        #: Refusals for --max-clients, logged once per address and interval.
        self._refusals = LogLimiter(self.gate.log.interval_s)
        self._block = config.slow is SlowClient.BLOCK
        self._sock: socket.socket | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        #: Accepted connections being wrapped in a transport (TLS: handshaking).
        self._wrapping: set[asyncio.Task[None]] = set()
        #: Connections checking their password (--password-file).
        self._admitting: set[_SessionProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None
        #: Data that arrived while reading was paused: (session, data) for a session
        #: with filters, (None, data) for data already admitted.
        self._held: list[tuple[Session | None, bytes]] = []
        #: The state-setting messages written to the port, for new sessions' filters.
        self._sticky = Sticky()
        self._next_id = 1
        self._closed = False
        #: The bound address as host:port once listening.
        self.address: str | None = None

    def __repr__(self) -> str:
        read = "paused" if self.xoff_count else "on"
        return (
            f"<TcpMultiPort {self.name} {self.address or self.port} sessions={len(self.sessions)} "
            f"read={read} queued={self.queued_bytes()}B>"
        )

    def status(self) -> str:
        s = self.sessions
        text = f"listening on {self.address}" if self.address else "not listening"
        text += f", {len(s)} client{'' if len(s) == 1 else 's'}"
        extra = [f"{s.accepted} so far"]
        if s.refused:
            extra.append(f"{s.refused} refused")
        if s.kicked:
            extra.append(f"{s.kicked} kicked")
        text += f" ({', '.join(extra)})"
        if s.stalled:
            text += f", {s.stalled} stalled"
        if s.dropped_bytes:
            text += f", dropped {describe_drops(s.dropped_bytes, s.dropped_lines)}"
        return text

    def port_state(self) -> PortState:
        if self._closed:
            return PortState.CLOSED
        if self._sock is None:
            return PortState.DOWN
        return PortState.CONNECTED if self.sessions.sessions else PortState.WAITING

    def problem(self) -> str | None:
        if self._sock is None and not self._closed:
            return f"not listening on {format_hostport(self.host or '*', self.port)}"
        return None

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        s = self.sessions
        now = self.hub.loop.time()
        snap["address"] = self.address
        snap["role"] = "listener"
        snap["tls"] = self.ssl_context is not None
        snap["peers"] = [x.peer for x in s.sessions]
        snap["sessions"] = [x.snapshot(now) for x in s.sessions]
        snap["clients"] = {
            "accepted": s.accepted,
            "refused": s.refused,
            "kicked": s.kicked,
            "closed": s.closed,
        }
        snap["gate"] = self.gate.snapshot()
        return snap

    # ---- driver hooks ---------------------------------------------------------

    def start(self) -> None:
        """Listen. Raises PortError if the address cannot be bound."""
        try:
            sock = _listening_socket(self.host, self.port)
        except OSError as exc:
            where = format_hostport(self.host or "*", self.port)
            reason = exc.strerror or str(exc)
            raise PortError(self.name, exc.errno, f"Cannot listen on {where}: {reason}") from exc
        self._sock = sock
        self.address = _format_sockaddr(sock.getsockname())
        tls = " (TLS)" if self.ssl_context is not None else ""
        log.info("%s: listening on %s%s", self.name, self.address, tls)
        for text in self.warnings:
            log.warning("Warning: %s", text)
        self._acceptor.start(self.hub.loop, sock)

    def close(self) -> None:
        """Stop listening and close every session. Never raises."""
        if self._closed:
            return
        self._closed = True
        self._acceptor.close()
        self._cancel_timer()
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        wrapping, self._wrapping = self._wrapping, set()
        for task in wrapping:
            task.cancel()
        admitting, self._admitting = self._admitting, set()
        for proto in admitting:
            if proto.admission is not None:
                proto.admission.cancel()  # the hub stops: not a refused password
            if proto.transport is not None:
                proto.transport.abort()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        now = self.hub.loop.time()
        for s in list(self.sessions.sessions):
            self._drop_session(s, now, "hub stopping")
        self.connected = False
        if self.address:
            gate = self.gate
            refused = sum(n for v, n in gate.counts.items() if v is not Verdict.ADMIT)
            summary = f": {gate.summary()}" if refused or gate.handshake_failures else ""
            log.info("%s: stopped listening on %s%s", self.name, self.address, summary)

    # ---- accepting ----------------------------------------------------------------

    def _has_room(self) -> bool:
        return not self.gate.limit.full  # --max-connections: the rest waits in the backlog

    def _on_connection(self, conn: socket.socket, addr: Any) -> None:
        """A new connection: refuse it, or wrap it in a transport (TLS: handshake)."""
        loop = self.hub.loop
        peer = _format_sockaddr(addr)
        host = str(addr[0]) if isinstance(addr, tuple) else str(addr)
        verdict, ticket = self.gate.admit(host, loop.time())
        if ticket is None:
            _refuse(conn)
            text = self.gate.refusal_text(verdict, peer, loop.time())
            if text is None:
                self._arm_flush()
            else:
                log.warning("%s: %s", self.name, text, extra=SELF_LIMITED)
            return
        proto = _SessionProtocol(self, peer, ticket)
        task = loop.create_task(self._wrap(proto, conn))
        self._wrapping.add(task)
        task.add_done_callback(self._wrapping.discard)

    async def _wrap(self, proto: _SessionProtocol, conn: socket.socket) -> None:
        """Make a transport of an accepted connection (TLS: the handshake)."""
        tls = _netsec.accept_tls_args(self.ssl_context, self.policy)
        try:
            conn.setblocking(False)
            await self.hub.loop.connect_accepted_socket(lambda: proto, sock=conn, **tls)
        except OSError as exc:  # ssl.SSLError, a reset, the handshake timeout
            conn.close()
            proto.ticket.release()
            if self._closed:
                return
            if self.ssl_context is None:
                log.debug("%s: connection from %s failed: %s", self.name, proto.peer, exc)
                return
            text = self.gate.handshake_failed(proto.peer, exc, self.hub.loop.time())
            if text is None:
                self._arm_flush()
            else:
                log.warning("%s: %s", self.name, text, extra=SELF_LIMITED)
        except BaseException:  # cancelled by close(), or a bug: nothing may leak
            conn.close()
            proto.ticket.release()
            raise

    def _arm_flush(self) -> None:
        if self._flush_timer is None and not self._closed:
            self._flush_timer = self.hub.loop.call_later(self.gate.log.interval_s, self._flush)

    def _flush(self) -> None:
        """Log what the log limiters left out."""
        self._flush_timer = None
        now = self.hub.loop.time()
        for line in self.gate.flush(now):
            log.warning("%s: %s", self.name, line, extra=SELF_LIMITED)
        for host, n in self._refusals.flush(now):
            log.info(
                "%s: %d more clients from %s refused (--max-clients) in the last %g s",
                self.name,
                n,
                host,
                self._refusals.interval_s,
            )
        if self.gate.log.pending or self._refusals.pending:
            self._arm_flush()

    def write_data(self, data: bytes, src: int) -> None:
        """Fan data written to the port out to the sessions (see --slow-client)."""
        if not data:
            return
        if self.write_limit == 0:
            self.lose(len(data), Drop.DISCARDED)
            return
        sessions = self.sessions
        if not sessions.sessions:
            unheard = sessions.unheard
            sessions.send(data, self.hub.loop.time())  # the --buffer backlog keeps what it can
            self.discard_unheard(sessions.unheard - unheard)
            self.bytes_out += len(data) - (sessions.unheard - unheard)
            return
        self.bytes_out += len(data)
        if self.has_filters:
            msgs = [LineData(data)]
            for s in self.sessions.fan_out(data):
                s.chain.write(msgs, src, s.handle.data_to_session)
            return
        lossless = self._block and src in self.fc_sources
        dropped = sessions.send(data, self.hub.loop.time(), lossless)
        if dropped:
            self.lose(dropped, Drop.SLOW_CLIENT)
        if self._block:
            self.set_write_paused(self.sessions.blocking)

    def send_data(self, data: bytes) -> None:
        self.write_data(data, -1)

    def write(self, msg: Message, src: int) -> None:
        """Count CONNECT and XOFF/XON for the port; a signal also goes to every
        session's filters (which turn it into RFC 2217 notifications, ...)."""
        super().write(msg, src)
        if self.has_filters and type(msg) is not LineData:
            self._sticky.note(msg, src)
            msgs = [msg]
            for s in self.sessions.sessions:
                s.chain.write(msgs, src)

    def queued_bytes(self) -> int:
        """The longest session queue."""
        return self.sessions.max_queued()

    def pause_reading(self) -> None:
        for s in self.sessions.sessions:
            transport = s.handle.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()

    def resume_reading(self) -> None:
        held, self._held = self._held, []
        for session, chunk in held:
            if session is None:
                self.emit_data(chunk)
            else:
                session.chain.received([LineData(chunk)])
        if self.xoff_count:
            return  # an XOFF came back while handing the held data on
        for s in self.sessions.sessions:
            transport = s.handle.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()

    def write_signal(self, msg: Message) -> None:
        """Raw TCP carries no signals: baud rates, pins and the like are ignored."""

    # ---- sessions ----------------------------------------------------------------

    def _check_password(self, proto: _SessionProtocol) -> None:
        """--password-file: the connection becomes a session once it sent the password."""
        secret = self.policy.password
        assert secret is not None and proto.transport is not None
        if self._closed:
            proto.transport.abort()
            return
        self._admitting.add(proto)
        proto.admission = Admission(
            self.hub.loop,
            proto.transport,
            secret,
            self.policy.password_timeout_s,
            lambda rest: self._password_ok(proto, rest),
            lambda reason: self._password_failed(proto, reason),
        )

    def _password_ok(self, proto: _SessionProtocol, rest: bytes) -> None:
        self._admitting.discard(proto)
        proto.admission = None
        log.debug("%s: %s sent the right password", self.name, proto.peer)
        self._accepted(proto)
        if rest and proto.session is not None:
            self._session_data(proto.session, rest)

    def _password_failed(self, proto: _SessionProtocol, reason: str) -> None:
        text = self.gate.password_failed(proto.peer, reason, self.hub.loop.time())
        if text is None:
            self._arm_flush()
        else:
            log.warning("%s: %s", self.name, text, extra=SELF_LIMITED)

    def _accepted(self, proto: _SessionProtocol) -> None:
        transport = proto.transport
        assert transport is not None
        peer = proto.peer
        if self._closed:
            transport.abort()
            return
        now = self.hub.loop.time()
        admitted, kick = self.sessions.admit()
        if not admitted:
            transport.close()
            left_out = self._refusals.note(_host_of(peer), now)
            if left_out is None:
                self._arm_flush()
                return
            more = f" (and {left_out} more in the last {self._refusals.interval_s:g} s)" if left_out else ""
            log.info(
                "%s: refused a client from %s: %d clients is the maximum (--max-clients)%s",
                self.name,
                peer,
                len(self.sessions),
                more,
            )
            return
        if kick is not None:
            self._drop_session(kick, now, "kicked for a new client", replaced=True)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                self.keepalive.apply(sock, self.sndbuf)
            except OSError as exc:
                log.debug("%s: cannot set socket options: %s", self.name, exc)
        # Our own queue holds the backlog (shared chunks, frame-aware drops): the
        # transport only holds what the socket did not take of one write.
        hold_nothing(transport)
        if self.xoff_count:
            transport.pause_reading()  # type: ignore[attr-defined]
        write, writelines = transport.write, transport.writelines  # type: ignore[attr-defined]
        closing = transport.is_closing

        def sink(data: Chunk) -> None:
            # A transport the peer reset is closed before connection_lost reaches
            # us, and uvloop raises on a write then: the data is for nobody.
            if not closing():
                write(data)

        def sink_many(chunks: list[Chunk]) -> None:
            if not closing():
                writelines(chunks)

        session = Session(self._next_id, peer, sink, now, handle=proto, sink_many=sink_many)
        self._next_id += 1
        proto.session = session
        if self.has_filters:
            self._open_chain(proto, session, now)
        else:
            self.sessions.add(session, now)
        log.info("%s: client %d connected from %s (%d now)", self.name, session.id, peer, len(self.sessions))
        self.set_connected(True)
        self._schedule_check()
        if self._block:
            self.set_write_paused(self.sessions.blocking)

    def _open_chain(self, proto: _SessionProtocol, session: Session, now: float) -> None:
        """Give a new session its own filters: started, told of the connection and of
        the port's current state, then fed what the buffer kept."""
        chain = self.hub.session_chain(
            self.index, f"{self.name}#{session.id}", proto.to_session, proto.from_session, proto.observes
        )
        assert chain is not None
        session.chain = chain
        kept: list[bytes] = []
        self.sessions.add(session, now, backlog_to=kept.extend)
        chain.start()
        chain.received([Connect(True)])
        for src, msgs in self._sticky.replay().items():
            chain.write(msgs, src)
        if self.xoff_count:
            chain.write([FlowControl(True)] * self.xoff_count, self.index)
        if kept:
            chain.write([LineData(c) for c in kept], self.index, proto.data_to_session)

    def _session_data(self, session: Session, data: bytes) -> None:
        chain = session.chain
        if chain is None and not self.sessions.received(session, len(data), self.hub.loop.time()):
            return
        if self.xoff_count:
            # uvloop may deliver data after pause_reading(); hand it on at XON.
            self._held.append((session if chain is not None else None, data))
            transport = session.handle.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
            return
        if chain is None:
            self.emit_data(data, session.id)
        else:
            chain.received([LineData(data)])

    def _from_session(self, proto: _SessionProtocol, session: Session, msgs: list[Message]) -> None:
        """What a session's filters pass on: its data by --recv-from, its requests by
        --control; CONNECT is the port's own (first session in, last one out)."""
        now = self.hub.loop.time()
        sessions = self.sessions
        out: list[Message] = []
        nbytes = 0
        for m in msgs:
            kind = type(m)
            if kind is LineData:
                n = len(m.data)  # type: ignore[union-attr]
                if sessions.received(session, n, now):
                    out.append(m)
                    nbytes += n
            elif kind is Connect:
                continue
            elif kind is FlowControl and not m.xoff:  # type: ignore[union-attr]
                if proto.xoff:  # only the XONs of XOFFs that went through
                    proto.xoff -= 1
                    out.append(m)
            elif self._may_apply(proto, session, now):
                if kind is FlowControl:
                    proto.xoff += 1
                out.append(m)
        if out:
            self.bytes_in += nbytes
            self.emit(out, session.id)

    def _may_apply(self, proto: _SessionProtocol, session: Session, now: float) -> bool:
        """May a request of `session` change the port (--control)? After the session
        ended: whether it could when it ended."""
        return self.sessions.control(session, now) if session.alive else proto.controlled

    def _data_to_session(self, session: Session, msg: Message, src: int) -> None:
        if type(msg) is not LineData:
            return  # raw TCP carries no signals
        lossless = self._block and src in self.fc_sources
        dropped = self.sessions.send_one(session, msg.data, self.hub.loop.time(), lossless)  # type: ignore[union-attr]
        if dropped:
            self.lose(dropped, Drop.SLOW_CLIENT)
        if self._block:
            self.set_write_paused(self.sessions.blocking)

    def _control_to_session(self, session: Session, data: bytes) -> None:
        dropped = self.sessions.send_control(session, data, self.hub.loop.time())
        if dropped:
            self.lose(dropped, Drop.SLOW_CLIENT)
        if self._block:
            self.set_write_paused(self.sessions.blocking)

    def _session_writable(self, session: Session) -> None:
        self.sessions.resume(session)
        if self._block:
            self.set_write_paused(self.sessions.blocking)

    def _session_lost(self, session: Session, exc: Exception | None) -> None:
        if session not in self.sessions.sessions:
            return  # we closed it ourselves and said so
        reason = f"connection lost: {exc}" if exc is not None else ""
        self._forget(session, self.hub.loop.time(), reason)

    def _drop_session(self, session: Session, now: float, reason: str, replaced: bool = False) -> None:
        """Close a session from our side (kick, timeout, shutdown).

        `replaced`: a new session takes its place at once (the port stays connected).
        """
        proto: _SessionProtocol = session.handle
        self._forget(session, now, reason, replaced)
        transport = proto.transport
        if transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size():
                transport.abort()  # a stalled peer would keep a graceful close open
            else:
                transport.close()

    def _forget(self, session: Session, now: float, reason: str, replaced: bool = False) -> None:
        proto: _SessionProtocol = session.handle
        if session.chain is not None:
            proto.controlled = self.sessions.may_control(session, now)
        lost = self.sessions.remove(session, now)
        if lost:
            self.lose(lost, Drop.UNSENT)
        if session.chain is not None:
            self._close_chain(proto, session)
        why = f" ({reason})" if reason else ""
        log.info(
            "%s: client %d (%s) disconnected after %.1f s%s: %s",
            self.name,
            session.id,
            session.peer,
            now - session.connected_at,
            why,
            session.counters(),
        )
        if self._block:
            self.set_write_paused(self.sessions.blocking)
        if not self.sessions.sessions:
            self._cancel_timer()
            if not (self._closed or replaced):
                self.set_connected(False)

    def _close_chain(self, proto: _SessionProtocol, session: Session) -> None:
        """End a session's filters: they hear of the disconnect (the lines its peer drove
        drop, if it could change them), then the XOFFs it left are released."""
        session.chain.received([Connect(False)])

        def release() -> None:
            if proto.xoff:
                xon, proto.xoff = [FlowControl(False)] * proto.xoff, 0
                self.emit(xon)

        session.chain.close_after(release)

    # ---- timeouts ------------------------------------------------------------------

    def _schedule_check(self) -> None:
        interval = self.sessions.next_check_s()
        if interval is not None and self._timer is None and not self._closed:
            self._timer = self.hub.loop.call_later(interval, self._check)

    def _check(self) -> None:
        self._timer = None
        now = self.hub.loop.time()
        for session, reason in self.sessions.expired(now):
            self._drop_session(session, now, reason)
        if self.sessions.sessions:
            self._schedule_check()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# ---- the driver -----------------------------------------------------------------


class TcpMultiDriver(Driver):
    """Creates TcpMultiPorts from the sticky options."""

    NAME = "tcp-multi"
    DESCRIPTION = "TCP listener: many clients on one port, each with its own queue"
    USAGE = USAGE
    DEFAULTS = {
        "--interface": None,
        "--max-clients": 0,
        "--kick-oldest": False,
        "--recv-from": Policy.ALL,
        "--send-to": Policy.ALL,
        "--control": Control.WRITER,
        "--read-only": False,
        "--active-hold": 1000,
        "--slow-client": SlowClient.DROP,
        "--send-timeout": None,
        "--frame": Frame.BYTES,
        **_netopts.DEFAULTS,
        "--buffer": 0,
        "--sndbuf": 0,
        "--write-limit": DEFAULT_WRITE_LIMIT,
        **_netsec.DEFAULTS,
        **_password.DEFAULTS,
    }

    def __init__(self, hub: HubLink):
        super().__init__(hub)
        self._contexts = TlsContexts()

    def config_arg(self, arg: str) -> bool:
        if not super().config_arg(arg):
            return False
        if self.options.pop("--no-kick-oldest", False):
            self.options["--kick-oldest"] = False
        if self.options.pop("--read-write", False):
            self.options["--read-only"] = False
        return True

    def convert_option(self, name: str, value: Any) -> Any:
        conv = _CONVERTERS.get(name) or _netsec.CONVERTERS.get(name) or _password.CONVERTERS.get(name)
        return value if conv is None else conv(value)

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> TcpMultiPort:
        """Create the port for `path`.

        Raises UsageError for a bad address, TLS files that do not load, or TLS
        options that cannot work together.
        """
        host, port = parse_listen_address(path)
        opt = {**self.DEFAULTS, **options}
        interface = host if host is not None else opt["--interface"]
        warnings = []
        tls = TlsSettings.from_options(opt)
        if tls is None:
            _netsec.check_disabled(opt, path)
            context = None
        else:
            context = self._contexts.get(tls, server_side=True)
            key_warning = self._contexts.key_warning(tls)
            if key_warning is not None:
                warnings.append(key_warning)
        policy = ListenerPolicy.from_options(opt)
        exposure = _netsec.exposure_warning(f"TCPM({index})", port, interface, policy)
        if exposure is not None:
            warnings.append(exposure)
        if policy.password is not None:
            warnings += _password.warnings(f"TCPM({index})", policy.password, interface, tls is not None)
        slow: SlowClient = opt["--slow-client"]
        send_timeout = opt["--send-timeout"]
        if send_timeout is None:
            send_timeout = 5000 if slow is SlowClient.DISCONNECT else 0
        config = SessionConfig(
            recv_from=opt["--recv-from"],
            send_to=opt["--send-to"],
            slow=slow,
            frame=opt["--frame"],
            limit=opt["--write-limit"],
            max_clients=opt["--max-clients"],
            kick_oldest=bool(opt["--kick-oldest"]),
            send_timeout_s=send_timeout / 1000,
            idle_timeout_s=opt["--idle-timeout"],
            hold_s=opt["--active-hold"] / 1000,
            buffer=opt["--buffer"],
            control=opt["--control"],
            read_only=bool(opt["--read-only"]),
        )
        return TcpMultiPort(
            self.hub,
            index,
            interface,
            port,
            config,
            keepalive=Keepalive.from_options(opt),
            sndbuf=opt["--sndbuf"],
            write_limit=opt["--write-limit"],
            policy=policy,
            ssl_context=context,
            warnings=warnings,
        )
