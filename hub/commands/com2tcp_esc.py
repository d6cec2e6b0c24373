"""Carry a serial port's data and signals over raw TCP as a com0com escape stream.

Usage:
  com2tcp-esc [options] <com_port> <host> <port>
  com2tcp-esc [options] <com_port> <listen_port>
  com2tcp-esc [options] --pty=<link> <host> <port>
  com2tcp-esc [options] --pty=<link> <listen_port>
  com2tcp-esc (-h | --help)

Both ends run com2tcp-esc (or hub4com's com2tcp-esc.bat on Windows): one in
client mode (<host> <port>: it connects to <host>:<port>), the other in server
mode (<listen_port>: it listens). The TCP stream is the data, with every 0xFF
byte doubled, plus in-band records of the signals: the modem lines, line
errors and break, the baud rate and the line control. The connection is
permanent: a client reconnects at once when it is lost.

Signals carried from the serial port <com_port> to the far side:
  CTS, DSR, DCD, RI and break drive the far port's RTS, DTR and break;
  with line control forwarding, the baud rate and data format set here are
  set on the far port.

With --pty (Linux) the hub makes a virtual serial port at <link> (a symlink to
a new pty) for a local application, the part a com0com pair plays on
Windows: the baud rate and stop bits the application sets are sent (so the
far serial port is set to them), its opening and closing of the port is seen
as CTS, DSR and DCD, and the far side's baud rate is set on the pty, where the
application can read it back. A pty has no output lines, so the far side's
modem lines are not shown to the application.

Options:
  --linectl=<yn>        yes: send the baud rate and data format the
                        application sets on this side's port (a --pty or a
                        com0com port) to the far side; no: send the serial
                        port's own settings instead (with --pty: send none).
                        Default: yes in client mode or with --pty, else no.
  --interface=<if>      The local address to connect from (client mode) or
                        to listen on (server mode).
  --pty=<link>          Make a virtual serial port at <link> instead of
                        using a serial device (Linux).
  --print-args          Print the equivalent hub4com command line and exit.
  -h, --help            Show this help.
  --version             Show the version.

The options take their value after = or as the next argument (--linectl no).

Examples:
  com2tcp-esc /dev/ttyUSB0 7000
    - server: the serial device with its signals, on TCP port 7000.
  com2tcp-esc --pty /tmp/vcom0 server.example 7000
    - client: applications open /tmp/vcom0 to use /dev/ttyUSB0 over there.
  com2tcp-esc --print-args /dev/ttyUSB0 7000
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
    listen_address,
    run_command,
    yes_no,
)

__all__ = ["PROG", "USAGE", "Settings", "build", "hub_args", "main", "parse"]

PROG = "com2tcp-esc"
USAGE: str = __doc__ or ""

#: The serial port's wiring (spec 5.3): the far side's CTS, DSR and break
#: drive RTS, DTR and break. A pty has no output lines: no pinmap there.
_COM_PINMAP = "--rts=cts --dtr=dsr --break=break"
#: The signals sent to the far side. A pty reports CTS, DSR and DCD (its open
#: state) but no ring indicator or break.
_TCP_PINMAP = "--cts=cts --dsr=dsr --ring=ring --dcd=dcd --break=break"
_TCP_PINMAP_PTY = "--cts=cts --dsr=dsr --dcd=dcd"


@dataclass(frozen=True, slots=True)
class Settings:
    """The parsed command line."""

    com_port: str | None
    pty: str | None
    #: "<host>:<port>" or "<listen port>".
    address: str
    #: Send the settings made on this side's port (remote), not the port's own (local).
    linectl: bool
    interface: str | None = None
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
    client = opts["<host>"] is not None
    if client:
        address = client_address(opts["<host>"], opts["<port>"])
    else:
        address = listen_address(opts["<listen_port>"])
    if opts["--linectl"] is not None:
        linectl = yes_no("--linectl", opts["--linectl"])
    else:
        linectl = client or pty is not None
    return Settings(
        com_port=opts["<com_port>"],
        pty=pty,
        address=address,
        linectl=linectl,
        interface=opts["--interface"],
        print_args=bool(opts["--print-args"]),
    )


def hub_args(s: Settings) -> list[str]:
    """The hub4com arguments for `s`, as com2tcp-esc.bat generates them (spec 5.3).

    With --pty, port 0 is a pty port instead of a serial port, without the
    pinmap that would drive its (missing) output lines; and since a pty has no
    settings of its own, --linectl=no sends none (no linectl on the TCP side).
    """
    args = [f"--interface={s.interface}"] if s.interface is not None else []
    args.append("--create-filter=escparse,com,parse")
    if s.pty is None:
        args.append(f"--create-filter=pinmap,com,pinmap:{_COM_PINMAP}")
    args += [
        "--create-filter=linectl,com,lc",
        "--add-filters=0:com",
        "--create-filter=escparse,tcp,parse:--request-esc-mode=no",
        "--create-filter=escinsert,tcp,insert",
        f"--create-filter=pinmap,tcp,pinmap:{_TCP_PINMAP_PTY if s.pty is not None else _TCP_PINMAP}",
    ]
    if s.linectl:
        args.append("--create-filter=linectl,tcp,lc")
    elif s.pty is None:
        args.append("--create-filter=linectl,tcp,lc:--br=local --lc=local")
    args.append("--add-filters=1:tcp")
    if s.pty is not None:
        args += ["--use-driver=pty", s.pty]
    else:
        assert s.com_port is not None
        args += ["--octs=off", s.com_port]
    args += ["--use-driver=tcp", f"*{s.address}"]
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
