"""The `hub4com` command: help, start-up, the event loop, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from . import __version__
from .cli import CORE_FLAGS, build, http_settings
from .commands import COMMANDS
from .errors import EXIT_FAILURE, EXIT_USAGE, HubError, InUseError, UsageError
from .hub import Hub
from .logs import SELF_LIMITED, LimiterHandle, install_limiter
from .registry import DRIVERS, FILTERS, Registry
from .runtime import Runtime, describe_routes
from .sdnotify import Notifier
from .web import options as http_options
from .web.options import HttpSettings

__all__ = ["USAGE", "describe_routes", "main", "new_event_loop", "status_line"]

log = logging.getLogger("hub")

_USAGE = """\
Usage:
  hub4com [options] <port0> [options] [<port1> ...]
  hub4com --config=<file> [-v | -q]
  hub4com --check-config=<file>
  hub4com --check-config [options] <port0> [options] [<port1> ...]
  hub4com --print-config [options] <port0> [options] [<port1> ...]
  hub4com --import-ser2net=<file>

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
  -h, --help                Show this help and the list of modules.
  --version                 Show the version.
  --help=<LstM>             Show the help of modules LstM (* for all).

Running as a service:
  --config=<file>           Run the devices and groups of a TOML config file
                            (see the README); SIGHUP rereads it and restarts
                            only what changed. Tells systemd (Type=notify)
                            when it is ready, its status, WATCHDOG=1 when
                            WatchdogSec is set, and when it stops.
  --check-config=<file>     Check a config file without opening anything and
                            print its ports, filter chains and routes.
  --check-config            The same for the command line it stands in.
  --print-config            Print the config file that does what the rest of
                            the command line does.
  --import-ser2net=<file>   Print a config file for a ser2net YAML config.

{http}
Lists are comma separated port numbers or All. Without route options, port 0
sends to every other port and port 1 sends back to port 0; flow control runs
both ways wherever data does. The sticky options of drivers and filters (for
example --baud=, --interface=, --write-limit=) apply to every later port of
that driver until changed again. An option takes its value after '='
(--baud=9600, not --baud 9600).

Exit status: 0 after a clean stop, 2 for a bad command line, option value,
address, file or config (one line on standard error names it), 1 when the hub
cannot start or run (a device or address in use, ...). The commands built on
hub4com use the same codes.

SIGINT, SIGTERM, SIGQUIT and SIGUSR1 stop the hub cleanly; SIGHUP asks for a
reload and never stops it. A warning repeated on one port is logged once,
then summarised with its count at most every 10 s.
"""

USAGE = _USAGE.replace(
    "{http}", http_options.USAGE.split("\n\n", 1)[1].replace("Options:\n", "HTTP and health options:\n")
)

#: The shortest useful command line, for the no-argument hint.
EXAMPLE_HINT = "try: hub4com --route=All:All --use-driver=pty /tmp/vcom0 /tmp/vcom1"

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
    out.write("Commands built on hub4com (each has --help and --print-args):\n")
    for name, what in COMMANDS.items():
        out.write(f"  {name:<16} {what}\n")
    out.write("\n")
    for group, title in ((DRIVERS, "Drivers"), (FILTERS, "Filters")):
        out.write(f"{title}:\n")
        for name in registry.names(group):
            cls = registry.try_load(group, name)
            desc = cls.DESCRIPTION if cls is not None else "(failed to load; see the warning above)"
            out.write(f"  {name:<12} {desc}\n")
        out.write("\n")
    out.write(EXAMPLES)


def print_module_help(registry: Registry, names: str, out: TextIO, err: TextIO | None = None) -> bool:
    """Print the usage text of each named module (or all for '*'); False if one is unknown
    (said on `err`, default `out`)."""
    err = out if err is None else err
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
            err.write(f"hub4com: there is no driver or filter '{name}' (hub4com --help lists them)\n")
            ok = False
    return ok


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    fmt = "%(message)s" if verbosity <= 0 else "%(asctime)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)


async def _report_losses(hubs: Callable[[], list[Hub]], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for p in (p for hub in hubs() for p in hub.ports):
            if p.lost:
                # A periodic summary already: not limited again.
                total = p.lost_total
                log.warning("Write lost %s: %d bytes, total %d", p.name, p.lost, total, extra=SELF_LIMITED)
                p.lost = 0


def status_line(hub: Hub | list[Hub]) -> str:
    """One line with every port's state and byte counts."""
    parts = []
    for p in (p for h in (hub if isinstance(hub, list) else [hub]) for p in h.ports):
        text = f"{p.name} {p.status()}, in {p.bytes_in} B, out {p.bytes_out} B"
        if p.lost_total:
            text += f", lost {p.lost_total} B"
        if p.unheard:
            text += f", unheard {p.unheard} B (no connection)"
        parts.append(text)
    return "Status: " + " | ".join(parts)


async def _report_status(hubs: Callable[[], list[Hub]], interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        log.info("%s", status_line(hubs()))


async def _watchdog(notifier: Notifier, runtime: Runtime, interval_s: float) -> None:
    """WATCHDOG=1 while the loop runs; the status line goes along when it changes."""
    last = ""
    while True:
        notifier.watchdog()
        summary = runtime.summary()
        if summary != last:
            notifier.status(summary)
            last = summary
        await asyncio.sleep(interval_s)


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
#: The signal that asks for a reload (`Settings.reload`); it never stops the hub.
RELOAD_SIGNAL = signal.SIGHUP


@dataclass
class Settings:
    """How the process reports and reloads, whatever front end described the hubs."""

    report_interval_s: float = 10.0
    status_interval_s: float = 0.0
    #: --http and its options (None: no HTTP server).
    http: HttpSettings | None = None
    #: Called on the loop when SIGHUP arrives (None: nothing to reload; the hub logs
    #: that and runs on). Work that must wait it schedules itself (a task on the
    #: loop). An exception it raises is logged; the hub runs on.
    reload: Callable[[], None] | None = None


def _reload(settings: Settings) -> None:
    """SIGHUP: call the reload hook, if there is one. A failing reload keeps the hub running."""
    hook = settings.reload
    if hook is None:
        log.info("SIGHUP: nothing to reload (the hub was started from the command line)")
        return
    log.info("SIGHUP: reloading")
    try:
        hook()
    except Exception:
        log.exception("reload failed; the hub runs on unchanged")


def _config_reload(runtime: Runtime, notifier: Notifier, reloaded: Callable[[], None]) -> Callable[[], None]:
    """The reload hook of a config file: reread it in a task (one at a time), telling
    systemd RELOADING=1 and READY=1; `reloaded` runs once the new components run."""
    task: asyncio.Future[bool] | None = None

    def done(_: object) -> None:
        reloaded()
        notifier.ready(runtime.summary())

    def hook() -> None:
        nonlocal task
        if task is not None and not task.done():
            log.info("SIGHUP: a reload is running already")
            return
        notifier.reloading()
        task = asyncio.ensure_future(runtime.reload())
        task.add_done_callback(done)

    return hook


async def _serve(runtime: Runtime, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[str] = []

    def on_stop(sig: signal.Signals) -> None:
        stopped_by.append(sig.name)
        stop.set()

    notifier = Notifier.from_env()
    limiter: LimiterHandle | None = None

    def port_names() -> list[str]:
        return [p.name for hub in runtime.hubs for p in hub.ports]

    def reloaded() -> None:
        if limiter is not None:
            limiter.limiter.set_ports(port_names())

    if runtime.reloadable:
        settings.reload = _config_reload(runtime, notifier, reloaded)
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_stop, sig)
    loop.add_signal_handler(RELOAD_SIGNAL, _reload, settings)
    tasks: list[asyncio.Future[None]] = []
    http = None
    try:
        runtime.start()
        if settings.http is not None:
            from .web.server import HttpServer  # aiohttp is loaded only when asked for

            http = HttpServer(settings.http, lambda: runtime.hubs)
            await http.start()
        # From here on a warning repeated on one port is summarised (hub.logs).
        limiter = install_limiter(loop, port_names())
        notifier.ready(runtime.summary())
        if config_interval := settings.report_interval_s:
            tasks.append(asyncio.ensure_future(_report_losses(lambda: runtime.hubs, config_interval)))
        if settings.status_interval_s > 0:
            tasks.append(
                asyncio.ensure_future(_report_status(lambda: runtime.hubs, settings.status_interval_s))
            )
        if notifier.watchdog_interval_s:
            tasks.append(asyncio.ensure_future(_watchdog(notifier, runtime, notifier.watchdog_interval_s)))
        await stop.wait()
        log.info("Stopping (%s)", stopped_by[0] if stopped_by else "stop")
        notifier.stopping()
    finally:
        for sig in (*STOP_SIGNALS, RELOAD_SIGNAL):
            loop.remove_signal_handler(sig)
        for t in tasks:
            t.cancel()
        if http is not None:
            await http.close()
        runtime.close()
        await _finish_tasks(SHUTDOWN_GRACE_S)
        if limiter is not None:
            limiter.close()
        for p in (p for hub in runtime.hubs for p in hub.ports):
            if p.lost:
                log.warning("Write lost %s: %d bytes, total %d", p.name, p.lost, p.lost_total)
        notifier.close()


def main(argv: list[str] | None = None, prog: str = "hub4com", banner: Sequence[str] = ()) -> int:
    """Run the hub; return the exit status. No traceback reaches the user.

    `prog` names the command in error lines: a wrapper that runs the hub passes
    its own name, so the user reads the command they typed. `banner` lines are
    printed (after `prog`) once the command line proved good, before the hub starts.
    """
    try:
        return _main(sys.argv[1:] if argv is None else argv, prog, banner)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line for the user, the traceback with -v
        log.debug("internal error", exc_info=True)
        print(f"{prog}: internal error: {exc!r} (run with -v for details)", file=sys.stderr)
        return EXIT_FAILURE


def _main(argv: list[str], prog: str = "hub4com", banner: Sequence[str] = ()) -> int:
    registry = Registry()
    if not argv:
        print(f"hub4com: no ports given; hub4com --help shows how ({EXAMPLE_HINT})", file=sys.stderr)
        return EXIT_USAGE
    if "--help" in argv or "-h" in argv:
        _setup_logging(0)
        print_help(registry, sys.stdout)
        return 0
    if "--version" in argv:
        print(f"hub4com {__version__}")
        return 0
    for a in argv:
        if a.lower().startswith("--help="):
            _setup_logging(0)
            known = print_module_help(registry, a[len("--help=") :], sys.stdout, sys.stderr)
            return 0 if known else EXIT_USAGE
    service = _service_option(argv)
    if service is not None:
        return _main_service(registry, *service)
    _setup_logging(sum({"-v": 1, "-vv": 2, "-q": -1}.get(a, 0) for a in argv))
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        try:
            config = build(argv, loop, registry)
        except UsageError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        for line in banner:
            print(f"{prog}: {line}", file=sys.stderr)
        sys.stderr.flush()
        runtime = Runtime.for_hub(config.hub, config.warnings, registry)
        settings = Settings(config.report_interval_s, config.status_interval_s, config.http, config.reload)
        return _run(loop, runtime, settings, prog)
    finally:
        loop.close()


def _run(loop: asyncio.AbstractEventLoop, runtime: Runtime, settings: Settings, prog: str = "hub4com") -> int:
    try:
        loop.run_until_complete(_serve(runtime, settings))
    except UsageError as exc:  # a port's argument found bad (or in use) as it started
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_FAILURE if isinstance(exc, InUseError) else EXIT_USAGE
    except HubError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        pass
    return 0


#: The options that replace a run of the command line by something else.
SERVICE_OPTIONS = ("--config=", "--check-config=", "--import-ser2net=")
SERVICE_FLAGS = ("--check-config", "--print-config")


def _service_option(argv: list[str]) -> tuple[str, str | None, list[str]] | None:
    """(option, value, the other arguments) for a service option in `argv`, or None."""
    for i, a in enumerate(argv):
        low = a.lower()
        for name in SERVICE_OPTIONS:
            if low.startswith(name):
                return name.rstrip("="), a[len(name) :], argv[:i] + argv[i + 1 :]
        if low in SERVICE_FLAGS:
            return low, None, argv[:i] + argv[i + 1 :]
    return None


def _main_service(registry: Registry, option: str, value: str | None, rest: list[str]) -> int:
    """--config, --check-config, --print-config and --import-ser2net."""
    from .config import load_config
    from .configout import model_table, model_toml
    from .ser2net import import_ser2net

    verbosity = sum({"-v": 1, "-vv": 2, "-q": -1}.get(a, 0) for a in rest)
    _setup_logging(verbosity if option == "--config" else max(verbosity, 0) - 1)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        if option in ("--config", "--check-config") and value is not None:
            others = [a for a in rest if a.lower() not in CORE_FLAGS]
            if others:
                raise UsageError(others[0], f"Only -v and -q may go with {option}=")
            if not value:
                raise UsageError(f"{option}=", "Missing config file name")
            cfg = load_config(value, registry)
            runtime = Runtime.for_config(cfg, loop, registry)
            http = http_settings(cfg.http)
            if option == "--check-config":
                sys.stdout.write(model_table(cfg.merged()))
                return 0
            if not rest:
                _setup_logging(cfg.verbosity)
            return _run(loop, runtime, Settings(cfg.report_interval_s, cfg.status_interval_s, http))
        if option == "--import-ser2net":
            sys.stdout.write(import_ser2net(value or "", registry))
            return 0
        config = build(rest, loop, registry)
        if option == "--check-config":
            sys.stdout.write(model_table(config.model))
        else:
            sys.stdout.write(
                model_toml(
                    config.model,
                    "hub4com --config file made by --print-config from:\n"
                    + "hub4com "
                    + " ".join(_quote(a) for a in rest),
                )
            )
        return 0
    except UsageError as exc:
        print(f"hub4com: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        loop.close()


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


if __name__ == "__main__":
    sys.exit(main())
