"""The HTTP server's command-line options: --http and its security options.

Parsed like a driver's sticky options (the usage text below is the parser),
without importing the web server, so a hub without --http never loads aiohttp.
The security options are the TCP listeners' (`hub.netsec`) with an ``--http-``
prefix: the same TLS with client certificates, --allow/--deny, --max-rate and
--max-connections, checked the same way before a request is read.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from .. import netsec
from ..errors import UsageError
from ..options import match_option, option_names, parse_options

__all__ = ["DEFAULT_HTTP_HOST", "USAGE", "HttpOptions", "HttpSettings", "parse_http_address"]

#: Where --http=<port> listens: loopback only, unless an address is given.
DEFAULT_HTTP_HOST = "127.0.0.1"

USAGE = f"""\
Usage: hub4com [options]

HTTP server (off by default): a live status page, a JSON API, live taps of
ports, Prometheus metrics and a health check (see README.md, "Watching the hub").

Options:
  --http=<[addr:]port>      Serve HTTP on <port> (0 picks a free one; the log
                            says which) of <addr>: an IPv4 address, an IPv6
                            address in brackets ([::1]:8080) or a host name.
                            Default address {DEFAULT_HTTP_HOST} (this machine only);
                            0.0.0.0 or [::] listens on every interface.
  --http-tls-cert=<file>    Serve HTTPS with this certificate chain (PEM).
  --http-tls-key=<file>     Its private key (PEM). Default: in the cert file.
  --http-tls-ca=<file>      Require client certificates signed by these CAs.
  --http-tls-timeout=<s>    Seconds a TLS handshake may take. Default {netsec.DEFAULT_TLS_TIMEOUT_S:g}.
  --http-allow=<cidrs>      Accept connections only from these addresses and
                            networks (as --allow of TCP listeners).
  --http-deny=<cidrs>       Refuse connections from these; deny wins.
  --http-max-rate=<n>       Connection attempts per second per address.
                            Default {netsec.DEFAULT_MAX_RATE}; 0 is no limit.
  --http-max-connections=<n>
                            Connections held at once. Default 64.
  --required=<Lst>          Ports that must work for /healthz to answer 200:
                            a port list, All (the default) or none. A serial
                            device that is gone, a listener that cannot listen,
                            a permanent TCP client or an MQTT port without its
                            peer does not work; waiting for a client does.
"""

#: --http-max-connections default: page views, API clients and taps together.
DEFAULT_MAX_CONNECTIONS = 64

_PREFIX = "--http-"
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")


@dataclass(frozen=True)
class HttpSettings:
    """Where and how the HTTP server listens."""

    host: str
    port: int
    policy: netsec.ListenerPolicy

    @property
    def url(self) -> str:
        scheme = "https" if self.policy.tls is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"


def parse_http_address(text: str) -> tuple[str, int]:
    """--http: ``<port>``, ``<addr>:<port>`` or ``[<IPv6>]:<port>``. Raises UsageError."""
    t = text.strip()
    host = DEFAULT_HTTP_HOST
    port_text = t
    if t.startswith("["):
        inner, sep, rest = t[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise UsageError(None, "Invalid --http address (e.g. 8080, 0.0.0.0:8080 or [::1]:8080)")
        try:
            host = str(ipaddress.IPv6Address(inner))
        except ValueError:
            raise UsageError(None, f"Invalid IPv6 address {inner!r} in --http") from None
        port_text = rest[1:]
    elif ":" in t:
        host, _, port_text = t.rpartition(":")
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            if not _HOSTNAME_RE.match(host) or host.replace(".", "").isdigit():
                raise UsageError(None, f"Invalid address {host!r} in --http") from None
    if not _PORT_RE.match(port_text) or int(port_text) > 65535:
        raise UsageError(None, "Invalid --http port (0 to 65535)")
    return host, int(port_text)


class HttpOptions:
    """Collects the HTTP options from the command line (any position, last one wins)."""

    def __init__(self) -> None:
        self._names = option_names(USAGE) - {"--required"}
        self.address: tuple[str, int] | None = None
        #: Security options in the TCP listeners' spelling (--tls-cert, --allow, ...).
        self.options: dict[str, Any] = dict(netsec.DEFAULTS)
        self.options["--max-connections"] = DEFAULT_MAX_CONNECTIONS
        self._given: set[str] = set()

    def config_arg(self, arg: str) -> bool:
        """Take `arg` if it is an HTTP option. Raises UsageError for a bad value."""
        name = match_option(arg, self._names)
        if name is None:
            return False
        for key, value in parse_options(USAGE, [arg], self._names).items():
            self._given.add(key)
            if key == "--http":
                self.address = parse_http_address(str(value))
                continue
            plain = "--" + key[len(_PREFIX) :]
            try:
                self.options[plain] = netsec.CONVERTERS[plain](str(value))
            except UsageError as exc:
                raise UsageError(arg, exc.text) from None
        return True

    def settings(self) -> HttpSettings | None:
        """The settings, or None without --http. Raises UsageError (TLS files, options)."""
        if self.address is None:
            if self._given:
                name = sorted(self._given)[0]
                raise UsageError(name, f"{name} needs --http")
            return None
        policy = netsec.ListenerPolicy.from_options(self.options)
        try:
            if policy.tls is None:
                netsec.check_disabled(self.options, "--http")
            else:
                # Load once now, so a bad file is a start-up error naming the option.
                netsec.TlsContexts().get(policy.tls, server_side=True)
        except UsageError as exc:  # name our options, not the TCP listeners'
            arg = exc.arg.replace("--tls-", "--http-tls-") if exc.arg else exc.arg
            raise UsageError(arg, exc.text.replace("--tls-", "--http-tls-")) from None
        host, port = self.address
        return HttpSettings(host, port, policy)
