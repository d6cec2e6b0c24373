"""Carry several serial ports over one serial or TCP link (multiplexer).

Usage:
  multiplexer [options] <linkport> [options] <subport1> [[options] <subport2> ...]
  multiplexer (-h | --help)

Run it on both ends of a link. On the server end the sub-ports are real serial
devices; on the client end they are virtual serial ports that applications
open. Each pair of sub-ports, in the order given on both ends, is one RFC 2217
session tagged onto the link: what an application writes on the client's
first sub-port comes out of the server's first device and the other way
round, and the baud rate, data format, DTR, RTS and break the application sets
are applied to that device, whose modem lines and line errors come back.

The link port is a serial device (/dev/ttyS0) or, with --link-type tcp, a TCP
listen port (7000) or a <host>:<port> to connect to (a client reconnects at
once when the connection is lost).

The sub-ports (Linux):
  server mode  a serial device, e.g. /dev/ttyUSB0, for an application on the
               client end
  client mode  the path of a virtual serial port (a symlink to a new pty) that
               the hub makes for a local application, e.g. /tmp/vcom1 (on
               Windows the hub side of a com0com pair); the application's
               baud rate and stop bits, and its opening and closing of the
               port as DTR and RTS, are sent to the server's device

Options are read in order and apply to what follows them:
  --mode <m>            The mode of the following sub-ports: c[lient] (the
                        default) or s[erver].
  --link-type <t>       serial (the default) or tcp; before the link port.
  --interface <if>      With a tcp link: the local address to listen on or to
                        connect from; before the link port (Linux).
  --baud <b>            Baud rate of the following serial ports (the link and
                        server sub-ports): a positive number or d[efault], the
                        port's current setting. Default 19200. On server
                        sub-ports it is the initial value only: the client's
                        application sets it.
  --data <d>            Data bits: 5 to 8 or d[efault]. Default 8.
  --parity <p>          Parity: n[o], o[dd], e[ven], m[ark], s[pace] or
                        d[efault]. Default no.
  --stop <s>            Stop bits: 1, 1.5, 2 or d[efault]. Default 1.
  --trace               Trace the messages of everything after this option
                        (on standard error).
  --secret <s>          Not supported: hub4com's RC4 link encryption is no
                        protection. Protect a TCP link with TLS instead (see
                        hub4com --help=crypt).
  --print-args          Print the equivalent hub4com command line and exit.
  -h, --help            Show this help.
  --version             Show the version.

An option's value may also follow an = sign (--mode=server).

Examples:
  multiplexer --baud 115200 /dev/ttyS0 --mode server /dev/ttyUSB0 /dev/ttyUSB1
    - the server end of a serial link at 115200 baud with two devices.
  multiplexer --baud 115200 /dev/ttyS0 /tmp/vcom1 /tmp/vcom2
    - the client end: applications open /tmp/vcom1 and /tmp/vcom2.
  multiplexer --link-type tcp 7000 --mode server /dev/ttyUSB0 /dev/ttyUSB1
  multiplexer --link-type tcp server.example:7000 /tmp/vcom1 /tmp/vcom2
    - the same over TCP.
  multiplexer --print-args --link-type tcp 7000 --mode s /dev/ttyUSB0
    - show the hub4com command line it runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from ._common import CommandError, HubCommand, check_port_of, run_command, serial_value

__all__ = ["PROG", "USAGE", "Settings", "SubPort", "build", "hub_args", "main", "parse"]

PROG = "multiplexer"
USAGE: str = __doc__ or ""

#: Tags go from 0 to 254, one per sub-port (255 is reserved, as in hub4com).
MAX_SUBPORTS = 255
#: Write limit of each sub-port, and per sub-port of the link. multiplexer.bat
#: used 256 bytes, sized for 19200 baud; this hub reads in large chunks, and a
#: sub-port cannot slow the link down, so a small queue would drop data.
SUBPORT_WRITE_LIMIT = 64 * 1024

_VALUE_OPTIONS = (
    "--mode",
    "--link-type",
    "--interface",
    "--baud",
    "--data",
    "--parity",
    "--stop",
    "--secret",
)
_FLAGS = ("--trace", "--print-args", "--help")
_NOT_SUPPORTED_SECRET = (
    "--secret is not supported (hub4com's RC4 obfuscation is no protection); "
    "protect a TCP link with TLS instead: hub4com --help=crypt"
)


@dataclass(frozen=True, slots=True)
class SubPort:
    """One sub-port and what was in force where it stands on the command line."""

    path: str
    server: bool
    trace: bool
    #: Serial options (--baud=...) given just before it, in order.
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Settings:
    """The parsed command line."""

    link: str
    tcp_link: bool
    #: --trace was given before the link port.
    link_trace: bool
    #: Options given before the link port (--interface=, serial options), in order.
    link_options: tuple[str, ...]
    subports: tuple[SubPort, ...] = field(default_factory=tuple)
    print_args: bool = False


def _split(token: str) -> tuple[str, str | None]:
    """('--name', 'value') for '--name=value', ('--name', None) for '--name'."""
    name, sep, value = token.partition("=")
    return name.lower(), (value if sep else None)


def _mode(value: str) -> bool:
    """True for server mode. Raises CommandError."""
    v = value.strip().lower()
    if v and "client".startswith(v):
        return False
    if v and "server".startswith(v):
        return True
    raise CommandError(f"invalid --mode value {value!r} (expected c[lient] or s[erver])")


def _link_type(value: str) -> bool:
    """True for a TCP link. Raises CommandError."""
    v = value.strip().lower()
    if v in ("serial", "tcp"):
        return v == "tcp"
    raise CommandError(f"invalid --link-type value {value!r} (expected serial or tcp)")


def parse(argv: list[str]) -> Settings | None:
    """Parse the command line (options apply to what follows them); None means help.

    Raises CommandError for a bad command line.
    """
    server = False
    tcp_link = False
    trace = False
    link_trace = False
    print_args = False
    link: str | None = None
    link_options: list[str] = []
    pending: list[str] = []
    interface_given = False
    subports: list[SubPort] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "-h":
            return None
        if token.startswith("-") and token != "-":
            name, value = _split(token)
            if name in _FLAGS and value is None:
                if name == "--help":
                    return None
                if name == "--trace":
                    trace = True
                else:
                    print_args = True
                continue
            if name not in _VALUE_OPTIONS:
                raise CommandError(f"unknown option {token}")
            if value is None:
                if i >= len(argv):
                    raise CommandError(f"{name} requires a value")
                value = argv[i]
                i += 1
            if name == "--secret":
                raise CommandError(_NOT_SUPPORTED_SECRET)
            if name == "--mode":
                server = _mode(value)
            elif name in ("--link-type", "--interface"):
                if link is not None:
                    raise CommandError(f"{name} must come before the link port")
                if name == "--link-type":
                    tcp_link = _link_type(value)
                else:
                    if not value:
                        raise CommandError("--interface needs an address")
                    interface_given = True
                    pending.append(f"--interface={value}")
            else:
                pending.append(f"{name}={serial_value(name, value)}")
            continue
        if not token:
            raise CommandError("empty port argument")
        if link is None:
            link = token
            link_trace = trace
            link_options, pending = pending, []
            continue
        if len(subports) == MAX_SUBPORTS:
            raise CommandError(f"too many sub-ports (at most {MAX_SUBPORTS}, one per tag)")
        subports.append(SubPort(token, server, trace, tuple(pending)))
        pending = []
    if link is None:
        raise CommandError("missing the link port and sub-ports")
    if not subports:
        raise CommandError("missing sub-ports after the link port")
    if interface_given and not tcp_link:
        raise CommandError("--interface needs a tcp link (--link-type tcp)")
    if tcp_link:
        check_port_of(link, "link port")
    if pending:
        raise CommandError(f"{pending[-1].split('=', 1)[0]} must come before a port it applies to")
    _connector_names(subports)
    return Settings(link, tcp_link, link_trace, tuple(link_options), tuple(subports), print_args)


def _connector_names(subports: list[SubPort]) -> list[str]:
    """The base names of the connector ports of each sub-port (the path's last part).

    Raises CommandError when two sub-ports would share a name or a name has a
    character --bi-connect cannot carry.
    """
    names: list[str] = []
    for sub in subports:
        name = os.path.basename(sub.path.rstrip("/")) or sub.path
        if any(c in name for c in ",:"):
            raise CommandError(f"sub-port {sub.path!r}: its name cannot contain ',' or ':'")
        if name in names:
            other = subports[names.index(name)].path
            raise CommandError(f"sub-ports {other!r} and {sub.path!r} end in the same name {name!r}")
        names.append(name)
    return names


def _group_lines(trace: bool, lines: list[tuple[str, str | None]]) -> list[str]:
    """Filter definitions; (trace group, trace name) items become traces if `trace`."""
    out = []
    for text, trace_name in lines:
        if trace_name is None:
            out.append(text)
        elif trace:
            out.append(f"--create-filter=trace,{text},{trace_name}")
    return out


def _client_filters(trace: bool) -> list[str]:
    """Groups serialC (on the pty sub-port) and telnetC (RFC 2217 client on muxB).

    multiplexer.bat's serialC also has pinmap --rts=cts --dtr=dsr, and telnetC's
    pinmap wires break: a pty has no output lines and reports no break, so
    those are left out.
    """
    return _group_lines(
        trace,
        [
            ("serialC", "COM"),
            ("--create-filter=escparse,serialC,parse", None),
            ("serialC", "ExM"),
            ("--create-filter=linectl,serialC,lc:--br=local --lc=local", None),
            ("serialC", "CxB"),
            ("telnetC", "muxB"),
            ("--create-filter=telnet,telnetC,telnet:--comport=client", None),
            ("telnetC", "TxM"),
            ("--create-filter=pinmap,telnetC,pinmap:--rts=cts --dtr=dsr", None),
            ("--create-filter=linectl,telnetC,lc:--br=remote --lc=remote", None),
        ],
    )


def _server_filters(trace: bool) -> list[str]:
    """Groups serialS (on the serial sub-port) and telnetS (RFC 2217 server on muxB)."""
    return _group_lines(
        trace,
        [
            ("serialS", "COM"),
            ("--create-filter=escparse,serialS,parse", None),
            ("serialS", "ExM"),
            ("--create-filter=purge,serialS,purge", None),
            ("--create-filter=pinmap,serialS,pinmap:--rts=cts --dtr=dsr --break=break", None),
            ("--create-filter=linectl,serialS,lc:--br=remote --lc=remote", None),
            ("serialS", "CxB"),
            ("telnetS", "muxB"),
            ("--create-filter=telnet,telnetS,telnet:--comport=server --suppress-echo=yes", None),
            ("telnetS", "BxM"),
            ("--create-filter=lsrmap,telnetS,lsrmap", None),
            ("--create-filter=pinmap,telnetS,pinmap:--cts=cts --dsr=dsr --dcd=dcd --ring=ring", None),
            ("--create-filter=linectl,telnetS,lc:--br=local --lc=local", None),
        ],
    )


def _subport(sub: SubPort, name: str, tag: int, mux_a: int) -> list[str]:
    """multiplexer.bat's ADD_SUBPORT fragment for one sub-port.

    Ports: <name>-muxA (connector, tag filter, routed to and from the link),
    <name>-muxB (connector joined to muxA, RFC 2217 filters) and the sub-port
    itself (serial device in server mode, pty in client mode), routed to and
    from muxB.
    """
    mux_b, port = mux_a + 1, mux_a + 2
    mode = "S" if sub.server else "C"
    args = ["--use-driver=connector", f"{name}-muxA"]
    if sub.trace:
        args.append(f"--create-filter=trace,tag{tag},muxA")
    args.append(f"--create-filter=tag,tag{tag}:--tag={tag}")
    if sub.trace:
        args.append(f"--create-filter=trace,tag{tag},TxL")
    args += [
        f"--add-filters={mux_a}:tag{tag}",
        f"--bi-route=0:{mux_a}",
        f"--no-default-fc-route={mux_a}:0",
        f"{name}-muxB",
        f"--bi-connect={name}-muxA:{name}-muxB",
        f"--add-filters={mux_b}:telnet{mode}",
    ]
    if sub.server:
        args += ["--use-driver=serial", "--octs=off"]
    else:
        args.append("--use-driver=pty")
    args += [
        f"--write-limit={SUBPORT_WRITE_LIMIT}",
        sub.path,
        f"--bi-route={mux_b}:{port}",
        f"--add-filters={port}:serial{mode}",
    ]
    return args


def hub_args(s: Settings) -> list[str]:
    """The hub4com arguments for `s`, as multiplexer.bat generates them (spec 5.4).

    The filter groups and sub-port fragments the .bat loads from itself with
    --load are written out in place.
    """
    args: list[str] = []
    if s.link_trace:
        args += ["--create-filter=trace,linkport,COM", "--add-filters=0:linkport"]
    first_client = next((sub for sub in s.subports if not sub.server), None)
    if first_client is not None:
        args += _client_filters(first_client.trace)
    first_server = next((sub for sub in s.subports if sub.server), None)
    if first_server is not None:
        args += _server_filters(first_server.trace)
    args.append(f"--write-limit={SUBPORT_WRITE_LIMIT * len(s.subports)}")
    args += s.link_options
    if s.tcp_link:
        args += ["--use-driver=tcp", f"*{s.link}", "--use-driver=serial"]
    else:
        args.append(s.link)
    names = _connector_names(list(s.subports))
    for tag, (sub, name) in enumerate(zip(s.subports, names, strict=True)):
        args += sub.options
        args += _subport(sub, name, tag, 1 + 3 * tag)
    return args


def build(argv: list[str]) -> HubCommand | None:
    """The hub command for `argv`; None for --help. Raises CommandError."""
    s = parse(argv)
    if s is None:
        return None
    return HubCommand(hub_args(s), s.print_args)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status (2 for a bad command line)."""
    return run_command(PROG, USAGE, build, argv)


if __name__ == "__main__":
    sys.exit(main())
