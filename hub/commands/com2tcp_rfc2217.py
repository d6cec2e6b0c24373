"""Serve a serial port over RFC 2217, or attach a remote RFC 2217 port as a local one.

Usage:
  com2tcp-rfc2217 [options] <com_port> <listen_port>
  com2tcp-rfc2217 [options] <com_port> <host> <port>
  com2tcp-rfc2217 [options] --pty=<link> <host> <port>
  com2tcp-rfc2217 (-h | --help)

Server mode (the default with a listen port): the hub is an RFC 2217 access
server in front of the serial port <com_port>; clients connecting to
<listen_port> set its baud rate, data format, DTR, RTS and break, and are told
its modem lines and line errors.

Client mode (the default with <host> <port>): the hub connects to an RFC 2217
server and plays the serial application. With --pty (Linux) the hub makes a
virtual serial port at <link> for local applications: the baud rate and stop
bits an application sets there are sent to the server, and opening and closing
the port raises and drops DTR and RTS on the remote port. (On Windows the same
job needs a com0com pair, and <com_port> is its hub side.)

Options:
  --rfc2217-mode=<m>        c[lient] or s[erver]: which side of RFC 2217 the hub
                            plays. Default: client with <host> <port>, server with
                            a listen port.
  --connect=<state>         [!]cts, dsr, dcd, ring or break: keep the TCP side
                            connected only while this signal of the serial side
                            is on (! inverts). Default: always connected.
  --delay-disconnect=<t>    With --connect: disconnect only when the signal stays
                            off for <t> ms.
  --keep-active=<s>         Send a telnet NOP every <s> seconds.
  --share-com-port          Open the serial port only while a TCP connection
                            needs it (hub4com's --share-mode=on).
  --interface=<if>          The local address to listen on or connect from.
  --reconnect=<t>           Reconnect <t> ms after the connection was lost or
                            refused (d[efault] or n[o] also, as in hub4com).
  --max-clients=<n>         Server mode: serve <n> clients at once (0: any
                            number), each with an RFC 2217 session of its own,
                            on a tcp-multi port. Without this (or the next three
                            options) one client is served at a time, as
                            hub4com does.
  --recv-from=<p>           With several clients: whose data reaches the port,
                            and whose requests may change its settings and
                            lines (the others are answered with the port's
                            current values): none, first, last, last-active or
                            all. Default all.
  --send-to=<p>             With several clients: who gets the port's data:
                            none, first, last, last-active or all. Default all.
  --read-only               With several clients: every client only watches;
                            its data and requests are not applied.
  --baud=<b>                The serial port's baud rate until a client sets
                            one, and after the last one leaves: a positive
                            number or d[efault] (the port keeps its own).
                            Default 19200 (the serial driver's).
  --data=<d>                Its data bits: 5, 6, 7, 8 or d[efault]. Default 8.
  --parity=<p>              Its parity: n[o], o[dd], e[ven], m[ark], s[pace] or
                            d[efault]. Default no.
  --stop=<s>                Its stop bits: 1, 1.5, 2 or d[efault]. Default 1.
  --tls-cert=<file>         TLS (see hub4com --help=tcp): this end's certificate
                            chain (PEM); in server mode clients must use TLS.
  --tls-key=<file>          The private key of --tls-cert (PEM).
  --tls-ca=<file>           Server mode: require client certificates signed by
                            these CAs; client mode: the CAs that sign the server.
  --tls-verify=<v>          Client mode: p[eer] (the default) or n[one].
  --tls-server-name=<name>  Client mode: the name the server's certificate must
                            carry. Default: <host>.
  --allow=<cidrs>           Server mode: accept clients only from these
                            addresses and networks (comma separated).
  --deny=<cidrs>            Server mode: refuse clients from these.
  --max-rate=<n>            Server mode: connection attempts per second per
                            address. Default 100; 0 is no limit.
  --max-connections=<n>     Server mode: connections held at once.
  --pty=<link>              Client mode on Linux: make a virtual serial port at
                            <link> (a symlink to a new pty) instead of using a
                            serial port.
  --trace                   Trace the messages at each layer (on standard error).
  --print-args              Print the equivalent hub4com command line and exit.
  -h, --help                Show this help.
  --version                 Show the version.

The options take their value after = or as the next argument (--connect dsr).
The serial options (--baud, --data, --parity, --stop) need a serial port,
not a pty; the options that choose who may connect (--allow, --deny, the
rate and connection limits) need server mode.

Examples:
  com2tcp-rfc2217 /dev/ttyUSB0 7000
    - serve /dev/ttyUSB0 to RFC 2217 clients on TCP port 7000.
  com2tcp-rfc2217 --pty /tmp/vcom0 server.example 7000
    - applications open /tmp/vcom0 to use the remote port server.example:7000.
  com2tcp-rfc2217 --max-clients 4 --recv-from first /dev/ttyUSB0 7000
    - up to four clients; the first one controls the port, the others watch.
  com2tcp-rfc2217 --baud 115200 --tls-cert s.pem --tls-ca ca.pem /dev/ttyUSB0 7000
    - starts at 115200; only clients with a certificate from ca.pem get in.
  com2tcp-rfc2217 --print-args /dev/ttyUSB0 7000
    - show what it runs, for a hub4com --load file or a script.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from docopt import docopt

from ._common import (
    CommandError,
    HubCommand,
    client_address,
    listen_address,
    option_order,
    run_command,
    serial_value,
)

__all__ = [
    "COM_OPTIONS",
    "PROG",
    "SERVER_COM_CHAIN",
    "SERVER_TCP_CHAIN",
    "Settings",
    "build",
    "hub_args",
    "main",
    "parse",
]

PROG = "com2tcp-rfc2217"

#: Filter arguments of each chain piece (hub4com spec 5.2), by (piece, server mode).
_TELNET = {True: "--comport=server --suppress-echo=yes", False: "--comport=client"}
_COM_PINMAP = {True: "--rts=cts --dtr=dsr --break=break", False: "--rts=cts --dtr=dsr"}
# --flow (not in hub4com's script) carries RFC 2217 flow-control requests to the port.
_COM_LC = {True: "--br=remote --lc=remote --flow=remote", False: "--br=local --lc=local"}
_TCP_PINMAP = {True: "--cts=cts --dsr=dsr --dcd=dcd --ring=ring", False: "--rts=cts --dtr=dsr --break=break"}
_TCP_LC = {True: "--br=local --lc=local --flow=local", False: "--br=remote --lc=remote"}
#: With --pty the application's open state (DSR/CTS from the pty) drives DTR/RTS;
#: a pty reports no break, so the break wire is left out.
_TCP_PINMAP_PTY = "--rts=cts --dtr=dsr"

#: Server mode's chains as (filter module, name, arguments), without the optional
#: pieces (--trace, --connect, --keep-active): on the serial port, and on the TCP
#: port (on each session of a tcp-multi port). The config file's rfc2217 service
#: builds its chains from these.
SERVER_COM_CHAIN = (
    ("escparse", "parse", ""),
    ("purge", "purge", ""),
    ("pinmap", "pinmap", _COM_PINMAP[True]),
    ("linectl", "lc", _COM_LC[True]),
)
SERVER_TCP_CHAIN = (
    ("telnet", "telnet", _TELNET[True]),
    ("lsrmap", "lsrmap", ""),
    ("pinmap", "pinmap", _TCP_PINMAP[True]),
    ("linectl", "lc", _TCP_LC[True]),
)
#: The serial port's options (in either mode): the RFC 2217 side decides flow control.
COM_OPTIONS = ("--octs=off",)

#: Options that serve several clients at once (tcp-multi), passed on as given.
_MULTI = ("--max-clients", "--recv-from", "--send-to", "--read-only")
#: The serial port's settings (values as in the .bat scripts: d[efault] keeps the port's own).
_SERIAL = ("--baud", "--data", "--parity", "--stop")
#: The tcp driver's security options: TLS (both modes) and who may connect (server mode).
_TLS = ("--tls-cert", "--tls-key", "--tls-ca", "--tls-verify", "--tls-server-name")
_ACCESS = ("--allow", "--deny", "--max-rate", "--max-connections")
#: Options passed on to hub4com in the order the user gave them (spec 5.2).
_ORDERED = ("--share-com-port", "--interface", "--reconnect", *_SERIAL, *_TLS, *_ACCESS)

USAGE = __doc__ or ""


@dataclass(frozen=True, slots=True)
class Settings:
    """The parsed command line."""

    server: bool
    com_port: str | None
    pty: str | None
    address: str  #: "<listen port>" or "<host>:<port>"
    connect: str | None = None
    delay_disconnect: str | None = None
    keep_active: str | None = None
    trace: bool = False
    #: hub4com driver options (--share-mode=on, --interface=, --reconnect=), in the user's order.
    driver_options: tuple[str, ...] = ()
    print_args: bool = False
    #: tcp-multi options (--max-clients=4, ...): several clients at once; () for one.
    multi_options: tuple[str, ...] = ()


def _mode(value: str | None, has_host: bool, pty: bool) -> bool:
    """True for server mode. Raises CommandError for a bad value."""
    if value is None:
        return not has_host
    v = value.strip().lower()
    if v and "client".startswith(v):
        return False
    if v and "server".startswith(v):
        if pty:
            raise CommandError("--pty works in client mode only (--rfc2217-mode=c)")
        return True
    raise CommandError(f"invalid --rfc2217-mode value {value!r} (expected c[lient] or s[erver])")


def parse(argv: list[str]) -> Settings | None:
    """Parse the command line; None means help was asked for.

    Raises DocoptExit when the arguments match no usage line, CommandError for a bad value.
    """
    opts = docopt(USAGE, argv, default_help=False)
    if opts["--help"]:
        return None
    pty = opts["--pty"]
    if pty == "":
        raise CommandError("--pty needs a link path")
    has_host = opts["<host>"] is not None
    server = _mode(opts["--rfc2217-mode"], has_host, pty is not None)
    if has_host:
        address = client_address(opts["<host>"], opts["<port>"])
    else:
        address = listen_address(opts["<listen_port>"])
    if opts["--share-com-port"] and pty is not None:
        raise CommandError("--share-com-port applies to a serial port, not to --pty")
    if opts["--delay-disconnect"] is not None and opts["--connect"] is None:
        raise CommandError("--delay-disconnect only works together with --connect")
    multi_options = []
    for name in _MULTI:
        value = opts[name]
        if value is True:
            multi_options.append(name)
        elif value not in (None, False):
            multi_options.append(f"{name}={value}")
    if multi_options and not server:
        raise CommandError(f"{multi_options[0].partition('=')[0]} works in server mode only")
    if multi_options and opts["--connect"] is not None:
        raise CommandError("--connect works with one client at a time, not with several")
    if pty is not None and any(opts[n] is not None for n in _SERIAL):
        given = next(n for n in _SERIAL if opts[n] is not None)
        raise CommandError(f"{given} applies to a serial port, not to --pty")
    if not server and any(opts[n] is not None for n in _ACCESS):
        given = next(n for n in _ACCESS if opts[n] is not None)
        raise CommandError(f"{given} works in server mode only")
    driver_options = []
    for name in option_order(argv, USAGE):
        if name == "--share-com-port" and opts[name]:
            driver_options.append("--share-mode=on")
        elif name in _SERIAL and opts[name] is not None:
            driver_options.append(f"{name}={serial_value(name, opts[name])}")
        elif name in _ORDERED and opts[name] is not None:
            driver_options.append(f"{name}={opts[name]}")
    return Settings(
        server=server,
        com_port=opts["<com_port>"],
        pty=pty,
        address=address,
        connect=opts["--connect"],
        delay_disconnect=opts["--delay-disconnect"],
        keep_active=opts["--keep-active"],
        trace=bool(opts["--trace"]),
        driver_options=tuple(driver_options),
        print_args=bool(opts["--print-args"]),
        multi_options=tuple(multi_options),
    )


def hub_args(s: Settings) -> list[str]:
    """The hub4com arguments for `s`: com2tcp-rfc2217.bat's filter chains (spec 5.2).

    With --pty, port 0 is a pty where Windows needs a com0com pair, and the
    baud rate and line control keep com0com's directions: the pty reports the
    application's termios changes as the *remote* settings (RBR/RLC), as com0com
    reports its partner's through escparse, so linectl on the TCP port stays
    --br=remote --lc=remote (they become SET-BAUDRATE, SET-STOPSIZE); the
    server's answers (LBR/LLC from the telnet client) are set on the pty by
    linectl --br=local --lc=local, like com0com's emulated baud rate. The chain
    keeps only what a pty can carry: no pinmap on the pty (it has no modem lines
    to drive), and no break wire on the TCP side (a pty reports no break); the
    pty's CTS/DSR, on while an application has it open, still drive RTS/DTR.
    """
    server = s.server
    args = list(s.driver_options)
    trace = s.trace

    def traced(group: str, name: str) -> None:
        if trace:
            args.append(f"--create-filter=trace,{group},{name}")

    traced("com", "COM")
    args.append("--create-filter=escparse,com,parse")
    traced("com", "ExM")
    if server:
        args.append("--create-filter=purge,com,purge")
    if s.connect is not None:
        connect = f" --connect={s.connect}"
        if s.delay_disconnect is not None:
            connect += f" --delay-disconnect={s.delay_disconnect}"
        args.append(f"--create-filter=pin2con,com,connect:{connect}")
    if s.pty is None:
        args.append(f"--create-filter=pinmap,com,pinmap:{_COM_PINMAP[server]}")
    args.append(f"--create-filter=linectl,com,lc:{_COM_LC[server]}")
    traced("com", "CxT")
    args.append("--add-filters=0:com")
    traced("tcp", "TCP")
    telnet = _TELNET[server]
    if s.keep_active is not None:
        telnet += f" --keep-active={s.keep_active}"
    args.append(f"--create-filter=telnet,tcp,telnet:{telnet}")
    traced("tcp", "TxM")
    if server:
        args.append("--create-filter=lsrmap,tcp,lsrmap")
    tcp_pinmap = _TCP_PINMAP_PTY if s.pty is not None else _TCP_PINMAP[server]
    args.append(f"--create-filter=pinmap,tcp,pinmap:{tcp_pinmap}")
    args.append(f"--create-filter=linectl,tcp,lc:{_TCP_LC[server]}")
    args.append("--add-filters=1:tcp")
    if s.pty is not None:
        args += ["--use-driver=pty", s.pty]
    else:
        assert s.com_port is not None
        args += [*COM_OPTIONS, s.com_port]
    if s.multi_options:
        # Every client gets its own instances of the tcp filters (tcp-multi sessions).
        args += ["--use-driver=tcp-multi", *s.multi_options, s.address]
        return args
    permanent = "" if s.connect is not None else "*"
    args += ["--use-driver=tcp", f"{permanent}{s.address}"]
    return args


def build(argv: list[str]) -> HubCommand | None:
    """The hub4com command for `argv`; None when help was asked for.

    Raises DocoptExit or CommandError for a bad command line.
    """
    settings = parse(argv)
    if settings is None:
        return None
    return HubCommand(hub_args(settings), settings.print_args)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status (2 for a bad command line)."""
    return run_command(PROG, USAGE, build, argv)


if __name__ == "__main__":
    sys.exit(main())
