"""The udp driver: UDP senders and receivers as hub ports (hub4com had none).

A port path ``<host>:<port>`` (or ``[<IPv6>]:<port>``) sends what is written to
the port to that address: unicast, a broadcast address (SO_BROADCAST is on)
or a multicast group (``--ttl`` hops, looped back to this machine too). Its
socket is connected, so it also receives what that peer sends back, and ICMP
"port unreachable" (nobody listening yet) is counted, not an error.

A port path ``<port>`` or ``@<address>:<port>`` receives: it binds the port on
``--interface`` (all interfaces by default) or on <address>; a multicast
<address> joins that group (on ``--interface``, or the interface of an IPv6
group's ``%scope``). Every datagram from an admitted sender (``--allow`` /
``--deny``, as for TCP listeners) enters the hub as one chunk; datagrams from
others are dropped, counted per port and logged once per address and interval.
What is written to a receive port goes to the sender it heard from last
(unheard before any).

Sending: each datagram carries at most ``--datagram-size`` bytes, and never
more than the path allows (IP_MTU of the connected socket, minus the IP and
UDP headers). With ``--frame=line`` every datagram holds whole lines (ending
with LF): a chunk is cut only at line ends, and a partial line waits for its
end. Only a line longer than a datagram is cut, counted. NMEA over UDP
(OpenCPN, SignalK, chart plotters; port 10110 by convention) wants this.

Flow control: a port told to stop reading pauses its socket where the event
loop can (the kernel then drops what does not fit, as UDP does); otherwise
it holds up to 1 MiB of datagrams and drops the rest, counted.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import ipaddress
import logging
import re
import socket
import struct
from dataclasses import dataclass
from typing import Any

from hub import netsec as _netsec
from hub.errors import PortError, UsageError
from hub.logs import SELF_LIMITED
from hub.netsec import AccessList, LogLimiter, peer_ip
from hub.port import DEFAULT_WRITE_LIMIT, Driver, Drop, HubLink, Port, PortState, parse_write_limit

from ._sessions import Frame, parse_frame
from .tcp import format_hostport, parse_interface, port_number

__all__ = ["USAGE", "DatagramFramer", "Role", "UdpAddress", "UdpDriver", "UdpPort", "parse_address"]

log = logging.getLogger(__name__)

#: --datagram-size default: an Ethernet frame's payload (1500 - 20 IP - 8 UDP).
DEFAULT_DATAGRAM_SIZE = 1472
#: The most a UDP datagram can carry (IPv4).
MAX_DATAGRAM_SIZE = 65507
#: --ttl default for multicast: this network only.
DEFAULT_TTL = 1
#: Received datagrams held while reading is paused (where the socket cannot pause).
HELD_MAX_BYTES = 1024 * 1024
#: Linux socket options the socket module may lack.
_IP_MTU = getattr(socket, "IP_MTU", 14)
_IPV6_MTU = getattr(socket, "IPV6_MTU", 24)

USAGE = f"""\
Usage: udp [options]

Port paths:
  <host>:<port>         Send to <host> (an IPv4 address, a host name or an
  [<IPv6>]:<port>       [IPv6 address]): unicast, broadcast or a multicast
                        group. Replies from a unicast peer are read.
  <port>                Receive on <port> (of --interface; every interface
  @<address>:<port>     by default) or on <address>; a multicast <address>
                        joins that group. Written data goes to the sender
                        heard from last. Port 0 picks a free port (the log
                        line "UDP(<n>) receives on ..." shows which).

Options:
  --interface=<if>      Local address: the source address of senders and the
                        interface they send multicast from; the address a
                        receive port listens on and joins groups on.
                        Default: all interfaces (the system's choice).
  --frame=<f>           b[ytes] or l[ine]. line: every datagram carries
                        whole lines (ending with LF: NMEA's CR LF and plain
                        LF alike); a partial line waits for its end. Only a
                        line longer than a datagram is cut, counted.
                        Default bytes.
  --datagram-size=<n>   Largest payload of a datagram sent, in bytes; never
                        more than the path allows (its MTU). Default
                        {DEFAULT_DATAGRAM_SIZE}.
  --ttl=<n>             Hops a multicast datagram may take (1 to 255).
                        Default {DEFAULT_TTL}: this network only.
  --allow=<cidrs>       Receive ports: take datagrams only from these
                        addresses and networks (10.0.0.0/8,::1). Default:
                        every address --deny does not refuse.
  --deny=<cidrs>        Receive ports: drop datagrams from these addresses and
                        networks; deny wins over allow. Refused datagrams are
                        counted and logged once per address per 10 s.
  --write-limit=<s>     Bytes the port may hold unsent; 0 discards everything
                        written to the port. Default {DEFAULT_WRITE_LIMIT}.

Example: NMEA from a GPS to OpenCPN on another machine, whole sentences per
datagram:
  hub4com --baud=4800 /dev/ttyUSB0 --use-driver=udp --frame=line 192.168.1.20:10110
"""

_NUMBER_RE = re.compile(r"[0-9]+\Z")
_LF = b"\n"


# ---- addresses --------------------------------------------------------------------


class Role(enum.Enum):
    """What a udp port does."""

    #: Sends to a fixed address (and reads its replies).
    SEND = "send"
    #: Receives on a local port (and answers the last sender).
    RECEIVE = "receive"


@dataclass(frozen=True, slots=True)
class UdpAddress:
    """A parsed udp port path. `host` is None for a receive port on --interface."""

    role: Role
    host: str | None
    port: int

    @property
    def multicast(self) -> bool:
        return _is_multicast(self.host)

    def __str__(self) -> str:
        where = format_hostport(self.host, self.port) if self.host is not None else str(self.port)
        return where if self.role is Role.SEND else f"@{where}"


def _is_multicast(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host.partition("%")[0]).is_multicast
    except ValueError:
        return False


def _port_number(text: str, path: str, minimum: int = 1) -> int:
    return port_number(text, path, minimum, "udp")


def parse_address(path: str) -> UdpAddress:
    """Parse a udp port path (see USAGE). Syntax only: names are not resolved.

    Raises UsageError(path, "Invalid address").
    """
    receive = path.startswith("@")
    rest = path[1:] if receive else path
    if ":" not in rest:
        if receive and not rest:
            raise UsageError(path, "Invalid address")
        return UdpAddress(Role.RECEIVE, None, _port_number(rest, path, 0))
    if rest.startswith("["):
        host, sep, port_text = rest[1:].partition("]")
        if not sep or not port_text.startswith(":"):
            raise UsageError(path, "Invalid address")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(path, "Invalid address") from None
        port_text = port_text[1:]
    else:
        host, _, port_text = rest.rpartition(":")
        if ":" in host:
            raise UsageError(path, "Invalid address")
        try:
            checked = parse_interface(host)
        except UsageError:
            raise UsageError(path, "Invalid address") from None
        if checked is None:
            raise UsageError(path, "Invalid address")
    return UdpAddress(
        Role.RECEIVE if receive else Role.SEND, host, _port_number(port_text, path, int(not receive))
    )


def _int_range(name: str, low: int, high: int) -> Any:
    def convert(value: Any) -> int:
        text = str(value).strip()
        if not _NUMBER_RE.match(text) or not low <= int(text) <= high:
            raise UsageError(None, f"Invalid {name} value ({low} to {high})")
        return int(text)

    return convert


# ---- datagrams, sans-IO ------------------------------------------------------------


class DatagramFramer:
    """Cuts the port's output into datagrams of at most `size` bytes.

    With `framed`, only at line ends: a partial line waits for its end, and
    only a line longer than `size` is cut, into datagrams of `size` bytes
    (counted once per line in `cut_lines`). Scans with ``bytes.rfind``, never
    byte by byte.
    """

    __slots__ = ("_cutting", "_partial", "cut_lines", "framed", "size")

    def __init__(self, size: int, framed: bool):
        self.size = size
        self.framed = framed
        self._partial = b""
        #: The line being sent now was cut already (counted once).
        self._cutting = False
        self.cut_lines = 0

    @property
    def waiting(self) -> int:
        """Bytes of a partial line waiting for its end."""
        return len(self._partial)

    def push(self, data: bytes) -> list[bytes]:
        """The datagrams to send now, for `data` written to the port."""
        size = self.size
        if not self.framed:
            if len(data) <= size:
                return [data] if data else []
            return [data[i : i + size] for i in range(0, len(data), size)]
        if self._partial:
            data = self._partial + data
        end = data.rfind(_LF) + 1  # data[:end] is whole lines
        if end == len(data) and end <= size and not self._cutting:
            self._partial = b""
            return [data] if data else []  # the common case: one datagram as it came
        out: list[bytes] = []
        start = 0
        while end - start > size:
            cut = data.rfind(_LF, start, start + size) + 1
            if cut <= start:
                cut = start + size
                self._cut()
            else:
                self._cutting = False
            out.append(data[start:cut])
            start = cut
        if end > start:
            out.append(data[start:end])
            self._cutting = False
            start = end
        while len(data) - start > size:  # a partial line longer than a datagram
            self._cut()
            out.append(data[start : start + size])
            start += size
        self._partial = data[start:]
        return out

    def _cut(self) -> None:
        if not self._cutting:
            self._cutting = True
            self.cut_lines += 1

    def drain(self) -> int:
        """Forget the partial line (the port closes); return its length."""
        n, self._partial = len(self._partial), b""
        return n


# ---- the port ------------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("port",)

    def __init__(self, port: UdpPort):
        self.port = port

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.port._received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.port._error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.port._lost(exc)

    def pause_writing(self) -> None:
        self.port.set_write_paused(True)

    def resume_writing(self) -> None:
        self.port.set_write_paused(False)


class UdpPort(Port):
    """A UDP sender or receiver, named ``UDP(<index>)``."""

    def __init__(
        self,
        hub: HubLink,
        index: int,
        address: UdpAddress,
        *,
        interface: str | None = None,
        frame: Frame = Frame.BYTES,
        datagram_size: int = DEFAULT_DATAGRAM_SIZE,
        ttl: int = DEFAULT_TTL,
        access: AccessList | None = None,
        write_limit: int = DEFAULT_WRITE_LIMIT,
    ):
        super().__init__(hub, index, f"UDP({index})", write_limit)
        self.address = address
        self.interface = interface
        self.ttl = ttl
        self.access = access or AccessList()
        self.framer = DatagramFramer(datagram_size, frame is Frame.LINE)
        #: --datagram-size as given (the framer's size may shrink to the path's).
        self.datagram_size = datagram_size
        #: The datagram transport (typed loosely: asyncio's and uvloop's have write
        #: buffer limits and sizes that DatagramTransport does not declare).
        self._transport: Any = None
        self._task: asyncio.Task[None] | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        #: The bound address, and for a sender the peer, as host:port.
        self.local: str | None = None
        self.peer: str | None = None
        #: A receive port answers the sender it heard from last.
        self._reply_to: Any = None
        self.datagrams_in = 0
        self.datagrams_out = 0
        #: Datagrams (and bytes) from senders --allow/--deny refused.
        self.refused = 0
        self.refused_bytes = 0
        #: ICMP errors for datagrams sent (nobody listening, ...).
        self.send_errors = 0
        self._errors = LogLimiter()
        self._refusals = LogLimiter()
        self._flush_timer: asyncio.TimerHandle | None = None
        #: Datagrams that arrived while reading is paused (the socket cannot pause).
        self._held: collections.deque[bytes] = collections.deque()
        self._held_bytes = 0

    def __repr__(self) -> str:
        read = "paused" if self.xoff_count else "on"
        return f"<UdpPort {self.name} {self.address} read={read} queued={self.queued_bytes()}B>"

    # ---- state ---------------------------------------------------------------------

    def status(self) -> str:
        if self._transport is None:
            return "closed" if self._closed else f"not open ({self.address})"
        if self.address.role is Role.SEND:
            text = f"sending to {self.peer} from {self.local}"
        else:
            text = f"receiving on {self.local}"
        text += f", {self.datagrams_in} datagrams in, {self.datagrams_out} out"
        if self.refused:
            text += f", refused {self.refused} ({self.refused_bytes} B)"
        if self.send_errors:
            text += f", {self.send_errors} not delivered"
        cut = self.framer.cut_lines
        if cut:
            text += f", cut {cut} line{'' if cut == 1 else 's'} longer than a datagram"
        return text

    def port_state(self) -> PortState:
        if self._closed:
            return PortState.CLOSED
        return PortState.CONNECTED if self._transport is not None else PortState.DOWN

    def problem(self) -> str | None:
        if self._transport is None and not self._closed:
            return f"no socket for {self.address}"
        return None

    def snapshot(self) -> dict[str, Any]:
        snap = super().snapshot()
        snap["address"] = self.peer if self.address.role is Role.SEND else self.local
        snap["role"] = self.address.role.value
        snap["peers"] = [self.peer] if self.peer else []
        snap["datagrams"] = {
            "in": self.datagrams_in,
            "out": self.datagrams_out,
            "refused": self.refused,
            "refused_bytes": self.refused_bytes,
            "not_delivered": self.send_errors,
            "cut_lines": self.framer.cut_lines,
        }
        return snap

    # ---- start and stop ------------------------------------------------------------

    def start(self) -> None:
        """Open the socket (a numeric address now, a name in the background). Raises PortError."""
        host = self.address.host
        if host is not None and not _is_numeric(host):
            self._task = self.hub.loop.create_task(self._open_by_name())
            return
        flags = socket.AI_NUMERICHOST | socket.AI_PASSIVE
        where = host or self.interface or _any_host()
        try:
            infos = socket.getaddrinfo(where, self.address.port, type=socket.SOCK_DGRAM, flags=flags)
            sock = self._socket(infos[0][0], infos[0][4])
        except OSError as exc:
            raise PortError(self.name, exc.errno, f"Cannot open {self.address}: {_reason(exc)}") from exc
        self._task = self.hub.loop.create_task(self._attach(sock))

    async def _open_by_name(self) -> None:
        assert self.address.host is not None
        try:
            infos = await self.hub.loop.getaddrinfo(
                self.address.host, self.address.port, type=socket.SOCK_DGRAM
            )
            sock = self._socket(infos[0][0], infos[0][4])
        except OSError as exc:
            log.error("%s: cannot open %s: %s; retrying in 5 s", self.name, self.address, _reason(exc))
            self._task = None
            if not self._closed:
                self._retry = self.hub.loop.call_later(5.0, self._retry_open)
            return
        await self._attach(sock)

    def _retry_open(self) -> None:
        self._retry = None
        if not self._closed:
            self._task = self.hub.loop.create_task(self._open_by_name())

    def _socket(self, family: int, sockaddr: Any) -> socket.socket:
        """A configured, non-blocking socket: bound and joined (receive) or connected
        (send). Raises OSError; nothing leaks."""
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self.address.role is Role.SEND:
                self._sender(sock, family, sockaddr)
            else:
                self._receiver(sock, family, sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock

    def _sender(self, sock: socket.socket, family: int, sockaddr: Any) -> None:
        v6 = family == socket.AF_INET6
        if not v6:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if self.address.multicast:
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, self.ttl)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
                if sockaddr[3]:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, sockaddr[3])
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                if self.interface is not None:
                    sock.setsockopt(
                        socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface)
                    )
        if self.interface is not None:
            sock.bind((self.interface, 0))
        sock.connect(sockaddr)
        # The path's limit: what the connected route's MTU leaves for a payload.
        try:
            mtu = sock.getsockopt(
                socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP, _IPV6_MTU if v6 else _IP_MTU
            )
            self.framer.size = max(1, min(self.datagram_size, mtu - (48 if v6 else 28)))
        except OSError as exc:
            log.debug("%s: no path MTU for %s: %s", self.name, self.address, exc)

    def _receiver(self, sock: socket.socket, family: int, sockaddr: Any) -> None:
        group = self.address.host if self.address.multicast else None
        if group is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # other listeners of the group
        if family == socket.AF_INET6 and self.address.host is None and self.interface is None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::": IPv4 too
        sock.bind(sockaddr)
        if group is None:
            return
        if family == socket.AF_INET6:
            mreq6 = socket.inet_pton(socket.AF_INET6, sockaddr[0].partition("%")[0]) + struct.pack(
                "@I", sockaddr[3]
            )
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
        else:
            local = socket.inet_aton(self.interface) if self.interface is not None else bytes(4)
            mreq = socket.inet_aton(sockaddr[0]) + local
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

    async def _attach(self, sock: socket.socket) -> None:
        try:
            transport, _ = await self.hub.loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        except OSError as exc:
            sock.close()
            log.error("%s: cannot open %s: %s", self.name, self.address, _reason(exc))
            return
        finally:
            self._task = None
        if self._closed:
            transport.close()
            return
        self._transport = transport
        self._transport.set_write_buffer_limits(high=self.high_water, low=self.low_water)
        self.local = _format_sockaddr(sock.getsockname())
        if self.address.role is Role.SEND:
            self.peer = _format_sockaddr(sock.getpeername())
            log.info(
                "%s sends to %s from %s (datagrams up to %d B)",
                self.name,
                self.peer,
                self.local,
                self.framer.size,
            )
        else:
            group = f", member of {self.address.host}" if self.address.multicast else ""
            log.info("%s receives on %s%s", self.name, self.local, group)
        if self.xoff_count:
            self.pause_reading()
        self.set_connected(True)

    def close(self) -> None:
        """Close the socket, drop timers. Never raises."""
        if self._closed:
            return
        self._closed = True
        for handle in (self._retry, self._flush_timer):
            if handle is not None:
                handle.cancel()
        self._retry = self._flush_timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.lose(self.framer.drain(), Drop.UNSENT)
        transport, self._transport = self._transport, None
        if transport is not None:
            unsent = transport.get_write_buffer_size()
            if unsent:
                self.lose(unsent, Drop.UNSENT)
            transport.abort()
        self.connected = False
        if self.refused:
            log.info(
                "%s: refused %d datagrams (%d B) from senders --allow/--deny did not admit",
                self.name,
                self.refused,
                self.refused_bytes,
            )

    # ---- writing --------------------------------------------------------------------

    def send_data(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            self.discard_unheard(len(data))
            return
        if self.address.role is Role.SEND:
            for datagram in self.framer.push(data):
                transport.sendto(datagram)
                self.datagrams_out += 1
            return
        to = self._reply_to
        if to is None:
            self.discard_unheard(len(data))  # nobody sent anything yet
            return
        for datagram in self.framer.push(data):
            transport.sendto(datagram, to)
            self.datagrams_out += 1

    def queued_bytes(self) -> int:
        buffered = self._transport.get_write_buffer_size() if self._transport is not None else 0
        return buffered + self.framer.waiting

    # ---- reading --------------------------------------------------------------------

    def _received(self, data: bytes, addr: Any) -> None:
        if self.address.role is Role.RECEIVE:
            host = str(addr[0]) if isinstance(addr, tuple) else str(addr)
            if self.access and not self.access.permits(peer_ip(host)):
                self._refuse(len(data), host)
                return
            self._reply_to = addr
        self.datagrams_in += 1
        if self.xoff_count:
            self._hold(data)
            return
        self.emit_data(data)

    def _hold(self, data: bytes) -> None:
        """Reading is paused and the socket could not pause: keep the datagram, bounded."""
        if self._held_bytes + len(data) > HELD_MAX_BYTES:
            self.lose(len(data), Drop.QUEUE_FULL)
            return
        self._held.append(data)
        self._held_bytes += len(data)

    def _refuse(self, nbytes: int, host: str) -> None:
        self.refused += 1
        self.refused_bytes += nbytes
        left_out = self._refusals.note(host, self.hub.loop.time())
        if left_out is None:
            self._arm_flush()
            return
        more = f" (and {left_out} more in the last {self._refusals.interval_s:g} s)" if left_out else ""
        log.warning(
            "%s: dropped a datagram from %s (not allowed by --allow/--deny)%s",
            self.name,
            host,
            more,
            extra=SELF_LIMITED,
        )

    def _arm_flush(self) -> None:
        if self._flush_timer is None and not self._closed:
            self._flush_timer = self.hub.loop.call_later(self._refusals.interval_s, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        now = self.hub.loop.time()
        for host, n in self._refusals.flush(now):
            log.warning(
                "%s: dropped %d more datagrams from %s in the last %g s (not allowed by --allow/--deny)",
                self.name,
                n,
                host,
                self._refusals.interval_s,
                extra=SELF_LIMITED,
            )
        for what, n in self._errors.flush(now):
            log.info("%s: %d more datagrams to %s not delivered (%s)", self.name, n, self.peer, what)
        if self._refusals.pending or self._errors.pending:
            self._arm_flush()

    def _error(self, exc: Exception) -> None:
        """An ICMP error for a datagram sent (port unreachable, ...), or a send that failed."""
        self.send_errors += 1
        what = _reason(exc)
        left_out = self._errors.note(what, self.hub.loop.time())
        if left_out is None:
            self._arm_flush()
            return
        log.info("%s: a datagram to %s was not delivered: %s", self.name, self.peer or self._reply_to, what)

    def _lost(self, exc: Exception | None) -> None:
        if self._transport is not None and not self._closed:
            log.error("%s: socket closed: %s", self.name, exc or "")
            self._transport = None
            self.set_connected(False)

    def pause_reading(self) -> None:
        pause = getattr(self._transport, "pause_reading", None)
        if pause is not None:  # asyncio's datagram transport can, uvloop's cannot
            pause()

    def resume_reading(self) -> None:
        held = self._held
        while held and not self.xoff_count:  # an XOFF may come back meanwhile
            data = held.popleft()
            self._held_bytes -= len(data)
            self.emit_data(data)
        resume = getattr(self._transport, "resume_reading", None)
        if resume is not None and not self.xoff_count:
            resume()


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


def _any_host() -> str:
    return "::" if socket.has_ipv6 else "0.0.0.0"


def _format_sockaddr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return format_hostport(str(addr[0]), int(addr[1]))
    return str(addr)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# ---- the driver ------------------------------------------------------------------------


class UdpDriver(Driver):
    """Creates UdpPorts from the sticky options."""

    NAME = "udp"
    DESCRIPTION = "UDP driver: unicast, broadcast and multicast datagrams"
    USAGE = USAGE
    DEFAULTS = {
        "--interface": None,
        "--frame": Frame.BYTES,
        "--datagram-size": DEFAULT_DATAGRAM_SIZE,
        "--ttl": DEFAULT_TTL,
        "--allow": (),
        "--deny": (),
        "--write-limit": DEFAULT_WRITE_LIMIT,
    }

    def convert_option(self, name: str, value: Any) -> Any:
        if name == "--interface":
            return parse_interface(value)
        if name == "--frame":
            return parse_frame(value)
        if name == "--datagram-size":
            return _int_range("--datagram-size", 1, MAX_DATAGRAM_SIZE)(value)
        if name == "--ttl":
            return _int_range("--ttl", 1, 255)(value)
        if name in ("--allow", "--deny"):
            return _netsec.CONVERTERS[name](value)
        if name == "--write-limit":
            return parse_write_limit(value)
        return value

    def create_port(self, index: int, path: str, options: dict[str, Any]) -> UdpPort:
        """Create the port for `path`. Raises UsageError for a bad address or options
        that do not fit it."""
        address = parse_address(path)
        opt = {**self.DEFAULTS, **options}
        interface = opt["--interface"]
        if interface is not None and not _is_numeric(interface):
            raise UsageError(path, "--interface must be an IP address for udp ports")
        if address.multicast and interface is not None and ":" in interface and address.role is Role.RECEIVE:
            raise UsageError(path, "An IPv6 group takes its interface from its %scope, not --interface")
        return UdpPort(
            self.hub,
            index,
            address,
            interface=interface,
            frame=opt["--frame"],
            datagram_size=opt["--datagram-size"],
            ttl=opt["--ttl"],
            access=AccessList(tuple(opt["--allow"] or ()), tuple(opt["--deny"] or ())),
            write_limit=opt["--write-limit"],
        )
