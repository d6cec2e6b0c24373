"""Usage:
  gps-share [options] <device> [--pty=<path>]... [--tcp=<address>]... [--udp=<address>]...
  gps-share [options] --demo [--pty=<path>]... [--tcp=<address>]... [--udp=<address>]...
  gps-share -h | --help

Share one GPS receiver with many applications. Each application opens its own
virtual serial port (a pty the hub links at <path>) or connects over TCP; all
get the receiver's NMEA stream, in whole sentences, and none can disturb the
others: an application that stops reading loses whole sentences (counted),
never holds up the receiver or the rest. Applications are read-only unless
the option --writer names one: only its data reaches the receiver. Baud rates
that applications set on their port are accepted and not passed on, so an
application that asks for 4800 or 9600 changes nothing for the others.

Examples:
  gps-share /dev/ttyUSB0 --pty /tmp/gps-app1 --pty /tmp/gps-app2 --tcp 10110
  gps-share --demo --pty /tmp/gps1 --tcp 10110 --status --http 8080
  gps-share /dev/ttyACM0 --baud 9600 --pty /tmp/gpsd --pty /tmp/uc --writer uc
  gps-share --demo --udp 127.0.0.1:10110 --udp 239.192.0.1:10110

Options:
  <device>            The receiver's serial device, e.g. /dev/ttyUSB0 or
                      /dev/serial/by-id/...
  --demo              Use a simulated receiver (NMEA GGA, RMC, GSA, GSV, VTG
                      of a slowly moving position) instead of a device.
  --pty=<path>        Make <path> a virtual serial port for one application.
                      Repeat for more applications.
  --tcp=<address>     Serve the stream to any number of TCP clients on
                      [<host>:]<port> (10110 is the usual NMEA-over-TCP port).
                      Repeatable.
  --udp=<address>     Send the stream as UDP datagrams to <host>:<port>:
                      one machine, a broadcast address or a multicast group
                      (OpenCPN, SignalK and chart plotters listen on 10110),
                      whole sentences in every datagram. Repeatable.
  --baud=<b>          The receiver's baud rate, or c for the port's current
                      setting. Default 4800 (the NMEA 0183 rate; many u-blox
                      receivers use 9600; USB receivers ignore it).
  --rate=<hz>         --demo: epochs per second, up to 50. Default 1.
  --writer=<name>     The one application that may write to the receiver:
                      a path given with --pty (or its last part), or tcp for
                      the TCP clients (one at a time: the last that wrote
                      holds the floor for a second). Default: every
                      application is read-only.
  --interface=<if>    Address the TCP ports listen on when --tcp gives no
                      host. Default 127.0.0.1 (this machine only); 0.0.0.0 or
                      :: serves the network.
  --status=<s>        Log a one-line status (clients, bytes, drops) every <s>
                      seconds; --status alone means every 5 seconds.
  --http=<[addr:]port>
                      Serve the hub's live status page, JSON API, taps,
                      metrics and health check on <port> (127.0.0.1 unless
                      an address is given; see hub4com --help).
  --print-args        Print the equivalent hub4com command line and exit.
  -v, --verbose       Log more (debug).
  -q, --quiet         Log warnings only.
  -h, --help          Show this help.
  --version           Show the version.

What it runs: hub4com with the receiver as port 0, the ptys after it, a
tcp-multi listener per --tcp and a udp port per --udp. The ptys and the
listeners frame by lines and let a slow reader lose whole sentences, with a
small queue (16 KiB); the udp ports send whole sentences per datagram.
Routes go from port 0 to every other port (and from the writer to port 0),
with no flow-control routes, so no application can pause the receiver. An
application that joins mid-sentence starts at the next one; one that falls
16 KiB behind (plus what the kernel holds for it) loses whole sentences
until it catches up, counted in the "Write lost" lines and --status.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field

from docopt import DocoptExit, docopt

from hub.options import option_names

from ._common import CommandError, check_port_of, docopt_reason, print_version, usage_error

__all__ = ["USAGE", "Plan", "build_argv", "main", "plan_from_args"]

#: The usage text (this module's docstring): it parses the command line.
USAGE = __doc__ or ""

PROG = "gps-share"
DEFAULT_BAUD = "4800"
DEFAULT_INTERFACE = "127.0.0.1"
DEFAULT_STATUS_S = 5.0
#: TCP clients: queue bound and kernel send buffer per client. A client that
#: stops reading falls at most this far behind before it loses whole sentences,
#: so what it reads when it resumes is seconds old, not minutes.
TCP_WRITE_LIMIT = 16384
TCP_SNDBUF = 8192
#: Applications on ptys: the same queue bound (the kernel holds 16 to 20 KiB
#: more that the application has not read).
PTY_WRITE_LIMIT = 16384
#: The floor a writing TCP client holds (tcp-multi --active-hold), in ms.
TCP_WRITER_HOLD_MS = 1000


class PlanError(Exception):
    """A bad gps-share command line (the message is shown as is)."""


@dataclass
class Plan:
    """What gps-share sets up, from its command line."""

    device: str | None
    demo: bool
    ptys: list[str] = field(default_factory=list)
    tcps: list[str] = field(default_factory=list)
    udps: list[str] = field(default_factory=list)
    baud: str = DEFAULT_BAUD
    rate: str | None = None
    writer: str | None = None
    interface: str = DEFAULT_INTERFACE
    status_s: float = 0.0
    verbosity: int = 0
    #: --http: the status page's [addr:]port (None: off).
    http: str | None = None

    @property
    def writer_port(self) -> int | None:
        """The hub port number of the writer (the first TCP port for tcp), or None."""
        if self.writer is None:
            return None
        if self.writer == "tcp":
            return 1 + len(self.ptys)
        return 1 + self.ptys.index(self.writer)

    def describe(self) -> list[str]:
        """The lines printed at start: what is shared where."""
        if self.demo:
            lines = [f"GPS: simulated receiver, {self.rate or '1'} epochs per second"]
        else:
            lines = [f"GPS: {self.device} at {self.baud} baud"]
        for path in self.ptys:
            role = "may write to the GPS" if path == self.writer else "read-only"
            lines.append(f"application port {path} ({role})")
        for address in self.tcps:
            where = address if ":" in address else f"{_bracket(self.interface)}:{address}"
            role = "one at a time may write to the GPS" if self.writer == "tcp" else "read-only"
            lines.append(f"TCP clients on {where} ({role}; whole sentences)")
        for address in self.udps:
            lines.append(f"UDP datagrams to {address} (whole sentences)")
        return lines


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def plan_from_args(argv: list[str]) -> Plan:
    """Parse gps-share's command line. Raises DocoptExit (usage) or PlanError."""
    argv = [f"--status={DEFAULT_STATUS_S:g}" if a == "--status" else a for a in argv]
    known = option_names(USAGE) | {"-v", "-q", "-h", "--verbose", "--quiet", "--help"}
    for a in argv:
        if a.startswith("-") and a != "-" and a.split("=", 1)[0] not in known:
            raise PlanError(f"unknown option {a.split('=', 1)[0]} (see '{PROG} --help')")
    args = docopt(USAGE, argv=argv, default_help=False)
    plan = Plan(
        device=args["<device>"],
        demo=bool(args["--demo"]),
        ptys=list(args["--pty"]),
        tcps=list(args["--tcp"]),
        udps=list(args["--udp"]),
        baud=args["--baud"] or DEFAULT_BAUD,
        rate=args["--rate"],
        interface=args["--interface"] or DEFAULT_INTERFACE,
        verbosity=int(bool(args["--verbose"])) - int(bool(args["--quiet"])),
        http=args["--http"],
    )
    if not plan.ptys and not plan.tcps and not plan.udps:
        raise PlanError("nothing to share to: give at least one --pty, --tcp or --udp")
    if plan.rate is not None and not plan.demo:
        raise PlanError("--rate is for the simulated receiver (--demo)")
    for option, addresses in (("--tcp", plan.tcps), ("--udp", plan.udps)):
        for address in addresses:
            _check_port(option, address)
    if len(set(plan.ptys)) != len(plan.ptys):
        raise PlanError("the same --pty path is given twice")
    if args["--status"] is not None:
        try:
            plan.status_s = float(args["--status"])
        except ValueError:
            plan.status_s = -1.0
        if not 0 < plan.status_s < 1e9:
            raise PlanError(f"invalid --status value {args['--status']!r} (seconds, more than 0)")
    writer = args["--writer"]
    if writer is not None:
        plan.writer = _find_writer(writer, plan)
    return plan


def _check_port(option: str, address: str) -> None:
    """Refuse a --tcp or --udp value whose port is no port, in the user's words. Raises PlanError."""
    try:
        check_port_of(address, f"{option} port")
    except CommandError as exc:
        raise PlanError(str(exc)) from None


def _find_writer(name: str, plan: Plan) -> str:
    if name.lower() == "tcp":
        if not plan.tcps:
            raise PlanError("--writer=tcp needs a --tcp port")
        return "tcp"
    if name in plan.ptys:
        return name
    by_name = [p for p in plan.ptys if os.path.basename(p) == name]
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        raise PlanError(f"--writer={name} names more than one --pty; give the whole path")
    raise PlanError(f"--writer={name} names no --pty path (nor tcp)")


def build_argv(plan: Plan) -> list[str]:
    """The hub4com arguments that do what `plan` says."""
    argv = ["--route=0:All"]
    w = plan.writer_port
    if w is not None:
        argv.append(f"--route={w}:0")
    argv.append("--no-default-fc-route=All:All")
    if plan.status_s:
        argv.append(f"--status-interval={plan.status_s:g}")
    if plan.http is not None:
        argv.append(f"--http={plan.http}")
    argv += {1: ["-v"], -1: ["-q"]}.get(plan.verbosity, [])
    if plan.demo:
        argv += ["--use-driver=sim"]
        if plan.rate is not None:
            argv.append(f"--rate={plan.rate}")
        argv.append("gps")
    else:
        assert plan.device is not None
        argv += ["--use-driver=serial", f"--baud={plan.baud}", "--octs=off", plan.device]
    if plan.ptys:
        argv += [
            "--use-driver=pty",
            "--frame=line",
            "--slow-client=drop",
            f"--write-limit={PTY_WRITE_LIMIT}",
            *plan.ptys,
        ]
    if plan.tcps:
        argv += [
            "--use-driver=tcp-multi",
            f"--interface={plan.interface}",
            "--frame=line",
            "--slow-client=drop",
            f"--write-limit={TCP_WRITE_LIMIT}",
            f"--sndbuf={TCP_SNDBUF}",
        ]
        if plan.writer == "tcp":
            argv += ["--recv-from=last-active", f"--active-hold={TCP_WRITER_HOLD_MS}"]
        else:
            argv.append("--recv-from=none")
        argv += plan.tcps
    if plan.udps:
        argv += ["--use-driver=udp", "--frame=line", *plan.udps]
    return argv


def main(argv: list[str] | None = None) -> int:
    """Run gps-share; return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        print(USAGE.rstrip())
        return 0
    if "--version" in args:
        return print_version(PROG)
    try:
        plan = plan_from_args(args)
    except DocoptExit as exc:
        return usage_error(PROG, docopt_reason(exc, args, USAGE))
    except PlanError as exc:
        return usage_error(PROG, str(exc))
    hub_argv = build_argv(plan)
    if "--print-args" in args:
        print(shlex.join(["hub4com", *hub_argv]))
        return 0
    from hub.main import main as hub_main

    return hub_main(hub_argv, PROG, plan.describe() if plan.verbosity >= 0 else ())


if __name__ == "__main__":
    sys.exit(main())
