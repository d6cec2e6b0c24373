"""What the wrapper commands share: hub4com's examples/*.bat turned into commands.

Each wrapper parses its own command line, builds the hub4com arguments the
matching .bat script generates (hub4com spec section 5) and either prints them
(``--print-args``) or runs the hub with them in the same process.

The .bat conventions kept here:

* options take their value as the next argument (``--baud 9600``); ``--baud=9600``
  works too;
* a serial value starting with ``d`` (``d[efault]``) becomes ``c`` (keep the
  device's current setting);
* values handed to a filter inside ``--create-filter=...:<args>`` are quoted the
  way hub4com's argument splitter expects (``--terminal="vt 100"``).
"""

from __future__ import annotations

import re
import shlex
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from docopt import DocoptExit

from hub import __version__
from hub.errors import EXIT_USAGE

__all__ = [
    "HUB_PROG",
    "USAGE_EXIT",
    "CommandError",
    "HubCommand",
    "check_port_of",
    "client_address",
    "docopt_reason",
    "filter_value",
    "format_command",
    "listen_address",
    "long_options",
    "option_order",
    "print_version",
    "run_command",
    "serial_value",
    "tcp_port",
    "usage_error",
    "yes_no",
]

#: The program name shown in printed command lines.
HUB_PROG = "hub4com"

#: Exit status of a wrapper for a bad command line: hub4com's (hub.errors.EXIT_USAGE).
USAGE_EXIT = EXIT_USAGE


class CommandError(Exception):
    """A bad command line; the text is the one line shown to the user."""


@dataclass(frozen=True, slots=True)
class HubCommand:
    """What a wrapper's command line asks for."""

    #: The hub4com arguments (without the program name).
    args: list[str]
    #: Print them instead of running the hub.
    print_args: bool = False


# ---- values ----------------------------------------------------------------------

_PARITY_WORDS = ("no", "odd", "even", "mark", "space")
_STOP_WORDS = ("1", "1.5", "1,5", "2")
_SERIAL_OPTIONS = ("--baud", "--data", "--parity", "--stop")
_SERVICE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
#: An option line of a usage text: "  --baud=<b>  ..." or "  -h, --help  ...".
_OPTION_LINE_RE = re.compile(r"^\s*(?:-\w,\s*)?(--[A-Za-z0-9][\w-]*)", re.MULTILINE)


def serial_value(option: str, value: str) -> str:
    """The hub4com value for a .bat serial option (--baud, --data, --parity, --stop).

    d[efault] (any value starting with d, as the .bat scripts test it) becomes
    c, "keep the device's current setting". Returns the value to pass on.
    Raises CommandError for a value the serial driver would refuse.
    """
    if option not in _SERIAL_OPTIONS:
        raise ValueError(option)
    v = value.strip()
    if v[:1].lower() == "d":
        return "c"
    ok = False
    if option == "--baud":
        ok = v.isascii() and v.isdigit() and int(v) > 0
        expected = "a positive number or d[efault]"
    elif option == "--data":
        ok = v in ("5", "6", "7", "8")
        expected = "5, 6, 7, 8 or d[efault]"
    elif option == "--parity":
        ok = any(v and word.startswith(v.lower()) for word in _PARITY_WORDS)
        expected = "n[o], o[dd], e[ven], m[ark], s[pace] or d[efault]"
    else:
        ok = v in _STOP_WORDS
        expected = "1, 1.5, 2 or d[efault]"
    if not ok:
        raise CommandError(f"invalid {option} value {value!r} (expected {expected})")
    return v


def yes_no(option: str, value: str) -> bool:
    """y[es] or n[o], any case. Raises CommandError."""
    v = value.strip().lower()
    if v and "yes".startswith(v):
        return True
    if v and "no".startswith(v):
        return False
    raise CommandError(f"invalid {option} value {value!r} (expected yes or no)")


def tcp_port(value: str, what: str = "port") -> str:
    """A TCP port: a number from 1 to 65535 or a known service name (telnet). Raises CommandError."""
    if value.isascii() and value.isdigit():
        if 0 < int(value) < 65536:
            return value
        raise CommandError(f"{what} {value} is out of range (1 to 65535)")
    if _SERVICE_RE.match(value):
        try:
            socket.getservbyname(value, "tcp")
        except OSError:
            pass
        else:
            return value
    expected = "a number from 1 to 65535 or a service name such as telnet"
    raise CommandError(f"{value!r} is not a {what} ({expected})")


def check_port_of(address: str, what: str) -> None:
    """Check the port of a `[<host>:]<port>` or `[<IPv6>]:<port>` value as the user gave it,
    so an error names their word, not the hub4com address made of it. Raises CommandError."""
    port = address.rpartition("]:")[2] if address.startswith("[") else address.rpartition(":")[2]
    tcp_port(port, what)


def client_address(host: str, port: str) -> str:
    """The tcp driver's client address for `host` and `port`; an IPv6 address gets brackets.

    Raises CommandError for an empty host or a bad port.
    """
    if not host or any(c.isspace() for c in host):
        raise CommandError(f"invalid host {host!r}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{tcp_port(port)}"


def listen_address(port: str) -> str:
    """The tcp driver's listener address for `port`. Raises CommandError."""
    return tcp_port(port, "listen port")


def filter_value(option: str, value: str) -> str:
    """`option`=`value` as one token of a --create-filter argument list.

    The value is put in double quotes with its own quotes escaped, so spaces and
    quotes reach the filter unchanged (the .bat scripts write the same thing as
    ``"--terminal=\\"T\\""``, which Windows hands to hub4com as ``--terminal="T"``).
    """
    return f'{option}="{value.replace(chr(34), chr(92) + chr(34))}"'


# ---- docopt helpers ----------------------------------------------------------------


def long_options(usage: str) -> list[str]:
    """The long option names declared in the Options section of `usage`."""
    section = usage.split("Options:", 1)[1]
    return list(dict.fromkeys(m.group(1) for m in _OPTION_LINE_RE.finditer(section)))


def _resolve(token: str, known: list[str]) -> str | None:
    name = token.split("=", 1)[0]
    matches = [k for k in known if k == name] or [k for k in known if k.startswith(name)]
    return matches[0] if len(matches) == 1 else None


def option_order(argv: list[str], usage: str) -> list[str]:
    """The long options of `argv` (full names), in the order given; docopt forgets it."""
    known = long_options(usage)
    order = []
    for token in argv:
        if token == "--":
            break
        if token.startswith("--"):
            name = _resolve(token, known)
            if name is not None and name not in order:
                order.append(name)
    return order


def docopt_reason(exc: DocoptExit, argv: list[str], usage: str) -> str:
    """One line saying what docopt did not like about `argv`."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if first and not first.startswith(("Usage:", "usage:", "Warning:")):
        return first[0].lower() + first[1:]  # e.g. "--interface requires argument"
    known = long_options(usage)
    seen: set[str] = set()
    for token in argv:
        if token == "--":
            break
        if token.startswith("--"):
            name = token.split("=", 1)[0]
            full = _resolve(token, known)
            candidates = [k for k in known if k.startswith(name)]
            if not candidates:
                return f"unknown option {name}"
            if full is None:
                return f"ambiguous option {name} ({', '.join(candidates)})"
            if full is not None:
                if full in seen:
                    return f"option {full} given twice"
                seen.add(full)
        elif token.startswith("-") and token not in ("-h", "-"):
            return f"unknown option {token}"
    if not argv:
        return "missing arguments"
    return "wrong number of arguments"


# ---- running -------------------------------------------------------------------------


def print_version(prog: str) -> int:
    """--version of a command; returns its exit status."""
    print(f"{prog} (hub4com-py) {__version__}")
    return 0


def usage_error(prog: str, text: str) -> int:
    """Say what was wrong with the command line, in one line; returns the exit status."""
    print(f"{prog}: {text} (see {prog} --help)", file=sys.stderr)
    return USAGE_EXIT


def format_command(args: list[str]) -> str:
    """The hub4com command line for `args`, quoted for a POSIX shell."""
    return shlex.join([HUB_PROG, *args])


def run_command(
    prog: str,
    usage: str,
    build: Callable[[list[str]], HubCommand | None],
    argv: list[str] | None = None,
) -> int:
    """The main() of a wrapper: build the hub arguments, then print them or run the hub.

    `build(argv)` returns the HubCommand, None when help was asked for, and
    raises DocoptExit or CommandError for a bad command line. Returns the exit
    status: 0 after help, --version or --print-args, 2 for a bad command line
    (one line on standard error), else the hub's.
    """
    argv = sys.argv[1:] if argv is None else argv
    if "--version" in argv:
        return print_version(prog)
    try:
        command = build(argv)
    except DocoptExit as exc:
        return usage_error(prog, docopt_reason(exc, argv, usage))
    except CommandError as exc:
        return usage_error(prog, str(exc))
    if command is None:
        print(usage.rstrip())
        return 0
    if command.print_args:
        print(format_command(command.args))
        return 0
    from hub.main import main as hub_main

    return hub_main(command.args, prog)
