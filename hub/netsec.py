"""Network security for TCP listeners and clients: TLS, address filters and connection limits.

Shared by the drivers that listen on or connect to TCP (``tcp``, and the
multi-client listener) and by the hub's HTTP server (``--http``); it lives in
the core so that the core can use it without importing drivers. Everything here is sans-IO except building an
``ssl.SSLContext``: no sockets, no event loop, no clock. Callers pass the time
(``loop.time()``) and the peer's address string as ``accept()`` returned it.

What it provides:

* the option texts (`TLS_USAGE`, `LISTENER_USAGE`), their `DEFAULTS` and
  `CONVERTERS` (option name -> function(text) raising UsageError(None, text));
* `TlsSettings` and `TlsContexts`: TLS 1.2 minimum, standard library ssl only;
  a listener with ``--tls-ca`` requires client certificates; a client verifies
  the server's certificate and host name unless ``--tls-verify=none``;
* `AccessList` (``--allow``/``--deny``, IPv4 and IPv6 CIDRs; IPv4-mapped IPv6
  peers of a dual-stack socket match IPv4 entries);
* `RateLimiter`: connection attempts per second per address (an IPv6 peer
  counts by its /64, since one host usually holds a whole /64), a token
  bucket with a bounded table;
* `ConnectionLimit`: connections held at once per listening address (sessions
  and TLS handshakes together), released through idempotent tickets;
* `LogLimiter`: log a repeated event once per key per interval, with the
  number left out, so floods do not flood the log;
* `Gate`: the above combined for one listening address; `exposure_warning`.

How a listener driver uses it:

1. Put ``TLS_USAGE`` (and, for listeners, ``LISTENER_USAGE``) in the Options
   section of its usage text; merge `DEFAULTS` into its DEFAULTS; in
   ``convert_option`` call ``CONVERTERS[name](value)`` for these names. The
   options are sticky like every driver option.
2. In ``create_port``: ``policy = ListenerPolicy.from_options(options)``; if
   ``policy.tls`` is None call ``check_disabled(options, path)`` (TLS-only
   options given without TLS are an error), else
   ``contexts.get(policy.tls, server_side=True)`` (one `TlsContexts` per
   driver, so ports with the same settings share a context). Both raise a
   one-line UsageError naming the option or file. Ports sharing one
   listening socket must have equal policies (compare them; they are frozen
   dataclasses). Log at start, not here, what ``exposure_warning(...)`` and
   ``contexts.key_warning(policy.tls)`` return, so that a start-up error
   stays one line.
3. One `Gate` per listening socket (``Gate(policy, ports=n)``; update
   ``gate.ports`` as ports come and go). Watch the socket only while
   ``not gate.limit.full`` (and the driver has room). For each ``accept()``:
   ``verdict, ticket = gate.admit(addr[0], loop.time())``. Unless the verdict
   is ADMIT, close the socket at once with SO_LINGER 0 and log
   ``gate.refusal_text(verdict, peer, now)`` if it is not None; nothing the
   peer sent is ever read. Otherwise keep `ticket` with the connection and
   call ``ticket.release()`` exactly when it ends, however it ends (releasing
   twice is harmless); set ``gate.limit.on_release`` to start watching again.
4. With TLS, pass ``ssl=context`` and ``ssl_handshake_timeout`` and
   ``ssl_shutdown_timeout`` of ``policy.tls.timeout_s`` to
   ``loop.connect_accepted_socket`` (uvloop takes the same). Run the handshake
   before the connection takes a session or port, so a slow or failing one
   holds only its ticket. When it raises, count and log with
   ``gate.handshake_failed(peer, exc, now)``; the listener stays up. When a
   refusal or failure was left out of the log (the text was None), call
   ``gate.flush(now)`` after ``gate.log.interval_s`` (again while
   ``gate.log.pending``) and log the lines it returns.

A TCP client port uses `TlsSettings` and `TlsContexts` with
``server_side=False`` and passes ``server_hostname=tls.server_name or host``
to ``loop.create_connection``. ``drivers/tcp.py`` (`_Listener`) does all of
the above and can serve as the example.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .password import DEFAULT_TIMEOUT_S as DEFAULT_PASSWORD_TIMEOUT_S
from .password import FAILURE_WINDOW_S, MAX_FAILURES, Secret

__all__ = [
    "CONVERTERS",
    "DEFAULTS",
    "LISTENER_USAGE",
    "TLS_USAGE",
    "AccessList",
    "ConnectionLimit",
    "Gate",
    "ListenerPolicy",
    "LogLimiter",
    "RateLimiter",
    "Ticket",
    "TlsContexts",
    "TlsSettings",
    "Verdict",
    "Verify",
    "accept_tls_args",
    "check_disabled",
    "exposure_warning",
    "parse_cidr_list",
    "peer_ip",
    "rate_key",
    "tls_reason",
]

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: --tls-timeout default, seconds.
DEFAULT_TLS_TIMEOUT_S = 10.0
#: --max-rate default: connection attempts per second per address.
DEFAULT_MAX_RATE = 100
#: Without --max-connections: this many more than the ports on the address.
EXTRA_CONNECTIONS = 8
#: Refusals and handshake failures are logged once per address per interval.
LOG_INTERVAL_S = 10.0
#: Bounds of the per-address tables (rate limiter, log limiter).
MAX_TRACKED_ADDRESSES = 4096
#: An IPv6 peer is rate-limited by this prefix.
IPV6_RATE_PREFIX = 64
#: --tls-ca value for a client: the system's trust store.
SYSTEM_CA = "system"

TLS_USAGE = f"""\
  --tls-cert=<file>   TLS: this end's certificate chain (PEM). A listener with
                      it speaks TLS; a client presents it to the server. A
                      port uses TLS when this or --tls-ca is set; an empty
                      value resets it.
  --tls-key=<file>    The private key of --tls-cert (PEM, not encrypted; keep
                      it readable by the hub only). Default: in the cert file.
  --tls-ca=<file>     TLS: the CA certificates (PEM) that sign the peer's
                      certificate. A listener then requires client
                      certificates signed by them. A client checks the
                      server's certificate and host name against them, or
                      against the system's trust store if the value is
                      {SYSTEM_CA} or only --tls-cert is given.
  --tls-verify=<v>    p[eer] (the default) verifies the peer as above; n[one]
                      turns verification off (encryption without knowing who
                      is at the other end). Only when asked for.
  --tls-server-name=<name>
                      A client's expected server name (host name check and
                      SNI). Default: the host of the port address.
  --tls-timeout=<s>   Seconds a TLS handshake may take. Default: {DEFAULT_TLS_TIMEOUT_S:g}.
"""

LISTENER_USAGE = f"""\
  --allow=<cidrs>     Listeners: accept connections only from these addresses,
                      a comma-separated list of IPv4 or IPv6 addresses and
                      networks (10.0.0.0/8,::1). Empty (the default) allows
                      every address --deny does not refuse.
  --deny=<cidrs>      Listeners: refuse connections from these addresses and
                      networks; deny wins over allow. Empty resets.
  --max-rate=<n>      Listeners: connection attempts per second per address
                      (an IPv6 address counts by its /64); the excess is
                      refused. 0 is no limit. Default: {DEFAULT_MAX_RATE}.
  --max-connections=<n>
                      Listeners: connections held at once per listening
                      address, sessions and TLS handshakes together; others
                      wait in the kernel's backlog. Default: the number of
                      ports on the address plus {EXTRA_CONNECTIONS}.
"""


# ---- option values ----------------------------------------------------------------


class Verify(enum.Enum):
    """--tls-verify values."""

    #: Verify the peer: a listener with --tls-ca requires client certificates.
    PEER = "peer"
    #: No verification at all (asked for explicitly).
    NONE = "none"


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")
_NUMBER_RE = re.compile(r"[0-9]+\Z")
_SSL_TEXT_RE = re.compile(r"^\[[^\]]*\]\s*(.*?)(?:\s*\(_ssl\.c:\d+\))?$")


def _file(what: str) -> Callable[[str], str | None]:
    def convert(text: str) -> str | None:
        path = text.strip()
        if not path:
            return None
        path = os.path.expanduser(path)
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise UsageError(None, f"Cannot read the {what} file {path}: {exc.strerror}") from None
        return path

    return convert


def _ca_file(text: str) -> str | None:
    if text.strip().lower() == SYSTEM_CA:
        return SYSTEM_CA
    return _file("TLS CA")(text)


def parse_tls_verify(text: str) -> Verify:
    """--tls-verify: p[eer] or n[one], any case. Raises UsageError."""
    t = text.strip().lower()
    for v in Verify:
        if t and v.value.startswith(t):
            return v
    raise UsageError(None, "Invalid TLS verification (peer or none)")


def parse_server_name(text: str) -> str | None:
    """--tls-server-name: a host name or an IP address; '' resets. Raises UsageError."""
    t = text.strip()
    if not t:
        return None
    try:
        return str(ipaddress.ip_address(t))
    except ValueError:
        pass
    if not _HOSTNAME_RE.match(t):
        raise UsageError(None, "Invalid TLS server name")
    return t.lower()


def parse_timeout(text: str) -> float:
    """--tls-timeout: seconds, more than 0 and at most 3600. Raises UsageError."""
    try:
        value = float(text.strip())
    except ValueError:
        raise UsageError(None, "Invalid TLS timeout") from None
    if not 0 < value <= 3600:
        raise UsageError(None, "Invalid TLS timeout (more than 0, at most 3600 seconds)")
    return value


def _count(what: str, minimum: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        t = text.strip()
        if not _NUMBER_RE.match(t) or int(t) < minimum:
            raise UsageError(None, f"Invalid {what}")
        return int(t)

    return convert


def parse_cidr_list(text: str) -> tuple[IpNetwork, ...]:
    """A comma-separated list of IPv4/IPv6 addresses and networks; '' is empty.

    A network with host bits set (10.1.2.3/8) is an error, not silently
    widened: in an access list a typo must not let more in. Raises UsageError
    naming the bad entry.
    """
    nets: list[IpNetwork] = []
    for item in text.split(","):
        entry = item.strip()
        if not entry:
            continue
        bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
        if "%" in bare:
            raise UsageError(None, f"Invalid address or network {entry!r} (no %scope in address lists)")
        try:
            nets.append(ipaddress.ip_network(bare, strict=True))
        except ValueError as exc:
            hint = f" ({exc})" if "host bits" in str(exc) else ""
            raise UsageError(None, f"Invalid address or network {entry!r}{hint}") from None
    return tuple(nets)


DEFAULTS: dict[str, Any] = {
    "--tls-cert": None,
    "--tls-key": None,
    "--tls-ca": None,
    "--tls-verify": Verify.PEER,
    "--tls-server-name": None,
    "--tls-timeout": DEFAULT_TLS_TIMEOUT_S,
    "--allow": (),
    "--deny": (),
    "--max-rate": DEFAULT_MAX_RATE,
    "--max-connections": None,
}

CONVERTERS: dict[str, Callable[[str], Any]] = {
    "--tls-cert": _file("TLS certificate"),
    "--tls-key": _file("TLS key"),
    "--tls-ca": _ca_file,
    "--tls-verify": parse_tls_verify,
    "--tls-server-name": parse_server_name,
    "--tls-timeout": parse_timeout,
    "--allow": parse_cidr_list,
    "--deny": parse_cidr_list,
    "--max-rate": _count("connection rate", 0),
    "--max-connections": _count("connection limit", 1),
}


# ---- addresses ---------------------------------------------------------------------


def peer_ip(host: str) -> IpAddress | None:
    """The peer address `accept()` gave, as an address object, or None if not IP.

    The scope (``%eth0``) is dropped; an IPv4-mapped IPv6 address (a dual-stack
    socket's IPv4 peer) becomes the IPv4 address.
    """
    try:
        addr = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def rate_key(addr: IpAddress | None, host: str) -> str:
    """What the rate limiter counts by: the IPv4 address, or the IPv6 /64."""
    if addr is None:
        return host
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, IPV6_RATE_PREFIX), strict=False))
    return str(addr)


@dataclass(frozen=True, slots=True)
class AccessList:
    """--allow and --deny: deny wins; a non-empty allow list admits only its networks."""

    allow: tuple[IpNetwork, ...] = ()
    deny: tuple[IpNetwork, ...] = ()

    def permits(self, addr: IpAddress | None) -> bool:
        """True if a peer at `addr` may connect (None: not an IP peer)."""
        if addr is None:
            return not self.allow and not self.deny
        if any(addr in net for net in self.deny if net.version == addr.version):
            return False
        if not self.allow:
            return True
        return any(addr in net for net in self.allow if net.version == addr.version)

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def __str__(self) -> str:
        parts = []
        if self.allow:
            parts.append("--allow=" + ",".join(map(str, self.allow)))
        if self.deny:
            parts.append("--deny=" + ",".join(map(str, self.deny)))
        return " ".join(parts) or "everybody"


# ---- TLS ------------------------------------------------------------------------------


class _EncryptedKey(Exception):
    """load_cert_chain asked for a pass phrase (would otherwise prompt on the tty)."""


def _no_password() -> str:
    raise _EncryptedKey


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The TLS options of one port (None of them set: no TLS)."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    verify: Verify = Verify.PEER
    server_name: str | None = None
    timeout_s: float = DEFAULT_TLS_TIMEOUT_S

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TlsSettings | None:
        """The settings in a snapshot of the sticky options, or None without TLS.

        TLS is on when --tls-cert or --tls-ca is set. --tls-key, --tls-verify
        and --tls-server-name alone do not turn it on (see `check_disabled`).
        """
        get = options.get
        settings = cls(
            cert=get("--tls-cert"),
            key=get("--tls-key"),
            ca=get("--tls-ca"),
            verify=get("--tls-verify") or Verify.PEER,
            server_name=get("--tls-server-name"),
            timeout_s=get("--tls-timeout") or DEFAULT_TLS_TIMEOUT_S,
        )
        if settings.cert is None and settings.ca is None:
            return None
        return settings

    @property
    def verifies_peer(self) -> bool:
        """True if the peer must show a certificate we check (a listener: client certs)."""
        return self.verify is Verify.PEER and self.ca is not None

    def check(self, server_side: bool) -> None:
        """Raise UsageError for settings that cannot work together."""
        if self.key is not None and self.cert is None:
            raise UsageError(f"--tls-key={self.key}", "--tls-key needs --tls-cert")
        if server_side:
            if self.cert is None:
                raise UsageError(f"--tls-ca={self.ca}", "A TLS listener needs --tls-cert (its certificate)")
            if self.ca == SYSTEM_CA:
                raise UsageError(
                    f"--tls-ca={self.ca}",
                    "A listener needs --tls-ca=<file> with the CA that signs its clients' certificates",
                )


def check_disabled(options: dict[str, Any], path: str) -> None:
    """TLS-only options given while TLS is off: raise UsageError naming them."""
    given = [name for name in ("--tls-key", "--tls-server-name") if options.get(name) is not None]
    if options.get("--tls-verify") is Verify.NONE:
        given.append("--tls-verify=none")
    if given:
        it = "it" if len(given) == 1 else "them"
        raise UsageError(
            path,
            f"{', '.join(given)} set but TLS is off for this port "
            f"(set --tls-cert or --tls-ca, or reset {it})",
        )


def tls_reason(exc: BaseException) -> str:
    """Plain words for a TLS failure ("certificate verify failed: ...")."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        text = exc.strerror if isinstance(exc.strerror, str) else str(exc)
        m = _SSL_TEXT_RE.match(text)
        words = m.group(1) if m else text
        return words or exc.reason or text
    if isinstance(exc, ConnectionResetError) and not str(exc):
        return "connection closed during the handshake"
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


class TlsContexts:
    """Builds and caches SSL contexts: one per (settings, side).

    Loading happens at start-up, so a bad file ends start-up with one line.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[TlsSettings, bool], ssl.SSLContext] = {}
        self._warned: set[str] = set()

    def get(self, settings: TlsSettings, server_side: bool) -> ssl.SSLContext:
        """The context for `settings`. Raises UsageError naming the option and file."""
        key = (settings, server_side)
        ctx = self._cache.get(key)
        if ctx is None:
            settings.check(server_side)
            ctx = _server_context(settings) if server_side else _client_context(settings)
            self._cache[key] = ctx
        return ctx

    def key_warning(self, settings: TlsSettings) -> str | None:
        """A warning if the private key file is readable by every user (once per file)."""
        key = settings.key or settings.cert
        if key is None or key in self._warned:
            return None
        try:
            mode = os.stat(key).st_mode
        except OSError:
            return None
        if not mode & 0o004:
            return None
        self._warned.add(key)
        return f"the TLS key file {key} is readable by every user (chmod 600 it)"


def _new_context(protocol: int) -> ssl.SSLContext:
    ctx = ssl.SSLContext(protocol)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _load_chain(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    assert settings.cert is not None
    arg = f"--tls-key={settings.key}" if settings.key else f"--tls-cert={settings.cert}"
    try:
        ctx.load_cert_chain(settings.cert, settings.key, password=_no_password)
    except _EncryptedKey:
        raise UsageError(
            arg, "The TLS key is encrypted; give an unencrypted key (protect it with file permissions)"
        ) from None
    except ssl.SSLError as exc:
        where = settings.cert if settings.key is None else f"{settings.cert} with key {settings.key}"
        raise UsageError(arg, f"Cannot load the TLS certificate {where}: {tls_reason(exc)}") from None
    except OSError as exc:
        raise UsageError(arg, f"Cannot load the TLS certificate: {exc.strerror}") from None


def _load_ca(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    if settings.ca is None or settings.ca == SYSTEM_CA:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return
    try:
        ctx.load_verify_locations(cafile=settings.ca)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(
            f"--tls-ca={settings.ca}", f"Cannot load the TLS CA file {settings.ca}: {tls_reason(exc)}"
        ) from None


def _server_context(settings: TlsSettings) -> ssl.SSLContext:
    ctx = _new_context(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(ctx, settings)
    if settings.verifies_peer:
        _load_ca(ctx, settings)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _client_context(settings: TlsSettings) -> ssl.SSLContext:
    ctx = _new_context(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    if settings.verify is Verify.NONE:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        _load_ca(ctx, settings)
    if settings.cert is not None:
        _load_chain(ctx, settings)
    return ctx


# ---- limits ----------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per key: `rate_per_s` attempts per second, bursts of as many.

    The table holds at most `max_keys` keys: keys whose bucket is full again
    are the same as absent and are dropped first, then the least recently seen.
    """

    def __init__(self, rate_per_s: float, max_keys: int = MAX_TRACKED_ADDRESSES, burst: float | None = None):
        if rate_per_s <= 0 or max_keys < 1:
            raise ValueError("rate_per_s and max_keys must be positive")
        self.rate_per_s = rate_per_s
        self.burst = max(1.0, float(rate_per_s if burst is None else burst))
        self.max_keys = max_keys
        #: key -> (tokens, time of last update); ordered by last update.
        self._buckets: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str, now: float) -> bool:
        """Take one token for `key` at time `now`; False if it has none left."""
        entry = self._buckets.pop(key, None)
        if entry is None:
            tokens = self.burst
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
        else:
            tokens = min(self.burst, entry[0] + (now - entry[1]) * self.rate_per_s)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        return allowed

    def peek(self, key: str, now: float) -> bool:
        """Would `allow` let `key` through at `now`? Takes nothing."""
        entry = self._buckets.get(key)
        return entry is None or entry[0] + (now - entry[1]) * self.rate_per_s >= 1.0

    def _prune(self, now: float) -> None:
        refill_s = self.burst / self.rate_per_s
        for k, (_, t) in list(self._buckets.items()):
            if now - t >= refill_s:
                del self._buckets[k]
        while len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]


class Ticket:
    """One connection held under a `ConnectionLimit`; `release()` is idempotent."""

    __slots__ = ("_limit",)

    def __init__(self, limit: ConnectionLimit):
        self._limit: ConnectionLimit | None = limit

    def release(self) -> None:
        limit, self._limit = self._limit, None
        if limit is not None:
            limit._released()


class ConnectionLimit:
    """Counts the connections a listening address holds; at most `limit` at once."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        #: Called after a release (the listener may start accepting again).
        self.on_release: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<ConnectionLimit {self.active}/{self.limit}>"

    @property
    def full(self) -> bool:
        return self.active >= self.limit

    def acquire(self) -> Ticket | None:
        """A ticket for one more connection, or None at the limit."""
        if self.full:
            return None
        self.active += 1
        return Ticket(self)

    def _released(self) -> None:
        self.active -= 1
        if self.on_release is not None:
            self.on_release()


class LogLimiter:
    """Lets an event through once per key per `interval_s`; counts the rest.

    `note()` says whether to log now and how many were left out since the last
    time; `flush()` returns the counts of keys whose interval is over, so the
    caller can log them even when the events stop. At most `max_keys` keys are
    kept (the oldest go first; their counts are then not reported).
    """

    def __init__(self, interval_s: float = LOG_INTERVAL_S, max_keys: int = MAX_TRACKED_ADDRESSES):
        self.interval_s = interval_s
        self.max_keys = max_keys
        #: key -> [time logged, events left out since]
        self._seen: dict[Any, list[float]] = {}

    @property
    def pending(self) -> bool:
        """True if some key has events left out that were not reported yet."""
        return any(entry[1] for entry in self._seen.values())

    def note(self, key: Any, now: float) -> int | None:
        """Record one event. Returns None to stay quiet, else the number left out."""
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.interval_s:
            entry[1] += 1
            return None
        left_out = int(entry[1]) if entry is not None else 0
        self._seen.pop(key, None)
        if len(self._seen) >= self.max_keys:
            self._expire(now)
            while len(self._seen) >= self.max_keys:
                del self._seen[next(iter(self._seen))]
        self._seen[key] = [now, 0]
        return left_out

    def flush(self, now: float) -> list[tuple[Any, int]]:
        """Keys whose interval is over with events left out, and how many; resets them."""
        due = []
        for key, entry in self._seen.items():
            if entry[1] and now - entry[0] >= self.interval_s:
                due.append((key, int(entry[1])))
                entry[0] = now
                entry[1] = 0
        self._expire(now)
        return due

    def _expire(self, now: float) -> None:
        for key, entry in list(self._seen.items()):
            if not entry[1] and now - entry[0] >= self.interval_s:
                del self._seen[key]


# ---- one listening address -----------------------------------------------------------


class Verdict(enum.Enum):
    """What `Gate.admit` decided about one accepted connection."""

    #: Take it (the caller holds the ticket until it ends).
    ADMIT = "admitted"
    #: Not permitted by --allow/--deny.
    DENIED = "not allowed by --allow/--deny"
    #: Over --max-rate for its address.
    RATE_LIMITED = "too many connection attempts"
    #: --max-connections reached (only if the caller accepted while `limit.full`).
    FULL = "too many connections"
    #: The driver's own reason (e.g. a `!` port not in use); counted and logged the same way.
    REFUSED = "not in use"
    #: --password-file: a wrong or missing password (refused after the delay).
    BAD_PASSWORD = "wrong or missing password"
    #: --password-file: the address failed too often lately; refused before it is read.
    LOCKED_OUT = "too many wrong passwords"


@dataclass(frozen=True, slots=True)
class ListenerPolicy:
    """The security options of a listener port; ports sharing a socket need equal ones."""

    access: AccessList = field(default_factory=AccessList)
    max_rate: int = DEFAULT_MAX_RATE
    #: None: EXTRA_CONNECTIONS more than the ports on the address.
    max_connections: int | None = None
    tls: TlsSettings | None = None
    #: --password-file (hub.password): a client sends it before anything else.
    password: Secret | None = None
    password_timeout_s: float = DEFAULT_PASSWORD_TIMEOUT_S

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ListenerPolicy:
        get = options.get
        rate = get("--max-rate")
        return cls(
            access=AccessList(tuple(get("--allow") or ()), tuple(get("--deny") or ())),
            max_rate=DEFAULT_MAX_RATE if rate is None else rate,
            max_connections=get("--max-connections"),
            tls=TlsSettings.from_options(options),
            password=get("--password-file"),
            password_timeout_s=get("--password-timeout") or DEFAULT_PASSWORD_TIMEOUT_S,
        )

    @property
    def authenticates(self) -> bool:
        """True if not everybody who reaches the port gets in (allow-list, client certs, password)."""
        return (
            bool(self.access.allow)
            or (self.tls is not None and self.tls.verifies_peer)
            or self.password is not None
        )


def accept_tls_args(context: ssl.SSLContext | None, policy: ListenerPolicy) -> dict[str, Any]:
    """The TLS keyword arguments of ``loop.connect_accepted_socket`` for a listener
    (``{}`` without TLS): the context and --tls-timeout for handshake and shutdown."""
    if context is None:
        return {}
    timeout_s = policy.tls.timeout_s if policy.tls is not None else None
    return {"ssl": context, "ssl_handshake_timeout": timeout_s, "ssl_shutdown_timeout": timeout_s}


def exposure_warning(name: str, port: int, interface: str | None, policy: ListenerPolicy) -> str | None:
    """The start-up warning for a listener open to everybody, or None.

    Only for the default interface (all of them): an explicit --interface,
    even 0.0.0.0 or ::, says the user chose where it listens.
    """
    if interface is not None or policy.authenticates:
        return None
    tls = " (TLS without --tls-ca does not check who connects)" if policy.tls is not None else ""
    return (
        f"{name} listens on port {port} of every network interface and lets anybody in{tls}; "
        f"use --interface=127.0.0.1 for local use only, --allow=<addresses> or TLS with client "
        f"certificates (--tls-cert, --tls-key, --tls-ca)"
    )


class Gate:
    """Admission control for one listening address: access list, rate, limit, logging.

    `ports` is the number of ports sharing the address (for the default limit).
    Counters: `counts` per verdict, `handshake_failures`.
    """

    def __init__(self, policy: ListenerPolicy, ports: int = 1, log_interval_s: float = LOG_INTERVAL_S):
        self.policy = policy
        self.limit = ConnectionLimit(1)
        self.rate = RateLimiter(policy.max_rate) if policy.max_rate > 0 else None
        #: --password-file: failed passwords per address (MAX_FAILURES per FAILURE_WINDOW_S).
        self.failures = (
            RateLimiter(MAX_FAILURES / FAILURE_WINDOW_S, burst=MAX_FAILURES)
            if policy.password is not None
            else None
        )
        self.log = LogLimiter(log_interval_s)
        self.counts: dict[Verdict, int] = dict.fromkeys(Verdict, 0)
        self.handshake_failures = 0
        self.ports = ports

    @property
    def ports(self) -> int:
        return self._ports

    @ports.setter
    def ports(self, n: int) -> None:
        self._ports = n
        configured = self.policy.max_connections
        self.limit.limit = configured if configured is not None else n + EXTRA_CONNECTIONS

    def admit(self, host: str, now: float) -> tuple[Verdict, Ticket | None]:
        """Decide about a connection accepted from `host` (as accept() gave it).

        Call only while not `limit.full`. Returns (ADMIT, ticket) or (verdict, None).
        """
        addr = peer_ip(host)
        if not self.policy.access.permits(addr):
            verdict = Verdict.DENIED
        elif self.failures is not None and not self.failures.peek(rate_key(addr, host), now):
            verdict = Verdict.LOCKED_OUT
        elif self.rate is not None and not self.rate.allow(rate_key(addr, host), now):
            verdict = Verdict.RATE_LIMITED
        else:
            ticket = self.limit.acquire()
            if ticket is not None:
                self.counts[Verdict.ADMIT] += 1
                return Verdict.ADMIT, ticket
            verdict = Verdict.FULL  # the caller accepted while limit.full
        self.counts[verdict] += 1
        return verdict, None

    def refused(self, verdict: Verdict) -> None:
        """Count a refusal the driver decided itself (REFUSED)."""
        self.counts[verdict] += 1

    def refusal_text(self, verdict: Verdict, peer: str, now: float) -> str | None:
        """The log line for a refused connection from `peer`, or None to stay quiet."""
        host = _host_of(peer)
        left_out = self.log.note((verdict, host), now)
        if left_out is None:
            return None
        more = self._more(left_out)
        if verdict is Verdict.RATE_LIMITED:
            return (
                f"refused connection from {peer} (more than {self.policy.max_rate} attempts per second)"
                f"{more}; further refusals of {host} are logged once per {self.log.interval_s:g} s"
            )
        return f"refused connection from {peer} ({verdict.value}){more}"

    def password_failed(self, peer: str, reason: str, now: float) -> str | None:
        """Count a refused password (`reason` in words, never the bytes); the log line or None."""
        self.counts[Verdict.BAD_PASSWORD] += 1
        host = _host_of(peer)
        if self.failures is not None:
            self.failures.allow(rate_key(peer_ip(host), host), now)
        left_out = self.log.note((Verdict.BAD_PASSWORD, host), now)
        if left_out is None:
            return None
        return f"refused {peer}: {reason}{self._more(left_out)}"

    def handshake_failed(self, peer: str, exc: BaseException, now: float) -> str | None:
        """Count a failed TLS handshake; the log line, or None to stay quiet."""
        self.handshake_failures += 1
        left_out = self.log.note(("tls", _host_of(peer)), now)
        if left_out is None:
            return None
        return f"TLS handshake with {peer} failed: {tls_reason(exc)}{self._more(left_out)}"

    def flush(self, now: float) -> list[str]:
        """Lines for the events left out whose interval is over."""
        lines = []
        for (kind, host), n in self.log.flush(now):
            what = "failed TLS handshakes" if kind == "tls" else f"refused connections ({kind.value})"
            lines.append(f"{n} more {what} from {host} in the last {self.log.interval_s:g} s")
        return lines

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data (status page, JSON API, metrics)."""
        return {
            "admitted": self.counts[Verdict.ADMIT],
            "refused": {v.name.lower(): n for v, n in self.counts.items() if v is not Verdict.ADMIT},
            "tls_failures": self.handshake_failures,
            "connections": self.limit.active,
            "max_connections": self.limit.limit,
        }

    def summary(self) -> str:
        """Counters in words, for the log when the listener closes."""
        c = self.counts
        return (
            f"admitted {c[Verdict.ADMIT]}, refused {c[Verdict.DENIED]} by --allow/--deny, "
            f"{c[Verdict.RATE_LIMITED]} by --max-rate, {c[Verdict.FULL]} over --max-connections, "
            f"{c[Verdict.REFUSED]} not in use; "
            f"{self.handshake_failures} failed TLS handshakes"
            + (
                f"; {c[Verdict.BAD_PASSWORD]} wrong or missing passwords, "
                f"{c[Verdict.LOCKED_OUT]} refused for too many of them"
                if self.policy.password is not None
                else ""
            )
        )

    def _more(self, left_out: int) -> str:
        if not left_out:
            return ""
        return f" (and {left_out} more in the last {self.log.interval_s:g} s)"


def _host_of(peer: str) -> str:
    """The host part of ``host:port`` or ``[v6]:port``."""
    host = peer.rpartition(":")[0] if ":" in peer else peer
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host
