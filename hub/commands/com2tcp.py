"""Connect a serial port to a TCP client or server, raw or telnet (com2tcp).

Usage:
  com2tcp [options] <com_port> <host> <port>
  com2tcp [options] <com_port> <listen_port>
  com2tcp [options] --pty=<link> <host> <port>
  com2tcp [options] --pty=<link> <listen_port>
  com2tcp (-h | --help)

Client mode (<host> <port>): the hub connects to <host>:<port> and carries
data between it and the serial port <com_port> (a device such as /dev/ttyUSB0).
Server mode (<listen_port>): the hub accepts a TCP connection on <listen_port>
instead. Data is passed unchanged (raw), or as telnet with --telnet.

By default the TCP side follows DSR of the serial port, as the original
com2tcp does: the hub connects when DSR comes on, disconnects when it goes
off, and reconnects a second after losing the connection while DSR is on.
With --ignore-dsr the TCP side stays connected all the time instead.

With --pty (Linux) the hub makes a virtual serial port at <link> (a symlink to
a new pty) instead of using a serial device: an application opening <link>
is the DSR signal, so the hub connects while an application has the port open.
(On Windows the same job needs a com0com pair, and <com_port> is its hub side.)

Options:
  --telnet              Speak telnet (RFC 854) on the TCP side.
  --terminal=<type>     The terminal type sent when the telnet peer asks
                        (RFC 1091); only used together with --telnet.
  --baud=<b>            Baud rate of <com_port>: a positive number or d[efault]
                        (keep the port's current setting). Default 19200.
  --data=<d>            Data bits: 5 to 8 or d[efault]. Default 8.
  --parity=<p>          Parity: n[o], o[dd], e[ven], m[ark], s[pace] or
                        d[efault]. Default no.
  --stop=<s>            Stop bits: 1, 1.5, 2 or d[efault]. Default 1.
  --ignore-dsr          Do not wait for DSR before connecting, do not
                        disconnect when DSR goes off, and pass on what is
                        received while DSR is off.
  --connect-dtr         Raise DTR of <com_port> while the TCP side is
                        connected, and drop it when the connection ends.
  --awak-seq=<seq>      Wait for the awakening sequence <seq> from the
                        serial port before connecting (client mode); the
                        data before it and <seq> itself are not sent.
  --interface=<if>      The local address to connect from (client mode) or
                        to listen on (server mode).
  --pty=<link>          Make a virtual serial port at <link> instead of
                        using a serial device (Linux).
  --print-args          Print the equivalent hub4com command line and exit.
  -h, --help            Show this help.
  --version             Show the version.

The options take their value after = or as the next argument (--baud 9600).
The serial options (--baud, --data, --parity, --stop, --connect-dtr) need a
serial device; a pty has neither a line speed of its own nor a DTR line.

Examples:
  com2tcp --ignore-dsr /dev/ttyUSB0 7000
    - serve /dev/ttyUSB0 as raw TCP on port 7000.
  com2tcp --telnet --pty /tmp/vcom0 bbs.example.org telnet
    - applications open /tmp/vcom0 to reach a telnet server; the hub
      connects while an application has the port open.
  com2tcp --print-args --baud 9600 /dev/ttyS0 host.example 7000
    - show the hub4com command line it runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from docopt import docopt

from ._common import (
    CommandError,
    HubCommand,
    client_address,
    filter_value,
    listen_address,
    option_order,
    run_command,
    serial_value,
)

__all__ = ["PROG", "USAGE", "Settings", "build", "hub_args", "main", "parse"]

PROG = "com2tcp"
USAGE: str = __doc__ or ""

#: Options passed on to hub4com in the order the user gave them (spec 5.1).
_ORDERED = ("--interface", "--baud", "--data", "--parity", "--stop")
_SERIAL_ONLY = ("--baud", "--data", "--parity", "--stop", "--connect-dtr")

#: --reconnect of the TCP port: after a second by default; d[efault] (no
#: reconnecting for a non-permanent client) with --awak-seq or --ignore-dsr.
_RECONNECT = "1000"


@dataclass(frozen=True, slots=True)
class Settings:
    """The parsed command line."""

    com_port: str | None
    pty: str | None
    #: "<host>:<port>" or "<listen port>".
    address: str
    telnet: bool = False
    terminal: str | None = None
    ignore_dsr: bool = False
    connect_dtr: bool = False
    awak_seq: str | None = None
    #: --interface= and the serial options, in the user's order.
    driver_options: tuple[str, ...] = ()
    print_args: bool = False


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
    if pty is not None:
        for name in _SERIAL_ONLY:
            if opts[name]:
                raise CommandError(f"{name} applies to a serial device, not to --pty")
    if opts["<host>"] is not None:
        address = client_address(opts["<host>"], opts["<port>"])
    else:
        address = listen_address(opts["<listen_port>"])
    driver_options = []
    for name in option_order(argv, USAGE):
        value = opts.get(name)
        if name not in _ORDERED or value is None:
            continue
        if name != "--interface":
            value = serial_value(name, value)
        driver_options.append(f"{name}={value}")
    return Settings(
        com_port=opts["<com_port>"],
        pty=pty,
        address=address,
        telnet=bool(opts["--telnet"]),
        terminal=opts["--terminal"],
        ignore_dsr=bool(opts["--ignore-dsr"]),
        connect_dtr=bool(opts["--connect-dtr"]),
        awak_seq=opts["--awak-seq"],
        driver_options=tuple(driver_options),
        print_args=bool(opts["--print-args"]),
    )


def hub_args(s: Settings) -> list[str]:
    """The hub4com arguments for `s`, as com2tcp.bat generates them (spec 5.1).

    With --pty, port 0 is a pty port instead of a serial port.
    """
    args = list(s.driver_options)
    if s.connect_dtr:
        args += ["--create-filter=pinmap:--dtr=connect", "--add-filters=0:pinmap"]
    if not s.ignore_dsr:
        args += ["--create-filter=pin2con", "--add-filters=0:pin2con"]
    if s.awak_seq is not None:
        args += [
            f"--create-filter=awakseq:{filter_value('--awak-seq', s.awak_seq)}",
            "--add-filters=0:awakseq",
        ]
    if s.telnet:
        telnet = "--create-filter=telnet"
        if s.terminal is not None:
            telnet += f":{filter_value('--terminal', s.terminal)}"
        args += [telnet, "--add-filters=1:telnet"]
    if s.pty is not None:
        args += ["--use-driver=pty", s.pty]
    else:
        assert s.com_port is not None
        args.append(s.com_port)
    reconnect = "d" if s.awak_seq is not None or s.ignore_dsr else _RECONNECT
    permanent = "*" if s.ignore_dsr else ""
    args += ["--use-driver=tcp", f"--reconnect={reconnect}", f"{permanent}{s.address}"]
    return args


def build(argv: list[str]) -> HubCommand | None:
    """The hub command for `argv`; None for --help. Raises DocoptExit or CommandError."""
    s = parse(argv)
    if s is None:
        return None
    return HubCommand(hub_args(s), s.print_args)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status (2 for a bad command line)."""
    return run_command(PROG, USAGE, build, argv)


if __name__ == "__main__":
    sys.exit(main())
