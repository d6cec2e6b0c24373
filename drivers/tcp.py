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
* A client that half-closed (its counter fell to 0) and is asked to connect
  again before the peer has closed connects again once the peer closes.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import ipaddress
import logging
import os
import re
import socket
import struct
from dataclasses import dataclass
from typing import Any

from hub.errors import PortError, UsageError
from hub.messages import Connect, Message
from hub.port import DEFAULT_WRITE_LIMIT, Driver, HubLink, Port, parse_write_limit

__all__ = [
    "USAGE",
    "Reconnect",
    "State",
    "TcpAddress",
    "TcpDriver",
    "TcpPort",
    "parse_address",
    "parse_interface",
    "parse_reconnect",
]

log = logging.getLogger(__name__)

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
"""

#: Connections accepted or refused per readiness callback (keeps the loop fair).
_ACCEPT_BATCH = 32
#: After a failed connect attempt: least delay, doubled per failure up to the max.
_RETRY_MIN_S = 0.1
_RETRY_MAX_S = 2.0
#: Pause before watching a listening socket again after EMFILE and the like.
_ACCEPT_PAUSE_S = 1.0
#: Retry delay for a listener whose interface name did not resolve or bind.
_LISTEN_RETRY_S = 5.0
#: accept() errors that mean "out of resources", not "this connection failed".
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Errors that make the default listener fall back from "::" to "0.0.0.0".
_NO_IPV6_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})
#: SO_LINGER on, 0 s: close() sends RST (refusing a connection).
_LINGER_RESET = struct.pack("ii", 1, 0)

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


def _reason(exc: BaseException) -> str:
    """Plain words for a socket error ("Connection refused", "Name or service not known")."""
    if isinstance(exc, OSError):
        if isinstance(exc, socket.gaierror) and exc.strerror:
            return exc.strerror
        if isinstance(exc.errno, int) and exc.errno > 0:
            return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def _port_number(text: str, path: str, minimum: int) -> int:
    """A TCP port: a decimal number or a service name. Raises UsageError."""
    if _NUMBER_RE.match(text):
        number = int(text)
    elif text:
        try:
            number = socket.getservbyname(text, "tcp")
        except OSError:
            raise UsageError(path, "Invalid address") from None
    else:
        raise UsageError(path, "Invalid address")
    if not minimum <= number <= 65535:
        raise UsageError(path, "Invalid address")
    return number


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
        return TcpAddress(host, _port_number(port_text, path, 1), **flags)
    port_text, sep, priority_text = rest.partition("/")
    number = _port_number(port_text, path, 0)
    priority = 0
    if sep:
        if not _PRIORITY_RE.match(priority_text):
            raise UsageError(path, "Invalid priority")
        priority = int(priority_text)
    return TcpAddress(None, number, priority=priority, **flags)


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

    Watches the socket only while some port is idle; then accepts one connection
    per idle port, best port first. `!` ports refuse while their counter is 0.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interface: str | None, port: int):
        self.loop = loop
        self.interface = interface
        self.port = port
        self.sock: socket.socket | None = None
        self.ports: list[TcpPort] = []
        self._idle: list[TcpPort] = []
        self._watching = False
        self._retry: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        where = self.address or f"{self.interface or '*'} port {self.port}"
        return f"<_Listener {where} ports={len(self.ports)} idle={len(self._idle)}>"

    @property
    def address(self) -> str | None:
        """The bound address as host:port, or None while not listening."""
        if self.sock is None:
            return None
        return _format_sockaddr(self.sock.getsockname())

    # ---- opening ----------------------------------------------------------

    def open(self, owner: str) -> None:
        """Listen now (numeric or default interface) or start resolving a name.

        Raises PortError naming `owner` if a numeric address cannot be bound.
        """
        if self.interface is not None and not _is_numeric_host(self.interface):
            self._task = self.loop.create_task(self._open_by_name())
            return
        try:
            if self.interface is None:
                self.sock = self._open_any()
            else:
                flags = socket.AI_NUMERICHOST | socket.AI_PASSIVE
                family, _, _, _, sockaddr = socket.getaddrinfo(
                    self.interface, self.port, type=socket.SOCK_STREAM, flags=flags
                )[0]
                self.sock = _listening_socket(family, sockaddr, self.interface == "::")
        except OSError as exc:
            where = format_hostport(self.interface or "*", self.port)
            raise PortError(owner, exc.errno, f"Cannot listen on {where}: {_reason(exc)}") from exc
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

    def _retry_open(self) -> None:
        self._retry = None
        if not self._closed:
            self._task = self.loop.create_task(self._open_by_name())

    def _listening(self) -> None:
        log.info("Listening on %s", self.address)
        self._watch()

    # ---- ports ------------------------------------------------------------

    def attach(self, port: TcpPort) -> None:
        self.ports.append(port)
        self.make_idle(port)

    def detach(self, port: TcpPort) -> bool:
        """Forget `port`; close the socket after the last one. Returns True if closed."""
        if port in self.ports:
            self.ports.remove(port)
        if port in self._idle:
            self._idle.remove(port)
        if self.ports:
            if not self._idle:
                self._unwatch()
            return False
        self.close()
        return True

    def make_idle(self, port: TcpPort) -> None:
        """`port` can take a connection: offer it the backlog."""
        if port not in self._idle:
            self._idle.append(port)
        self._watch()

    def _next_port(self) -> TcpPort | None:
        """The idle port to offer the next connection: highest priority, then first given."""
        if not self._idle:
            return None
        return max(self._idle, key=lambda p: (p.address.priority, -p.index))

    # ---- accepting --------------------------------------------------------

    def _watch(self) -> None:
        if self.sock is not None and not self._watching and self._idle and self._retry is None:
            self.loop.add_reader(self.sock, self._on_acceptable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching and self.sock is not None:
            self._watching = False
            try:
                self.loop.remove_reader(self.sock)
            except (RuntimeError, ValueError, OSError):
                pass  # the loop is already closed; nothing left to stop watching

    def _resume_watching(self) -> None:
        self._retry = None
        self._watch()

    def _on_acceptable(self) -> None:
        sock = self.sock
        assert sock is not None
        for _ in range(_ACCEPT_BATCH):
            port = self._next_port()
            if port is None:
                self._unwatch()  # deferred: the connection stays in the backlog
                return
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    log.error("%s: cannot accept: %s; pausing", self.address, _reason(exc))
                    self._unwatch()
                    self._retry = self.loop.call_later(_ACCEPT_PAUSE_S, self._resume_watching)
                    return
                log.debug("%s: accept failed: %s", self.address, exc)
                continue
            peer = _format_sockaddr(addr)
            if port.address.reject and port.connection_counter == 0:
                _refuse(conn)
                log.info("%s refused connection from %s (not connected)", port.name, peer)
                continue
            self._idle.remove(port)
            port._take(conn, peer)

    def close(self) -> None:
        """Stop listening. Never raises."""
        self._closed = True
        self._unwatch()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.sock is not None:
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


class _TcpProtocol(asyncio.Protocol):
    """One connection's callbacks, forwarded to its port (stale ones are ignored there)."""

    __slots__ = ("port",)

    def __init__(self, port: TcpPort):
        self.port = port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.port._connection_made(self, transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.port._data_received(self, data)

    def eof_received(self) -> bool:
        # The peer shut down its side: the session is over (hub4com's FD_CLOSE).
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.port._connection_lost(self, exc)

    def pause_writing(self) -> None:
        if self.port._proto is self:
            self.port.set_write_paused(True)

    def resume_writing(self) -> None:
        if self.port._proto is self:
            self.port.set_write_paused(False)


class TcpPort(Port):
    """A TCP client or listener port, named ``TCP(<index>)``."""

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
    ):
        super().__init__(hub, index, f"TCP({index})", write_limit)
        self.address = address
        self.interface = interface
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
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        #: Data that arrived while reading was paused (uvloop starts reading after
        #: connection_made even if it paused); handed on when reading resumes.
        self._held: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failures = 0
        #: A client asked to connect while half-closed: connect when the peer closes.
        self._connect_after_close = False
        #: A listener's counter fell to 0 while accepting: half-close once up.
        self._half_close_when_up = False

    def __repr__(self) -> str:
        read = "paused" if self.xoff_count else "on"
        return (
            f"<TcpPort {self.name} {self.address} {self.state.value} read={read} "
            f"queued={self.queued_bytes()}B>"
        )

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
            return f"listening on {self.listen_address or self.address}"
        if self._timer is not None:
            return f"not connected, reconnecting to {self.address}"
        return "not connected"

    # ---- driver hooks ---------------------------------------------------------

    def start(self) -> None:
        """Connect (permanent client) or join the shared listener. Raises PortError."""
        if self.address.is_client:
            # A CONNECT written before start (a port started earlier came up) may
            # already have started a connect, as in hub4com.
            if self.state is State.IDLE and (self.address.permanent or self.connection_counter > 0):
                self._connect()
            return
        key = (self.interface, self.address.port)
        listener = self._listeners.get(key)
        if listener is None:
            listener = _Listener(self.hub.loop, self.interface, self.address.port)
            listener.open(self.name)
            self._listeners[key] = listener
        self._listener = listener
        listener.attach(self)

    def close(self) -> None:
        """Close the connection, stop timers, leave the listener. Never raises."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._cancel_timer()
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
        st = self.state
        if st is State.CONNECTED:
            assert self._transport is not None
            self._transport.write(data)
        elif st is State.CONNECTING:
            self._pending.append(data)
            self._pending_bytes += len(data)
            if self._pending_bytes > self.high_water:
                self.set_write_paused(True)
        else:
            self.lose(len(data))

    def queued_bytes(self) -> int:
        if self._transport is not None:
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
        try:
            await self.hub.loop.create_connection(lambda: proto, host, port, local_addr=local)
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
        self._discard_queue()
        level = logging.WARNING if self._failures == 1 else logging.DEBUG
        log.log(level, "%s: cannot connect to %s: %s", self.name, self.address, reason)
        self.state = State.IDLE
        self._after_session(failed=True)

    def _take(self, conn: socket.socket, peer: str) -> None:
        """The listener accepted `conn` for this (idle) port."""
        self.state = State.CONNECTING
        self._half_close_when_up = False
        proto = _TcpProtocol(self)
        self._proto = proto
        self.peer = peer
        self._task = self.hub.loop.create_task(self._accept_task(proto, conn, peer))

    async def _accept_task(self, proto: _TcpProtocol, conn: socket.socket, peer: str) -> None:
        try:
            conn.setblocking(False)
            await self.hub.loop.connect_accepted_socket(lambda: proto, sock=conn)
        except OSError as exc:
            conn.close()
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
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError as exc:
                log.debug("%s: cannot set socket options: %s", self.name, exc)
        transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)
        if self.xoff_count:
            transport.pause_reading()
        self.peer = _format_sockaddr(transport.get_extra_info("peername"))
        local = _format_sockaddr(transport.get_extra_info("sockname"))
        if self.address.is_client:
            log.info("%s connected to %s from %s", self.name, self.peer, local)
            if self._failures > 1:
                log.info("%s: connected after %d failed attempts", self.name, self._failures)
        else:
            log.info("%s accepted connection from %s on %s", self.name, self.peer, local)
        self._failures = 0
        pending, self._pending = self._pending, []
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
        if self.xoff_count:
            self._held.append(data)
            if self._transport is not None:
                self._transport.pause_reading()
            return
        self.emit_data(data)

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for chunk in held:
            self.emit_data(chunk)

    def _half_close(self) -> None:
        """Shut down our sending side; the session ends when the peer closes."""
        transport = self._transport
        assert transport is not None
        self.state = State.HALF_CLOSED
        log.info("%s: closing the connection to %s", self.name, self.peer)
        try:
            transport.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            transport.close()

    def _connection_lost(self, proto: _TcpProtocol, exc: Exception | None) -> None:
        if proto is not self._proto:
            return
        transport, self._transport = self._transport, None
        self._proto = None
        if transport is not None:
            # Whatever the transport still held is lost (asyncio may already have
            # dropped it after a send error; then this counts 0).
            unsent = transport.get_write_buffer_size()
            if unsent:
                self.lose(unsent)
        reason = f": {exc}" if exc is not None else ""
        log.info("%s disconnected from %s%s", self.name, self.peer, reason)
        self.peer = None
        self.state = State.IDLE
        self._release_held()  # what the peer sent before it went is still its data
        self.set_write_paused(False)
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
            return
        delay = self.reconnect_s
        if delay is None:
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
            self.lose(self._pending_bytes)
        self._pending = []
        self._pending_bytes = 0

    def _discard_queue(self) -> None:
        """A connect attempt ended: what waited for it is lost; release the sources."""
        self._drop_pending()
        self.set_write_paused(False)


# ---- the driver ------------------------------------------------------------------


class TcpDriver(Driver):
    """Creates TcpPorts; keeps the sticky options and the shared listeners."""

    NAME = "tcp"
    DESCRIPTION = "TCP port driver"
    USAGE = USAGE
    DEFAULTS = {
        "--interface": None,
        "--reconnect": Reconnect.DEFAULT,
        "--write-limit": DEFAULT_WRITE_LIMIT,
    }

    def __init__(self, hub: HubLink):
        super().__init__(hub)
        self._listeners: dict[tuple[str | None, int], _Listener] = {}

    def convert_option(self, name: str, value: Any) -> Any:
        if name == "--interface":
            return parse_interface(value)
        if name == "--reconnect":
            return parse_reconnect(value)
        if name == "--write-limit":
            return parse_write_limit(value)
        return value

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> TcpPort:
        """Create the port for `path`. Raises UsageError for a bad address."""
        address = parse_address(path)
        return TcpPort(
            self.hub,
            index,
            address,
            interface=options.get("--interface", self.DEFAULTS["--interface"]),
            reconnect=options.get("--reconnect", self.DEFAULTS["--reconnect"]),
            write_limit=options.get("--write-limit", self.DEFAULTS["--write-limit"]),
            listeners=self._listeners,
        )
