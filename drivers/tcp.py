"""The tcp driver: TCP clients and listeners as hub ports (hub4com spec 3.2).

A port path is a client address ``[*]<host>:<port>`` or a listener address
``[*][!][/]<port>[/<priority>]``; whether it contains ``:`` decides which.

Clients connect when the port is permanent (``*``) or somebody asked for a
connection (the connection counter went above 0), and reconnect by the
``--reconnect`` policy. Listener ports with the same (interface, port) share one
listening socket; each accepted connection goes to one idle port, chosen by
priority, then command-line order. While no port is idle nothing is accepted:
the connection waits in the kernel's backlog (deferred accept).

Differences from hub4com, on purpose (spec 6.4 item 9, section 7.4):

* IPv6: ``[::1]:7000`` for clients, ``--interface=::1`` for both kinds; the
  default listening address is ``::`` dual-stack (``0.0.0.0`` where there is
  no IPv6).
* Host names are resolved without blocking, again on each reconnect, and a
  client tries each address the name resolves to, in order.
* Listeners set SO_REUSEADDR. ``--reconnect`` is case-insensitive.
* A client that keeps failing to connect does not spin: after a failed
  attempt the delay is at least 0.1 s, doubling per failure up to 2 s. The first
  reconnect after an established connection ends uses the configured delay.
* A half-close (the counter fell to 0) waits at most ``HALF_CLOSE_TIMEOUT_S``
  (0.25 s) for the peer to close, then closes the socket, so a slow peer never
  holds up a new session. A client asked to connect again meanwhile connects
  once the old connection is gone.
* Nothing is lost while connecting: data written to a client that is
  connecting, waiting to reconnect, or half-closed with a new connection
  wanted is held (up to --write-limit; beyond it the sources are paused along
  flow-control routes, else the overflow is lost, counted) and sent in order
  once connected. Held data is lost, counted, only when the connection is no
  longer wanted or will not be retried.
* Data written while a port has no connection and none is wanted (an idle
  listener slot, an on-demand client nobody asked to connect) is counted as
  unheard (status lines), not as lost.

Security (hub4com had none; the mechanisms live in `hub.netsec`):

* TLS (``--tls-cert``, ``--tls-key``, ``--tls-ca``, ``--tls-verify``,
  ``--tls-server-name``, ``--tls-timeout``) for clients and listeners, TLS 1.2
  at least. A listener with ``--tls-ca`` requires client certificates; a
  client checks the server's certificate and host name unless
  ``--tls-verify=none``. A listener runs TLS handshakes before a port takes
  the connection, so a slow or failing handshake never holds a port; a
  connection that completed its handshake waits (not read) for an idle port.
* Listeners check each accepted connection against ``--allow``/``--deny`` and
  ``--max-rate`` first; a refused one is reset at once (SO_LINGER 0), nothing
  it sent is read, and refusals are logged once per address per 10 s.
  ``--max-connections`` bounds the connections held per listening address
  (sessions plus handshakes); beyond it the listener stops accepting and the
  kernel's backlog holds further connections, as while no port is idle.
* A listener on all interfaces (no ``--interface``) with neither an allow
  list nor client certificates logs a warning at start-up.
* ``--read-only`` ports (observers): what the peer sends passes the port's
  filters, so telnet and RFC 2217 negotiate and answer it (an observer's
  requests are answered with the port's current values), and is then
  discarded: no data and no request (DTR, RTS, BREAK, baud, line control,
  flow control) reaches the hub. CONNECT and its end are still reported, and
  the port's own XOFF/XON (its write queue) still works.
* Data that arrives while reading is paused is held up to a bound; a peer
  that goes past it (a transport that does not pause) is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import ipaddress
import logging
import os
import re
import socket
import ssl
import struct
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeVar

from hub import netsec as _netsec
from hub import password as _password
from hub.accept import Acceptor
from hub.errors import PortError, UsageError
from hub.logs import SELF_LIMITED, peer_text
from hub.messages import Connect, FlowControl, LineData, Message
from hub.netsec import Gate, ListenerPolicy, Ticket, TlsContexts, TlsSettings, Verdict
from hub.password import Admission, Secret
from hub.port import DEFAULT_WRITE_LIMIT, Driver, Drop, HubLink, Port, PortState, parse_write_limit

from . import _netopts
from ._netopts import IdleTimer, Keepalive
from ._sessions import Frame, IdleBuffer, parse_buffer, parse_frame

__all__ = [
    "USAGE",
    "Listen",
    "Reconnect",
    "State",
    "TcpAddress",
    "TcpDriver",
    "TcpPort",
    "parse_address",
    "parse_interface",
    "parse_listen",
    "parse_reconnect",
    "port_number",
]

log = logging.getLogger(__name__)

_V = TypeVar("_V")

USAGE = f"""\
Usage: tcp [options]

Port paths:
  [*]<host>:<port>              A client connecting to <host>: an IPv4 address, a
                                host name or an [IPv6 address]. <port> is a number
                                or a service name such as telnet.
  [*][!][/]<port>[/<priority>]  A listener on <port>. Listeners on the same port
                                and interface share one socket; a connection goes
                                to the idle one with the highest <priority>
                                (an integer, default 0), then the first given.
  *   permanent: a client connects at start and reconnects; no port is
      disconnected when its connection counter falls to 0.
  !   listener: refuse connections while the connection counter is 0.
  /   listener: after a session, stay busy until the connection counter is 0.

Options:
  --interface=<if>    Local address: the source address of clients, the address
                      listeners listen on. An IPv4 or IPv6 address or a host
                      name. Default: all interfaces.
  --reconnect=<t>     When a client reconnects after its connection ends or
                      fails: d[efault], n[o] or a delay in milliseconds
                      (case-insensitive). Default: d, which is 0 ms for
                      permanent clients and no for the others. After failed
                      attempts the delay is at least 0.1 s, doubling up to 2 s.
  --write-limit=<s>   Size of the write queue in bytes; 0 discards everything
                      written to the port. Default: {DEFAULT_WRITE_LIMIT}.
  --read-only         The following ports only send: what their peer sends is
                      discarded after the port's filters, so telnet and RFC
                      2217 still negotiate (requests are answered with the
                      port's current values), but neither data nor control
                      requests (DTR, RTS, BREAK, baud) reach the hub.
                      Connects and disconnects are still reported. For
                      observer ports.
  --read-write        Undo --read-only for the following ports (the default).
  --buffer=<bytes>    Keep up to <bytes> of the data written to a port while it
                      has no connection (an idle listener, a client nobody
                      asked to connect) and send it to the next connection
                      first; what does not fit is unheard. Default 0: off.
  --listen=<when>     Listeners: a[lways] (the default) or o[n-demand]: the
                      listening socket is open only while the port's
                      connection counter is above 0, for example while an
                      application holds a pty routed to the port; otherwise
                      connecting is refused by the system.
  --frame=<f>         b[ytes] or l[ine]. line: a connection that begins while
                      the port's data is mid-line starts at the next line,
                      and --buffer keeps whole lines only (lines end with
                      LF: NMEA's CR LF and plain LF alike). Default bytes.
{_netopts.KEEPALIVE_USAGE}{_netsec.TLS_USAGE}{_netsec.LISTENER_USAGE}{_password.PASSWORD_USAGE}
A listener without --interface listens on every interface, as hub4com does,
and warns at start-up unless --allow or TLS with --tls-ca restricts who gets
in; --interface=127.0.0.1 keeps it local (an explicit --interface=0.0.0.0
says every interface is meant).

A client port holds what is written to it while it connects, waits to
reconnect, or is half-closed with a new connection wanted (up to
--write-limit), and sends it once connected. When its connection counter
falls to 0 a port shuts down its sending side and waits at most 0.25 s for
the peer to close, then closes the socket. Data written while a port has no
connection and none is wanted (an idle listener, a client nobody asked to
connect) is counted as unheard in status lines, not as lost.
"""

#: After a failed connect attempt: least delay, doubled per failure up to the max.
_RETRY_MIN_S = 0.1
_RETRY_MAX_S = 2.0
#: Retry delay for a listener whose interface name did not resolve or bind.
_LISTEN_RETRY_S = 5.0
#: Errors that make the default listener fall back from "::" to "0.0.0.0".
_NO_IPV6_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})
#: SO_LINGER on, 0 s: close() sends RST (refusing a connection).
_LINGER_RESET = struct.pack("ii", 1, 0)
#: How long a half-close waits for the peer to close before the socket is closed.
HALF_CLOSE_TIMEOUT_S = 0.25
#: Data a connection may deliver while its reading is paused (a transport pauses
#: after at most a read or two); past it the connection is dropped.
_HELD_MAX_BYTES = 1024 * 1024

_NUMBER_RE = re.compile(r"[0-9]+\Z")
_PRIORITY_RE = re.compile(r"[+-]?[0-9]+\Z")
_NUMERIC_HOST_RE = re.compile(r"[0-9.]+\Z")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")


# ---- addresses and option values ---------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpAddress:
    """A parsed port path. `host` is None for a listener."""

    host: str | None
    port: int
    #: ``*``: connect at start and keep connected; never disconnect on counter 0.
    permanent: bool = False
    #: ``!``: a listener refuses connections while its connection counter is 0.
    reject: bool = False
    #: ``/`` prefix: a listener stays busy after a session until its counter is 0.
    busy_until_zero: bool = False
    #: ``/<priority>`` suffix of a listener.
    priority: int = 0

    @property
    def is_client(self) -> bool:
        return self.host is not None

    def __str__(self) -> str:
        if self.host is None:
            return str(self.port)
        return format_hostport(self.host, self.port)


def format_hostport(host: str, port: int) -> str:
    """``host:port``, with IPv6 addresses in brackets and v4-mapped ones unmapped."""
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _format_sockaddr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return format_hostport(str(addr[0]), int(addr[1]))
    return str(addr)


def _tls_note(transport: asyncio.BaseTransport) -> str:
    """ " (TLSv1.3, peer CN)" for a TLS transport, "" for plain TCP."""
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return ""
    version = sslobj.version() or "TLS"
    cert = transport.get_extra_info("peercert") or {}
    names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    # The name is the peer's (its CA vouches for it, not for what it contains).
    return f" ({version}, peer {peer_text(names[0])})" if names else f" ({version})"


def _reason(exc: BaseException) -> str:
    """Plain words for a socket or TLS error ("Connection refused", "certificate verify failed: ...")."""
    if isinstance(exc, ssl.SSLError):
        return _netsec.tls_reason(exc)
    if isinstance(exc, OSError):
        if isinstance(exc, socket.gaierror) and exc.strerror:
            return exc.strerror
        if isinstance(exc.errno, int) and exc.errno > 0:
            return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def port_number(text: str, path: str, minimum: int, protocol: str = "tcp") -> int:
    """A port in `path`: a decimal number from `minimum` to 65535 or a `protocol` service name.

    Raises UsageError(path, "Invalid address: ...") saying which.
    """
    if _NUMBER_RE.match(text):
        number = int(text)
        if not minimum <= number <= 65535:
            raise UsageError(path, f"Invalid address: port {number} is out of range ({minimum} to 65535)")
        return number
    if not text:
        raise UsageError(path, "Invalid address: no port number")
    try:
        return socket.getservbyname(text, protocol)
    except OSError:
        raise UsageError(path, f"Invalid address: {text!r} is not a port number or service name") from None


def _valid_host(host: str) -> bool:
    """An IPv4 address or a syntactically valid host name."""
    if _NUMERIC_HOST_RE.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    return bool(_HOSTNAME_RE.match(host))


def parse_address(path: str) -> TcpAddress:
    """Parse a tcp port path (spec 3.2). Syntax only: host names are not resolved.

    Returns the TcpAddress. Raises UsageError(path, "Invalid address") or
    UsageError(path, "Invalid priority").
    """
    rest = path.lstrip("*!/")
    prefixes = path[: len(path) - len(rest)]
    flags = {
        "permanent": "*" in prefixes,
        "reject": "!" in prefixes,
        "busy_until_zero": "/" in prefixes,
    }
    if ":" in rest:
        if rest.startswith("["):
            host, sep, port_text = rest[1:].partition("]")
            if not sep or not port_text.startswith(":"):
                raise UsageError(path, "Invalid address")
            port_text = port_text[1:]
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise UsageError(path, "Invalid address") from None
        else:
            host, _, port_text = rest.partition(":")
            if not _valid_host(host):
                raise UsageError(path, "Invalid address")
        return TcpAddress(host, port_number(port_text, path, 1), **flags)
    port_text, sep, priority_text = rest.partition("/")
    number = port_number(port_text, path, 0)
    priority = 0
    if sep:
        if not _PRIORITY_RE.match(priority_text):
            raise UsageError(path, "Invalid priority")
        priority = int(priority_text)
    return TcpAddress(None, number, priority=priority, **flags)


class Listen(enum.Enum):
    """The values of --listen."""

    #: The listening socket is open from start to close (hub4com's way).
    ALWAYS = "always"
    #: Open only while the port's connection counter is above 0.
    ON_DEMAND = "on-demand"


def parse_listen(text: str) -> Listen:
    """--listen: a[lways] or o[n-demand] (any prefix, any case). Raises UsageError."""
    t = text.strip().lower()
    for word in Listen:
        if t and word.value.startswith(t):
            return word
    raise UsageError(None, "Invalid --listen value (always or on-demand)")


class Reconnect(enum.Enum):
    """The word values of --reconnect (a number of ms is kept as an int)."""

    #: 0 ms for permanent clients, NO for the others.
    DEFAULT = "default"
    #: Never reconnect.
    NO = "no"


def parse_reconnect(text: str) -> Reconnect | int:
    """--reconnect: d[efault], n[o] (any prefix, any case) or milliseconds. Raises UsageError."""
    t = text.strip().lower()
    if _NUMBER_RE.match(t):
        return int(t)
    for word in Reconnect:
        if t and word.value.startswith(t):
            return word
    raise UsageError(None, "Invalid reconnect time")


def parse_interface(text: str) -> str | None:
    """--interface: an IP address (normalised) or a host name (lower case); '' means all.

    Raises UsageError.
    """
    t = text.strip()
    if not t:
        return None
    bracketed = t.startswith("[") and t.endswith("]")
    if bracketed:
        t = t[1:-1]
    try:
        addr = ipaddress.ip_address(t)
    except ValueError:
        if bracketed or not _valid_host(t):
            raise UsageError(None, "Invalid interface") from None
        return t.lower()
    if bracketed and addr.version != 6:
        raise UsageError(None, "Invalid interface")
    return str(addr)


def _is_numeric_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# ---- the shared listening socket ---------------------------------------------


def _listening_socket(family: int, sockaddr: Any, dual_stack: bool) -> socket.socket:
    """A bound, listening, non-blocking socket. Raises OSError (nothing leaks)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _refuse(conn: socket.socket) -> None:
    """Close an accepted connection with a reset (Linux cannot refuse before accept)."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError as exc:
        log.debug("cannot set SO_LINGER on a refused connection: %s", exc)
    conn.close()


class _Listener:
    """One listening socket shared by every listener port on one (interface, port).

    Watches the socket only while some port is idle and the connection limit
    has room; then accepts one connection per idle port, best port first.
    Every accepted connection passes the gate (--allow/--deny, --max-rate)
    first. Without TLS it goes straight to the best idle port; with TLS it is
    handshaken here first and handed to the best idle port once established
    (it waits, not read, while no port is idle). `!` ports refuse while their
    counter is 0.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interface: str | None,
        port: int,
        policy: ListenerPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.loop = loop
        self.interface = interface
        self.port = port
        self.sock: socket.socket | None = None
        self.ports: list[TcpPort] = []
        self._idle: list[TcpPort] = []
        self._retry: asyncio.TimerHandle | None = None  # opening by name failed: try again
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.policy = policy or _NO_POLICY
        self.ssl_context = ssl_context
        self.gate = Gate(self.policy, ports=0)
        self._acceptor = Acceptor(lambda: self.label, self._has_room, self._accepted)
        self.gate.limit.on_release = lambda: self._acceptor.watch()
        #: TLS connections in their handshake, and established ones waiting for a port.
        self._handshakes: dict[_TcpProtocol, asyncio.Task[None]] = {}
        self._ready: deque[_TcpProtocol] = deque()
        #: Connections checking their password (--password-file).
        self._admitting: set[_TcpProtocol] = set()
        self._flush_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        where = self.address or f"{self.interface or '*'} port {self.port}"
        return (
            f"<_Listener {where} ports={len(self.ports)} idle={len(self._idle)} "
            f"handshakes={len(self._handshakes)} waiting={len(self._ready)} {self.gate.limit!r}>"
        )

    @property
    def address(self) -> str | None:
        """The bound address as host:port, or None while not listening."""
        if self.sock is None:
            return None
        return _format_sockaddr(self.sock.getsockname())

    @property
    def label(self) -> str:
        return f"Listener {self.address or format_hostport(self.interface or '*', self.port)}"

    # ---- opening ----------------------------------------------------------

    def open(self, owner: str, listen: bool = True) -> None:
        """Listen now (numeric or default interface) or start resolving a name.

        With `listen` false (--listen=on-demand and no connection wanted yet)
        a numeric address is only bound and released, so a bad one still
        fails at start-up. Raises PortError naming `owner` if a numeric
        address cannot be bound.
        """
        if self.interface is not None and not _is_numeric_host(self.interface):
            if listen:
                self._task = self.loop.create_task(self._open_by_name())
            return
        try:
            self.sock = self._bind_numeric()
        except OSError as exc:
            where = format_hostport(self.interface or "*", self.port)
            raise PortError(owner, exc.errno, f"Cannot listen on {where}: {_reason(exc)}") from exc
        if self.port == 0:  # keep the port the system picked for later openings
            self.port = self.sock.getsockname()[1]
        if listen:
            self._listening()
            return
        self.sock.close()
        self.sock = None

    def _bind_numeric(self) -> socket.socket:
        if self.interface is None:
            return self._open_any()
        flags = socket.AI_NUMERICHOST | socket.AI_PASSIVE
        family, _, _, _, sockaddr = socket.getaddrinfo(
            self.interface, self.port, type=socket.SOCK_STREAM, flags=flags
        )[0]
        return _listening_socket(family, sockaddr, self.interface == "::")

    def update(self) -> None:
        """--listen=on-demand: listen while some port wants connections, else close the socket."""
        if self._closed:
            return
        wanted = any(p.wants_listening for p in self.ports)
        if wanted and self.sock is None and self._task is None and self._retry is None:
            self._reopen()
        elif not wanted and self.sock is not None:
            log.info("Stopped listening on %s until a connection is wanted (--listen)", self.address)
            self._acceptor.close()
            self._acceptor = Acceptor(lambda: self.label, self._has_room, self._accepted)
            self.sock.close()
            self.sock = None

    def _reopen(self) -> None:
        if self.interface is not None and not _is_numeric_host(self.interface):
            self._task = self.loop.create_task(self._open_by_name())
            return
        try:
            self.sock = self._bind_numeric()
        except OSError as exc:
            log.error(
                "Cannot listen on %s: %s; retrying in %g s",
                format_hostport(self.interface or "*", self.port),
                _reason(exc),
                _LISTEN_RETRY_S,
            )
            self._retry = self.loop.call_later(_LISTEN_RETRY_S, self._retry_open)
            return
        self._listening()

    def _open_any(self) -> socket.socket:
        """Listen on all interfaces: "::" dual-stack, or "0.0.0.0" without IPv6."""
        if socket.has_ipv6:
            try:
                return _listening_socket(socket.AF_INET6, ("::", self.port), True)
            except OSError as exc:
                if exc.errno not in _NO_IPV6_ERRNOS:
                    raise
        return _listening_socket(socket.AF_INET, ("0.0.0.0", self.port), False)

    async def _open_by_name(self) -> None:
        assert self.interface is not None
        try:
            infos = await self.loop.getaddrinfo(
                self.interface, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, _, _, _, sockaddr = infos[0]
            sock = _listening_socket(family, sockaddr, False)
        except OSError as exc:
            log.error(
                "Cannot listen on %s: %s; retrying in %g s",
                format_hostport(self.interface, self.port),
                _reason(exc),
                _LISTEN_RETRY_S,
            )
            if not self._closed:
                self._retry = self.loop.call_later(_LISTEN_RETRY_S, self._retry_open)
            return
        finally:
            self._task = None
        if self._closed:
            sock.close()
            return
        self.sock = sock
        self._listening()
        self.update()  # no longer wanted meanwhile (--listen=on-demand)

    def _retry_open(self) -> None:
        self._retry = None
        if not self._closed and any(p.wants_listening for p in self.ports):
            self._reopen()

    def _listening(self) -> None:
        tls = ""
        if self.ssl_context is not None:
            tls = " (TLS, client certificates required)" if self.policy.authenticates else " (TLS)"
        log.info("Listening on %s%s", self.address, tls)
        assert self.sock is not None
        self._acceptor.start(self.loop, self.sock)

    # ---- ports ------------------------------------------------------------

    def attach(self, port: TcpPort) -> None:
        self.ports.append(port)
        self.gate.ports = len(self.ports)
        self.make_idle(port)

    def detach(self, port: TcpPort) -> bool:
        """Forget `port`; close the socket after the last one. Returns True if closed."""
        if port in self.ports:
            self.ports.remove(port)
            self.gate.ports = len(self.ports)
        if port in self._idle:
            self._idle.remove(port)
        if self.ports:
            if not self._idle:
                self._acceptor.unwatch()
            return False
        self.close()
        return True

    def make_idle(self, port: TcpPort) -> None:
        """`port` can take a connection: give it a waiting TLS one, or offer it the backlog."""
        if port not in self._idle:
            self._idle.append(port)
        self._dispatch()
        self._acceptor.watch()

    def _next_port(self) -> TcpPort | None:
        """The idle port to offer the next connection: highest priority, then first given."""
        if not self._idle:
            return None
        return max(self._idle, key=lambda p: (p.address.priority, -p.index))

    # ---- accepting --------------------------------------------------------

    def _has_room(self) -> bool:
        return bool(self._idle) and not self.gate.limit.full

    def _accepted(self, conn: socket.socket, addr: Any) -> None:
        """A new connection (the acceptor made sure a port is idle): admit or refuse it."""
        port = self._next_port()
        assert port is not None
        peer = _format_sockaddr(addr)
        if port.address.reject and port.connection_counter == 0:
            self.gate.refused(Verdict.REFUSED)
            self._refuse(conn, peer, Verdict.REFUSED, port)
            return
        host = str(addr[0]) if isinstance(addr, tuple) else str(addr)
        verdict, ticket = self.gate.admit(host, self.loop.time())
        if ticket is None:
            self._refuse(conn, peer, verdict, port)
            return
        if self.ssl_context is None and self.policy.password is None:
            self._idle.remove(port)
            port._take(conn, peer, ticket)
        else:
            self._handshake(conn, peer, ticket)

    def _refuse(self, conn: socket.socket, peer: str, verdict: Verdict, port: TcpPort) -> None:
        """Reset a refused connection and log it (once per address and interval)."""
        _refuse(conn)
        text = self.gate.refusal_text(verdict, peer, self.loop.time())
        if text is None:
            self._arm_flush()
        elif verdict is Verdict.REFUSED:
            log.info("%s %s", port.name, text)
        else:
            log.warning("%s: %s", self.label, text, extra=SELF_LIMITED)

    # ---- TLS handshakes and passwords, before a port takes a connection ------

    def _handshake(self, conn: socket.socket, peer: str, ticket: Ticket) -> None:
        """Wrap a connection in a transport of the listener's own (TLS: handshake), to
        hand it to a port once it is ready (TLS done, password right)."""
        proto = _TcpProtocol(None, ticket, self)
        proto.peer = peer
        self._handshakes[proto] = self.loop.create_task(self._handshake_task(proto, conn))

    async def _handshake_task(self, proto: _TcpProtocol, conn: socket.socket) -> None:
        tls = _netsec.accept_tls_args(self.ssl_context, self.policy)
        try:
            conn.setblocking(False)
            await self.loop.connect_accepted_socket(lambda: proto, sock=conn, **tls)
        except OSError as exc:  # ssl.SSLError, a reset, the handshake timeout
            conn.close()
            proto.release()
            if self._handshakes.pop(proto, None) is None or self._closed:
                return
            if not tls:
                log.debug("%s: connection from %s failed: %s", self.label, proto.peer, _reason(exc))
                return
            text = self.gate.handshake_failed(proto.peer, exc, self.loop.time())
            if text is None:
                self._arm_flush()
            else:
                log.warning("%s: %s", self.label, text, extra=SELF_LIMITED)
        except BaseException:  # cancelled by close(), or a bug: nothing may leak
            conn.close()
            proto.release()
            self._handshakes.pop(proto, None)
            raise
        else:
            self._handshakes.pop(proto, None)

    def _tls_ready(self, proto: _TcpProtocol, transport: asyncio.Transport) -> None:
        """A handshake completed (from connection_made): check the password, then hand
        the connection to a port or let it wait."""
        self._handshakes.pop(proto, None)
        proto.transport = transport
        if self._closed:
            transport.abort()
            return
        secret = self.policy.password
        if secret is not None:
            self._admitting.add(proto)
            proto.admission = Admission(
                self.loop,
                transport,
                secret,
                self.policy.password_timeout_s,
                lambda rest: self._password_ok(proto, rest),
                lambda reason: self._password_failed(proto, reason),
            )
            return
        self._wait_for_port(proto)

    def _wait_for_port(self, proto: _TcpProtocol) -> None:
        assert proto.transport is not None
        proto.transport.pause_reading()
        self._ready.append(proto)
        self._dispatch()

    def _password_ok(self, proto: _TcpProtocol, rest: bytes) -> None:
        self._admitting.discard(proto)
        proto.admission = None
        log.debug("%s: %s sent the right password", self.label, proto.peer)
        if rest:
            proto.hold(rest)
        self._wait_for_port(proto)

    def _password_failed(self, proto: _TcpProtocol, reason: str) -> None:
        text = self.gate.password_failed(proto.peer, reason, self.loop.time())
        if text is None:
            self._arm_flush()
        else:
            log.warning("%s: %s", self.label, text, extra=SELF_LIMITED)

    def _ready_lost(self, proto: _TcpProtocol) -> None:
        """A connection (TLS, or checking its password) closed before a port took it."""
        self._admitting.discard(proto)
        with contextlib.suppress(ValueError):
            self._ready.remove(proto)

    def _dispatch(self) -> None:
        """Give established TLS connections to idle ports, in order of arrival."""
        while self._ready and self._idle:
            proto = self._ready.popleft()
            port = self._next_port()
            assert port is not None and proto.transport is not None
            if port.address.reject and port.connection_counter == 0:
                self.gate.refused(Verdict.REFUSED)
                text = self.gate.refusal_text(Verdict.REFUSED, proto.peer, self.loop.time())
                if text is not None:
                    log.info("%s %s", port.name, text)
                proto.transport.abort()
                continue
            self._idle.remove(port)
            port._adopt(proto)

    # ---- logging what the limiter left out -----------------------------------

    def _arm_flush(self) -> None:
        if self._flush_timer is None and not self._closed:
            self._flush_timer = self.loop.call_later(self.gate.log.interval_s, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        for line in self.gate.flush(self.loop.time()):
            log.warning("%s: %s", self.label, line, extra=SELF_LIMITED)
        if self.gate.log.pending:
            self._arm_flush()

    def close(self) -> None:
        """Stop listening; drop handshakes and waiting connections. Never raises."""
        self._closed = True
        self._acceptor.close()
        for timer in (self._retry, self._flush_timer):
            if timer is not None:
                timer.cancel()
        self._retry = self._flush_timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        handshakes, self._handshakes = self._handshakes, {}
        for task in handshakes.values():
            task.cancel()
        ready, self._ready = self._ready, deque()
        admitting, self._admitting = self._admitting, set()
        for proto in admitting:
            if proto.admission is not None:
                proto.admission.cancel()  # the hub stops: not a refused password
        for proto in [*ready, *admitting]:
            if proto.transport is not None:
                proto.transport.abort()
        if self.sock is not None:
            gate = self.gate
            if any(n for v, n in gate.counts.items() if v is not Verdict.ADMIT) or gate.handshake_failures:
                log.info("Stopped listening on %s: %s", self.address, gate.summary())
            else:
                log.info("Stopped listening on %s", self.address)
            self.sock.close()
            self.sock = None
        self._idle.clear()


# ---- the port -------------------------------------------------------------------


class State(enum.Enum):
    """Where a TcpPort's connection stands."""

    #: No connection. A client may have a reconnect timer; a listener port is offered.
    IDLE = "idle"
    #: A listener (`/`) after a session: not offered until its counter is 0.
    WAITING = "waiting"
    #: A client resolving and connecting, or an accepted socket being wrapped.
    CONNECTING = "connecting"
    #: The connection is up.
    CONNECTED = "connected"
    #: We shut down our sending side (counter fell to 0); waiting for the peer to close.
    HALF_CLOSED = "half-closed"
    #: close() was called.
    CLOSED = "closed"


#: A port's defaults, one object for all (they are immutable).
_NO_KEEPALIVE = Keepalive()
_NO_POLICY = ListenerPolicy()

#: For the data path: `State.CONNECTED` looks the member up through
#: EnumType.__getattr__ on Python 3.11, ten times slower than a global.
_CONNECTED = State.CONNECTED


class _TcpProtocol(asyncio.Protocol):
    """One connection's callbacks, forwarded to its port (stale ones are ignored there).

    A TLS connection accepted by a listener has no port until its handshake is
    done and a port is idle: meanwhile it belongs to the listener and holds
    (bounded) what arrives. `ticket` is its place under --max-connections,
    released when the connection ends.
    """

    __slots__ = ("admission", "held", "held_bytes", "listener", "peer", "port", "ticket", "transport")

    def __init__(self, port: TcpPort | None, ticket: Ticket | None = None, listener: _Listener | None = None):
        self.port = port
        self.ticket = ticket
        self.listener = listener
        self.peer = ""
        self.transport: asyncio.Transport | None = None
        #: What arrived before a port took the connection (None while nothing did).
        self.held: list[bytes] | None = None
        self.held_bytes = 0
        #: --password-file: the password check, until a port takes the connection.
        self.admission: Admission | None = None

    def hold(self, data: bytes) -> None:
        if self.held is None:
            self.held = []
        self.held.append(data)
        self.held_bytes += len(data)

    def release(self) -> None:
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            ticket.release()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.port is not None:
            self.port._connection_made(self, transport)  # type: ignore[arg-type]
        elif self.listener is not None:
            self.listener._tls_ready(self, transport)  # type: ignore[arg-type]
        else:
            transport.abort()  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        port = self.port
        if port is not None:
            if port._proto is self and not port.xoff_count and port._idle is None:
                port.emit_data(data)  # port._data_received's common case, one call less per chunk
            else:
                port._data_received(self, data)
            return
        if self.admission is not None:
            self.admission.feed(data)  # the password line (ignored once refused)
            return
        # Waiting for a port with reading paused; a transport may still hand over a chunk.
        self.hold(data)
        if self.held_bytes > _HELD_MAX_BYTES and self.transport is not None:
            log.warning("%s kept sending while waiting for a port; disconnected", self.peer)
            self.transport.abort()

    def eof_received(self) -> bool:
        # The peer shut down its side: the session is over (hub4com's FD_CLOSE).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()
        if self.admission is not None:
            self.admission.lost()
            self.admission = None
        if self.port is not None:
            self.port._connection_lost(self, exc)
        elif self.listener is not None:
            self.listener._ready_lost(self)

    def pause_writing(self) -> None:
        if self.port is not None and self.port._proto is self:
            self.port.set_write_paused(True)

    def resume_writing(self) -> None:
        if self.port is not None and self.port._proto is self:
            self.port.set_write_paused(False)


class TcpPort(Port):
    """A TCP client or listener port, named ``TCP(<index>)``."""

    #: The transport's (and the pending list's) high-water mark pauses the port.
    reports_high_water = True

    # No __dict__ (see Port): a listener slot is one of 1,000 on a busy port. The
    # attributes are documented in __init__.
    __slots__ = (
        "_buffer",
        "_close_timer",
        "_connect_after_close",
        "_failures",
        "_half_close_when_up",
        "_held",
        "_held_bytes",
        "_idle",
        "_listener",
        "_listeners",
        "_pending",
        "_pending_bytes",
        "_proto",
        "_task",
        "_timer",
        "_transport",
        "address",
        "discarded_in",
        "ignored_requests",
        "interface",
        "keepalive",
        "listen_on_demand",
        "password",
        "peer",
        "policy",
        "read_only",
        "reconnect_s",
        "ssl_context",
        "state",
        "tls",
        "warnings",
    )

    def __init__(
        self,
        hub: HubLink,
        index: int,
        address: TcpAddress,
        *,
        interface: str | None = None,
        reconnect: Reconnect | int = Reconnect.DEFAULT,
        write_limit: int = DEFAULT_WRITE_LIMIT,
        listeners: dict[tuple[str | None, int], _Listener] | None = None,
        read_only: bool = False,
        keepalive: Keepalive | None = None,
        idle_timeout_s: float = 0.0,
        buffer: int = 0,
        frame: Frame = Frame.BYTES,
        listen: Listen = Listen.ALWAYS,
        password: Secret | None = None,
        tls: TlsSettings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        policy: ListenerPolicy | None = None,
        warnings: list[str] | None = None,
    ):
        super().__init__(hub, index, f"TCP({index})", write_limit)
        self.address = address
        self.interface = interface
        #: --read-only: what the peer sends passes the port's filters (so telnet and
        #: RFC 2217 negotiate) and is then discarded (counted in discarded_in).
        self.read_only = read_only
        self.observer = read_only
        if read_only:
            self.gate_in = self._observe
        self.discarded_in = 0
        self.ignored_requests = 0
        #: Keepalive timing of the connections (--keepalive...).
        self.keepalive = keepalive or _NO_KEEPALIVE
        #: --password-file of a client port: sent first on every connection.
        self.password = password if address.is_client else None
        #: --listen=on-demand: a listener's socket is open only while its counter is above 0.
        self.listen_on_demand = listen is Listen.ON_DEMAND and not address.is_client
        #: --buffer and --frame: output kept while nobody is connected, line starts.
        self._buffer = IdleBuffer(buffer, frame is Frame.LINE) if buffer or frame is Frame.LINE else None
        #: Closes a connection that carried no data for --idle-timeout.
        self._idle = IdleTimer(hub.loop, idle_timeout_s, self._on_idle) if idle_timeout_s > 0 else None
        #: TLS settings and context (None: plain TCP).
        self.tls = tls
        self.ssl_context = ssl_context
        #: A listener's security options (shared by the ports on its address).
        self.policy = policy or _NO_POLICY
        #: Logged at start: a listener open to everybody, no TLS verification, a readable key.
        #: A listener's own warnings are logged by the port that opens the socket.
        #: (A tuple: most ports have none, and the empty tuple is one object.)
        self.warnings = tuple(warnings or ())
        #: Seconds to wait before reconnecting, or None for never (clients only).
        self.reconnect_s: float | None
        if not address.is_client or reconnect is Reconnect.NO:
            self.reconnect_s = None
        elif reconnect is Reconnect.DEFAULT:
            self.reconnect_s = 0.0 if address.permanent else None
        else:
            self.reconnect_s = reconnect / 1000
        self.state = State.IDLE
        #: The peer as host:port while connected.
        self.peer: str | None = None
        self._listeners = listeners if listeners is not None else {}
        self._listener: _Listener | None = None
        self._proto: _TcpProtocol | None = None
        self._transport: asyncio.Transport | None = None
        #: Data held for a connection on its way (None, not an empty list, while
        #: there is none: most of 1,000 idle listener slots never hold any).
        self._pending: list[bytes] | None = None
        self._pending_bytes = 0
        #: Data that arrived while reading was paused (uvloop starts reading after
        #: connection_made even if it paused); handed on when reading resumes.
        self._held: list[bytes] | None = None
        self._held_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failures = 0
        #: A client asked to connect while half-closed: connect when the peer closes.
        self._connect_after_close = False
        #: A listener's counter fell to 0 while accepting: half-close once up.
        self._half_close_when_up = False
        #: Closes a half-closed connection whose peer does not close in time.
        self._close_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        read = "paused" if self.xoff_count else "on"
        extra = (" tls" if self.ssl_context is not None else "") + (" read-only" if self.read_only else "")
        return (
            f"<TcpPort {self.name} {self.address} {self.state.value}{extra} read={read} "
            f"queued={self.queued_bytes()}B>"
        )

    @property
    def wants_listening(self) -> bool:
        """A listener port that wants its socket open now (see --listen)."""
        return not self.listen_on_demand or self.connection_counter > 0

    @property
    def listen_address(self) -> str | None:
        """A listener's bound address (host:port), or None."""
        return self._listener.address if self._listener is not None else None

    def status(self) -> str:
        st = self.state
        if st in (State.CONNECTED, State.HALF_CLOSED):
            what = "connected to" if self.address.is_client else "connected from"
            closing = " (closing)" if st is State.HALF_CLOSED else ""
            return f"{what} {self.peer}{closing}"
        if st is State.CONNECTING:
            return f"connecting to {self.address}" if self.address.is_client else "accepting"
        if st is State.WAITING:
            return "busy until disconnected"
        if not self.address.is_client and st is State.IDLE:
            if self.listen_address is None and not self.wants_listening:
                return f"not listening on port {self.address.port} until a connection is wanted"
            return f"listening on {self.listen_address or self.address}"
        if self._timer is not None:
            return f"not connected, reconnecting to {self.address}"
        return "not connected"

    def port_state(self) -> PortState:
        st = self.state
        if st in (State.CONNECTED, State.HALF_CLOSED):
            return PortState.CONNECTED
        if st is State.CONNECTING:
            return PortState.CONNECTING
        if st is State.CLOSED:
            return PortState.CLOSED
        if not self.address.is_client and self.listen_address is None and self.wants_listening:
            return PortState.DOWN
        return PortState.CONNECTING if self._timer is not None else PortState.WAITING

    def problem(self) -> str | None:
        if self.state is State.CLOSED:
            return None
        if not self.address.is_client:
            if self.listen_address is not None or not self.wants_listening:
                return None
            return f"not listening on port {self.address.port}"
        if self.address.permanent and self.state is not State.CONNECTED:
            return f"not connected to {self.address}"
        return None

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap["address"] = str(self.address) if self.address.is_client else self.listen_address
        snap["role"] = "client" if self.address.is_client else "listener"
        snap["tls"] = self.ssl_context is not None
        snap["read_only"] = self.read_only
        snap["peers"] = [self.peer] if self.peer else []
        if self._listener is not None:
            snap["gate"] = self._listener.gate.snapshot()
        return snap

    # ---- driver hooks ---------------------------------------------------------

    def start(self) -> None:
        """Connect (permanent client) or join the shared listener. Raises PortError."""
        if self.address.is_client:
            for text in self.warnings:
                log.warning("Warning: %s", text)
            # A CONNECT written before start (a port started earlier came up) may
            # already have started a connect, as in hub4com.
            if self.state is State.IDLE and (self.address.permanent or self.connection_counter > 0):
                self._connect()
            return
        key = (self.interface, self.address.port)
        listener = self._listeners.get(key)
        if listener is None:
            listener = _Listener(
                self.hub.loop, self.interface, self.address.port, self.policy, self.ssl_context
            )
            listener.open(self.name, listen=self.wants_listening)
            self._listeners[key] = listener
            for text in self.warnings:
                log.warning("Warning: %s", text)
        self._listener = listener
        listener.attach(self)
        if self.listen_on_demand:
            if not self.wants_listening:
                log.info("%s listens on port %d only while a connection is wanted", self.name, listener.port)
            listener.update()

    def close(self) -> None:
        """Close the connection, stop timers, leave the listener. Never raises."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._cancel_timer()
        self._cancel_close_timer()
        if self._idle is not None:
            self._idle.stop()
        task, self._task = self._task, None
        if task is not None and self.address.is_client:
            task.cancel()  # an accept task finishes by itself and finds the port closed
        transport, self._transport = self._transport, None
        self._proto = None
        if transport is not None:
            transport.close()
        self._drop_pending()
        self.connected = False
        listener, self._listener = self._listener, None
        if listener is not None and listener.detach(self):
            key = (self.interface, self.address.port)
            if self._listeners.get(key) is listener:
                del self._listeners[key]

    def send_data(self, data: bytes) -> None:
        """Write, hold for a connection on its way, or keep for the next connection
        (--buffer) or count as unheard (no connection)."""
        st = self.state
        buffer = self._buffer
        if st is _CONNECTED:
            assert self._transport is not None
            if buffer is not None:
                data, skipped = buffer.live(data)
                self.discard_unheard(skipped)
            self._transport.write(data)
            if self._idle is not None:
                self._idle.touch()
        elif st is State.CONNECTING or self._wants_connection():
            if buffer is not None:
                self._hold(buffer.begin())
                data, skipped = buffer.live(data)
                self.discard_unheard(skipped)
            self._hold([data])
        elif buffer is not None:
            self.discard_unheard(buffer.nobody(data))
        else:
            self.discard_unheard(len(data))

    def _hold(self, chunks: list[bytes]) -> None:
        """Hold data for a connection on its way."""
        for chunk in chunks:
            if chunk:
                if self._pending is None:
                    self._pending = []
                self._pending.append(chunk)
                self._pending_bytes += len(chunk)
        if self._pending_bytes > self.high_water:
            self.set_write_paused(True)

    def _wants_connection(self) -> bool:
        """A client that is (re)connecting or will connect once its old connection is gone."""
        if not self.address.is_client or self.state is State.CLOSED:
            return False
        if self.state is State.HALF_CLOSED:
            return self._connect_after_close
        return self.address.permanent or self.connection_counter > 0

    def queued_bytes(self) -> int:
        if self.state is _CONNECTED and self._transport is not None:
            return self._transport.get_write_buffer_size()
        return self._pending_bytes

    def pause_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._release_held()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def write(self, msg: Message, src: int) -> None:
        super().write(msg, src)
        # hub4com (spec 3.2) retries a client's connect on every CONNECT(TRUE), not
        # just on 0 -> 1 (which on_connect_request handles).
        if type(msg) is Connect and msg.on and self.connection_counter > 1 and self.address.is_client:
            self._want_connection()

    def on_connect_request(self, up: bool) -> None:
        st = self.state
        if st is State.CLOSED:
            return
        if self.listen_on_demand and self._listener is not None:
            self._listener.update()
        client = self.address.is_client
        if up:
            self._half_close_when_up = False
            if client:
                self._want_connection()
            return
        if st is State.WAITING:
            assert self._listener is not None
            self.state = State.IDLE
            self._listener.make_idle(self)
            return
        if self.address.permanent:
            return
        if client:
            self._cancel_timer()
            self._connect_after_close = False
            if st in (State.IDLE, State.HALF_CLOSED):
                self._discard_queue()  # held for a connection nobody wants now
        if st is State.CONNECTED:
            self._half_close()
        elif st is State.CONNECTING:
            if client:
                self._abandon_connect()
            else:
                self._half_close_when_up = True

    # ---- connection life cycle ------------------------------------------------

    def _want_connection(self) -> None:
        """A client was asked for a connection: connect if it has none."""
        self._cancel_timer()
        if self.state is State.IDLE:
            self._failures = 0
            self._connect()
        elif self.state is State.HALF_CLOSED:
            self._connect_after_close = True

    def _connect(self) -> None:
        self.state = State.CONNECTING
        proto = _TcpProtocol(self)
        self._proto = proto
        self._task = self.hub.loop.create_task(self._connect_task(proto))

    async def _connect_task(self, proto: _TcpProtocol) -> None:
        host, port = self.address.host, self.address.port
        assert host is not None
        local = (self.interface, 0) if self.interface is not None else None
        tls: dict[str, Any] = {}
        if self.ssl_context is not None and self.tls is not None:
            tls = {
                "ssl": self.ssl_context,
                "server_hostname": self.tls.server_name or host,
                "ssl_handshake_timeout": self.tls.timeout_s,
                "ssl_shutdown_timeout": self.tls.timeout_s,
            }
        try:
            await self.hub.loop.create_connection(lambda: proto, host, port, local_addr=local, **tls)
        except OSError as exc:
            self._connect_failed(proto, _reason(exc))
        except Exception as exc:  # a bug or an odd resolver error: report, retry as a failure
            log.error("%s: unexpected error connecting to %s", self.name, self.address, exc_info=True)
            self._connect_failed(proto, _reason(exc))
        finally:
            if self._proto is None or self._proto is proto:
                self._task = None

    def _abandon_connect(self) -> None:
        """A client's counter fell to 0 while connecting: give up this attempt."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._proto = None
        self._discard_queue()
        self.state = State.IDLE
        log.info("%s: connect to %s cancelled", self.name, self.address)

    def _connect_failed(self, proto: _TcpProtocol, reason: str) -> None:
        if proto is not self._proto or self.state is not State.CONNECTING:
            return
        self._proto = None
        self._failures += 1
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        log.log(level, "%s: cannot connect to %s: %s", self.name, self.address, reason)
        self.state = State.IDLE
        self._after_session(failed=True)

    def _take(self, conn: socket.socket, peer: str, ticket: Ticket | None = None) -> None:
        """The listener accepted `conn` (plain TCP) for this (idle) port."""
        self.state = State.CONNECTING
        self._half_close_when_up = False
        proto = _TcpProtocol(self, ticket)
        proto.peer = peer
        self._proto = proto
        self.peer = peer
        self._task = self.hub.loop.create_task(self._accept_task(proto, conn, peer))

    def _adopt(self, proto: _TcpProtocol) -> None:
        """The listener hands over an established TLS connection (reading paused)."""
        transport = proto.transport
        assert transport is not None
        self.state = State.CONNECTING
        self._half_close_when_up = False
        proto.port = self
        self._proto = proto
        self.peer = proto.peer
        held, proto.held, proto.held_bytes = proto.held or (), None, 0
        self._connection_made(proto, transport)
        for chunk in held:
            self._data_received(proto, chunk)
        if self._transport is transport and not self.xoff_count and not transport.is_closing():
            transport.resume_reading()

    async def _accept_task(self, proto: _TcpProtocol, conn: socket.socket, peer: str) -> None:
        try:
            conn.setblocking(False)
            await self.hub.loop.connect_accepted_socket(lambda: proto, sock=conn)
        except OSError as exc:
            conn.close()
            proto.release()
            log.warning("%s: connection from %s failed: %s", self.name, peer, _reason(exc))
            if proto is self._proto and self.state is State.CONNECTING:
                self._proto = None
                self._discard_queue()
                self.state = State.IDLE
                self._after_session(failed=True)
        finally:
            if self._proto is None or self._proto is proto:
                self._task = None

    def _connection_made(self, proto: _TcpProtocol, transport: asyncio.Transport) -> None:
        if proto is not self._proto or self.state is not State.CONNECTING:
            transport.abort()  # the port closed or gave up meanwhile
            return
        self._transport = transport
        self.state = State.CONNECTED
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                self.keepalive.apply(sock)
            except OSError as exc:
                log.debug("%s: cannot set socket options: %s", self.name, exc)
        transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)
        if self.xoff_count:
            transport.pause_reading()
        peername = transport.get_extra_info("peername")
        if peername:  # else (reset already) keep what accept() said
            self.peer = _format_sockaddr(peername)
        local = _format_sockaddr(transport.get_extra_info("sockname"))
        tls = _tls_note(transport)
        if self.address.is_client:
            log.info("%s connected to %s from %s%s", self.name, self.peer, local, tls)
            if self._failures > 1:
                log.info("%s: connected after %d failed attempts", self.name, self._failures)
        else:
            log.info("%s accepted connection from %s on %s%s", self.name, self.peer, local, tls)
        self._failures = 0
        if self._idle is not None:
            self._idle.start()
        if self.password is not None and self.address.is_client:
            transport.write(self.password.line())  # before anything else; never counted or traced
        if self._buffer is not None:
            kept = self._buffer.begin()  # before what was held meanwhile
            self._pending = [*kept, *(self._pending or ())]
            self._pending_bytes += sum(map(len, kept))
        pending, self._pending = self._pending or (), None
        self._pending_bytes = 0
        for chunk in pending:
            transport.write(chunk)
        if transport.get_write_buffer_size() <= self.high_water:
            self.set_write_paused(False)
        self.set_connected(True)
        if self._half_close_when_up and self.state is State.CONNECTED:
            self._half_close_when_up = False
            self._half_close()

    def _data_received(self, proto: _TcpProtocol, data: bytes) -> None:
        if proto is not self._proto:
            return
        if self._idle is not None:
            self._idle.touch()
        if self.xoff_count:
            if self._held is None:
                self._held = []
            self._held.append(data)
            self._held_bytes += len(data)
            if self._transport is not None:
                if self._held_bytes > _HELD_MAX_BYTES:
                    log.error(
                        "%s: %s kept sending while reading was paused (%d bytes held); disconnecting",
                        self.name,
                        self.peer,
                        self._held_bytes,
                    )
                    self._transport.abort()
                else:
                    self._transport.pause_reading()
            return
        self.emit_data(data)

    def _observe(self, msgs: list[Message]) -> list[Message]:
        """--read-only: what the peer sends (after the filters) goes no further but
        CONNECT and its end, so filters elsewhere see the session start and end."""
        kept: list[Message] = []
        for m in msgs:
            kind = type(m)
            if kind is Connect:
                kept.append(m)
            elif kind is LineData:
                if not self.discarded_in:
                    log.info("%s is read-only: discarding what %s sends", self.name, self.peer)
                self.discarded_in += len(m.data)  # type: ignore[union-attr]
            elif kind is not FlowControl:
                self.ignored_requests += 1
        return kept

    def _release_held(self) -> None:
        held, self._held = self._held or (), None
        self._held_bytes = 0
        for chunk in held:
            self.emit_data(chunk)

    def _on_idle(self) -> None:
        """--idle-timeout: no data either way for that long; close the connection."""
        transport = self._transport
        if transport is None or self.state is not State.CONNECTED:
            return
        assert self._idle is not None
        log.info(
            "%s: closing the connection to %s: no data for %g s (--idle-timeout)",
            self.name,
            self.peer,
            self._idle.timeout_s,
        )
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def _half_close(self) -> None:
        """Shut down our sending side; the session ends when the peer closes.

        TLS has no half-close: the transport closes (close_notify; the peer has
        --tls-timeout to answer).
        """
        transport = self._transport
        assert transport is not None
        self.state = State.HALF_CLOSED
        log.info("%s: closing the connection to %s", self.name, self.peer)
        try:
            transport.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            transport.close()
        self._cancel_close_timer()
        self._close_timer = self.hub.loop.call_later(HALF_CLOSE_TIMEOUT_S, self._half_close_expired)

    def _half_close_expired(self) -> None:
        """The peer did not close in time: close the socket (what it still holds is lost)."""
        self._close_timer = None
        transport = self._transport
        if self.state is not State.HALF_CLOSED or transport is None:
            return
        unsent = transport.get_write_buffer_size()
        if unsent:
            self.lose(unsent, Drop.UNSENT)
        log.debug("%s: %s did not close within %g s; closing", self.name, self.peer, HALF_CLOSE_TIMEOUT_S)
        transport.abort()

    def _cancel_close_timer(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _connection_lost(self, proto: _TcpProtocol, exc: Exception | None) -> None:
        if proto is not self._proto:
            return
        transport, self._transport = self._transport, None
        self._proto = None
        self._cancel_close_timer()
        if self._idle is not None:
            self._idle.stop()
        if self._buffer is not None:
            self._buffer.end()
        if transport is not None:
            # Whatever the transport still held is lost (asyncio may already have
            # dropped it after a send error; then this counts 0).
            unsent = transport.get_write_buffer_size()
            if unsent:
                self.lose(unsent, Drop.UNSENT)
        reason = f": {exc}" if exc is not None else ""
        log.info("%s disconnected from %s%s", self.name, self.peer, reason)
        self.peer = None
        self.state = State.IDLE
        self._release_held()  # what the peer sent before it went is still its data
        self.set_write_paused(self._pending_bytes > self.high_water)  # held for the next one
        self.set_connected(False)
        self._after_session(failed=False)

    def _after_session(self, failed: bool) -> None:
        """A connection ended or a connect failed: reconnect or offer the port again."""
        if self.state is not State.IDLE:
            return  # something (a CONNECT written meanwhile) already moved on
        if not self.address.is_client:
            assert self._listener is not None
            if self.address.busy_until_zero and self.connection_counter > 0:
                self.state = State.WAITING
                log.debug("%s busy until its connection counter is 0", self.name)
            else:
                self._listener.make_idle(self)
            return
        if self._connect_after_close:
            self._connect_after_close = False
            self._connect()
            return
        if not (self.address.permanent or self.connection_counter > 0):
            self._discard_queue()
            return
        delay = self.reconnect_s
        if delay is None:
            self._discard_queue()  # held for a connection that will not come
            return
        if failed:
            backoff = min(_RETRY_MIN_S * 2 ** (self._failures - 1), _RETRY_MAX_S)
            delay = max(delay, backoff)
        if delay <= 0:
            self._connect()
        else:
            self._timer = self.hub.loop.call_later(delay, self._on_reconnect_timer)

    def _on_reconnect_timer(self) -> None:
        self._timer = None
        if self.state is State.IDLE and (self.address.permanent or self.connection_counter > 0):
            self._connect()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _drop_pending(self) -> None:
        if self._pending_bytes:
            self.lose(self._pending_bytes, Drop.NOT_CONNECTED)
        self._pending = None
        self._pending_bytes = 0

    def _discard_queue(self) -> None:
        """A connect attempt ended: what waited for it is lost; release the sources."""
        self._drop_pending()
        self.set_write_paused(False)


# ---- the driver ------------------------------------------------------------------


class TcpDriver(Driver):
    """Creates TcpPorts; keeps the sticky options, the shared listeners and TLS contexts."""

    NAME = "tcp"
    DESCRIPTION = "TCP port driver"
    USAGE = USAGE
    DEFAULTS = {
        "--interface": None,
        "--reconnect": Reconnect.DEFAULT,
        "--write-limit": DEFAULT_WRITE_LIMIT,
        "--read-only": False,
        "--buffer": 0,
        "--frame": Frame.BYTES,
        "--listen": Listen.ALWAYS,
        **_netopts.DEFAULTS,
        **_netsec.DEFAULTS,
        **_password.DEFAULTS,
    }

    def __init__(self, hub: HubLink):
        super().__init__(hub)
        self._listeners: dict[tuple[str | None, int], _Listener] = {}
        self._contexts = TlsContexts()
        #: Listener address -> (policy, path of the first port there), to catch conflicts.
        self._policies: dict[tuple[str | None, int], tuple[ListenerPolicy, str]] = {}
        #: Option values ports share (see _shared).
        self._values: dict[Any, Any] = {}

    def _shared(self, value: _V) -> _V:
        """The first of the equal (immutable) values given: 1,000 slots on one port
        hold one address, interface and keepalive setting, not 1,000 copies."""
        return self._values.setdefault(value, value)

    def config_arg(self, arg: str) -> bool:
        if not super().config_arg(arg):
            return False
        if self.options.pop("--read-write", False):
            self.options["--read-only"] = False
        return True

    def convert_option(self, name: str, value: Any) -> Any:
        if name == "--interface":
            return parse_interface(value)
        if name == "--reconnect":
            return parse_reconnect(value)
        if name == "--write-limit":
            return parse_write_limit(value)
        if name == "--frame":
            return parse_frame(value)
        if name == "--listen":
            return parse_listen(value)
        if name == "--buffer":
            return parse_buffer(value)
        conv = _netopts.CONVERTERS.get(name) or _netsec.CONVERTERS.get(name) or _password.CONVERTERS.get(name)
        if conv is not None:
            return conv(value)
        return value

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> TcpPort:
        """Create the port for `path`.

        Raises UsageError for a bad address, TLS files that do not load, TLS
        options that cannot work together, or listener ports on one address
        with different security options.
        """
        address = self._shared(parse_address(path))
        interface = self._shared(options.get("--interface", self.DEFAULTS["--interface"]))
        tls = TlsSettings.from_options(options)
        if tls is None:
            _netsec.check_disabled(options, path)
            context = None
        else:
            context = self._contexts.get(tls, server_side=not address.is_client)
        policy = None
        warnings = []
        if tls is not None:
            key_warning = self._contexts.key_warning(tls)
            if key_warning is not None:
                warnings.append(key_warning)
        if not address.is_client:
            policy = ListenerPolicy.from_options(options)
            key = (interface, address.port)
            first = self._policies.setdefault(key, (policy, path))
            if first[0] != policy:
                raise UsageError(
                    path,
                    f"Listener ports on one address need the same TLS, --allow, --deny, --max-rate, "
                    f"--max-connections and --password options as '{first[1]}'",
                )
            policy = first[0]
            exposure = _netsec.exposure_warning(f"TCP({index})", address.port, interface, policy)
            if exposure is not None:
                warnings.append(exposure)
        elif tls is not None and tls.verify is _netsec.Verify.NONE:
            warnings.append(f"TCP({index}) does not verify the TLS server {address} (--tls-verify=none)")
        secret: Secret | None = options.get("--password-file")
        if secret is not None:
            warnings += _password.warnings(
                f"TCP({index})", secret, address.host or interface, tls is not None
            )
        return TcpPort(
            self.hub,
            index,
            address,
            interface=interface,
            reconnect=options.get("--reconnect", self.DEFAULTS["--reconnect"]),
            write_limit=options.get("--write-limit", self.DEFAULTS["--write-limit"]),
            listeners=self._listeners,
            read_only=bool(options.get("--read-only")),
            keepalive=self._shared(Keepalive.from_options(options)),
            idle_timeout_s=options.get("--idle-timeout") or 0.0,
            buffer=options.get("--buffer") or 0,
            frame=options.get("--frame") or Frame.BYTES,
            listen=options.get("--listen") or Listen.ALWAYS,
            password=options.get("--password-file"),
            tls=tls,
            ssl_context=context,
            policy=policy,
            warnings=warnings,
        )
