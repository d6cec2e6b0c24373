"""The `hub4com` command: help, start-up, the event loop, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import TextIO

from . import __version__
from .cli import Config, build
from .errors import HubError, UsageError
from .hub import Hub
from .logs import SELF_LIMITED, install_limiter
from .registry import DRIVERS, FILTERS, Registry
from .web import options as http_options

__all__ = ["USAGE", "main", "new_event_loop"]

log = logging.getLogger("hub")

_USAGE = """\
Usage:
  hub4com [options] <port0> [options] [<port1> ...]

Ports are numbered from 0 in the order they are given; every argument that does
not start with -- is a port, created by the driver selected by --use-driver.

Common options:
  --load=[<file>][,<begin>[,<end>]][:<prm1>[,<prm2>...]]
                            Read arguments from a file (or standard input if
                            <file> is empty), one per line, between the lines
                            <begin> and <end>. %%0%% is the file name, %%1%%...
                            the parameters (one not given is an error);
                            lines starting with # are comments.
  --route=<LstR>:<LstL>     Send data from ports LstR to ports LstL (never to itself).
  --bi-route=<LstR>:<LstL>  The same in both directions.
  --echo-route=<Lst>        Send data from each port in Lst back to itself.
  --no-route=<LstR>:<LstL>  Remove data routes (self routes too).
  --fc-route=<LstR>:<LstL>  Add flow-control routes: LstR's full queues pause LstL.
  --no-default-fc-route=<LstR>:<LstL>
                            Remove default flow-control routes.
  --create-filter=<MID>[,<FGID>[,<FN>]][:<Args>]
                            Create a filter from module MID in group FGID (default
                            MID) named FN (default FGID) with arguments Args.
  --add-filters=<Lst>:<LstF>
                            Attach filter groups to ports. LstF items are
                            <FGID>[.IN|.OUT][(<source ports>)].
  --use-driver=<MID>        Driver for the following ports (default serial).
  --report-interval=<s>     Seconds between loss reports (default 10, 0 = off).
  --status-interval=<s>     Log a status line of every port every <s> seconds
                            (default 0 = off): bytes in and out, lost, and
                            unheard (written while nobody was connected).
  -v, -vv / -q              More / less logging (debug / warnings only).
  --help                    Show this help and the list of modules.
  --help=<LstM>             Show the help of modules LstM (* for all).

{http}
Lists are comma separated port numbers or All. Without route options, port 0
sends to every other port and port 1 sends back to port 0; flow control runs
both ways wherever data does. The sticky options of drivers and filters (for
example --baud=, --interface=, --write-limit=) apply to every later port of
that driver until changed again.

SIGINT, SIGTERM, SIGQUIT and SIGUSR1 stop the hub cleanly; SIGHUP asks for a
reload and never stops it. A warning repeated on one port is logged once,
then summarised with its count at most every 10 s.
"""

USAGE = _USAGE.replace(
    "{http}", http_options.USAGE.split("\n\n", 1)[1].replace("Options:\n", "HTTP and health options:\n")
)

EXAMPLES = """\
Examples:
  hub4com --route=All:All --use-driver=pty /tmp/vcom0 /tmp/vcom1 /tmp/vcom2
    - three virtual serial ports; what one application writes, the others read.
  hub4com --baud=4800 /dev/ttyUSB0 --use-driver=pty /tmp/gps1 /tmp/gps2
    - GPS hub: the receiver's data goes to two virtual ports; gps1 can write back.
  hub4com --octs=off /dev/ttyS0 --use-driver=tcp *7000
    - serve a serial port as raw TCP on port 7000.
  hub4com --use-driver=tcp /2401 cvs.example.org:2401
    - a TCP proxy: each session on 2401 gets its own connection to the server.
"""


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop where uvloop is installed, else the standard one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def print_help(registry: Registry, out: TextIO) -> None:
    out.write(f"hub4com {__version__}\n\n{USAGE}\n")
    for group, title in ((DRIVERS, "Drivers"), (FILTERS, "Filters")):
        out.write(f"{title}:\n")
        for name in registry.names(group):
            cls = registry.try_load(group, name)
            desc = cls.DESCRIPTION if cls is not None else "(failed to load; see the warning above)"
            out.write(f"  {name:<12} {desc}\n")
        out.write("\n")
    out.write(EXAMPLES)


def print_module_help(registry: Registry, names: str, out: TextIO) -> bool:
    """Print the usage text of each named module (or all for '*'); False if one is unknown."""
    ok = True
    wanted = [n.strip().lower() for n in names.split(",") if n.strip()]
    if "*" in wanted:
        wanted = [*registry.names(DRIVERS), *registry.names(FILTERS)]
    for name in wanted:
        found = False
        for group, kind in ((DRIVERS, "driver"), (FILTERS, "filter")):
            if name in registry.names(group):
                found = True
                cls = registry.try_load(group, name)
                if cls is None:
                    ok = False
                    continue
                out.write(f"{name} ({kind}): {cls.DESCRIPTION}\n\n{cls.USAGE.strip()}\n")
                extra = getattr(cls, "GLOBAL_USAGE", "")
                if extra:
                    out.write(f"\n{extra.strip()}\n")
                out.write("\n")
        if not found:
            out.write(f"The module {name} not found.\n")
            ok = False
    return ok


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    fmt = "%(message)s" if verbosity <= 0 else "%(asctime)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)


def describe_routes(hub: Hub) -> list[str]:
    """The start-up summary of data and flow-control routes and filter chains."""
    lines = []
    names = [p.name for p in hub.ports]
    for title, table in (("data", hub.routes.data), ("flow control", hub.routes.fc)):
        if not any(table.values()):
            lines.append(f"No route for {title}")
            continue
        for src, dsts in table.items():
            if dsts:
                lines.append(f"Route {title} {names[src]} --> {' '.join(names[d] for d in dsts)}")
    for i, slots in enumerate(hub.slots):
        if slots:
            chain = " <-> ".join(
                f"{s.name}{'' if s.use_in and s.use_out else '.IN' if s.use_in else '.OUT'}" for s in slots
            )
            each = " (for each session)" if hub.ports[i].serves_sessions else ""
            lines.append(f"Filters {names[i]} <-> {chain} <-> hub{each}")
    return lines


async def _report_losses(hub: Hub, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for p in hub.ports:
            if p.lost:
                # A periodic summary already: not limited again.
                total = p.lost_total
                log.warning("Write lost %s: %d bytes, total %d", p.name, p.lost, total, extra=SELF_LIMITED)
                p.lost = 0


def status_line(hub: Hub) -> str:
    """One line with every port's state and byte counts."""
    parts = []
    for p in hub.ports:
        text = f"{p.name} {p.status()}, in {p.bytes_in} B, out {p.bytes_out} B"
        if p.lost_total:
            text += f", lost {p.lost_total} B"
        if p.unheard:
            text += f", unheard {p.unheard} B (no connection)"
        parts.append(text)
    return "Status: " + " | ".join(parts)


async def _report_status(hub: Hub, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        log.info("%s", status_line(hub))


#: At shutdown, how long the tasks still running may take to finish their cleanup.
SHUTDOWN_GRACE_S = 2.0


async def _finish_tasks(timeout_s: float) -> None:
    """Cancel the tasks still running and let them finish, for at most `timeout_s`.

    What asyncio.run does, bounded. A task its port already cancelled in close()
    is not cancelled again, so its cleanup may still await the network (an MQTT
    port publishes "offline" and disconnects cleanly).
    """
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for t in tasks:
        if not t.cancelling():
            t.cancel()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for t in pending:
            log.debug("still running at exit: %r", t)


#: Signals that stop the hub cleanly: links removed, sessions closed, losses reported.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR1)
#: The signal that asks for a reload (`Config.reload`); it never stops the hub.
RELOAD_SIGNAL = signal.SIGHUP


def _reload(config: Config) -> None:
    """SIGHUP: call the reload hook, if there is one. A failing reload keeps the hub running."""
    hook = config.reload
    if hook is None:
        log.info("SIGHUP: nothing to reload (the hub was started from the command line)")
        return
    log.info("SIGHUP: reloading")
    try:
        hook()
    except Exception:
        log.exception("reload failed; the hub runs on unchanged")


async def _serve(config: Config) -> None:
    hub = config.hub
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[str] = []

    def on_stop(sig: signal.Signals) -> None:
        stopped_by.append(sig.name)
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_stop, sig)
    loop.add_signal_handler(RELOAD_SIGNAL, _reload, config)
    reporter = status = limiter = None
    http = None
    try:
        hub.start()
        for line in describe_routes(hub):
            log.info("%s", line)
        for w in config.warnings:
            log.warning("Warning: %s", w)
        if config.http is not None:
            from .web.server import HttpServer  # aiohttp is loaded only when asked for

            http = HttpServer(config.http, lambda: [hub])
            await http.start()
        # From here on a warning repeated on one port is summarised (hub.logs).
        limiter = install_limiter(loop, [p.name for p in hub.ports])
        if config.report_interval_s > 0:
            reporter = asyncio.ensure_future(_report_losses(hub, config.report_interval_s))
        if config.status_interval_s > 0:
            status = asyncio.ensure_future(_report_status(hub, config.status_interval_s))
        await stop.wait()
        log.info("Stopping (%s)", stopped_by[0] if stopped_by else "stop")
    finally:
        for sig in (*STOP_SIGNALS, RELOAD_SIGNAL):
            loop.remove_signal_handler(sig)
        if reporter is not None:
            reporter.cancel()
        if status is not None:
            status.cancel()
        if http is not None:
            await http.close()
        hub.close()
        await _finish_tasks(SHUTDOWN_GRACE_S)
        if limiter is not None:
            limiter.close()
        for p in hub.ports:
            if p.lost:
                log.warning("Write lost %s: %d bytes, total %d", p.name, p.lost, p.lost_total)


def main(argv: list[str] | None = None) -> int:
    """Run the hub; return the exit status. No traceback reaches the user."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line for the user, the traceback with -v
        log.debug("internal error", exc_info=True)
        print(f"hub4com: internal error: {exc!r} (run with -v for details)", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    registry = Registry()
    if "--help" in argv or not argv:
        _setup_logging(0)
        print_help(registry, sys.stdout)
        return 0 if argv else 1
    for a in argv:
        if a.lower().startswith("--help="):
            _setup_logging(0)
            return 0 if print_module_help(registry, a[len("--help=") :], sys.stdout) else 1
    _setup_logging(sum({"-v": 1, "-vv": 2, "-q": -1}.get(a, 0) for a in argv))
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        try:
            config = build(argv, loop, registry)
        except UsageError as exc:
            print(f"hub4com: {exc}", file=sys.stderr)
            return 1
        try:
            loop.run_until_complete(_serve(config))
        except HubError as exc:
            print(f"hub4com: {exc}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
