"""Running as a service: many ports at rest (idle CPU, RSS), start-up and reload times."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from ..endpoints import PtyDevice, free_ports
from ..procs import RelayProcess, listening_ports
from ..relays import PtyLinks, Rack, Relay
from ..settings import Settings
from .base import Case, Metric, Run, Scenario, launched

STARTUP = Metric("startup_s", "start-up", "s", higher_is_better=False, speed=False)
IDLE_CPU = Metric("idle_cpu_pct", "idle CPU", "% of a core", higher_is_better=False, speed=False)
RSS = Metric("rss_mib", "RSS", "MiB", higher_is_better=False, speed=False)
RELOAD = Metric("reload_ms", "reload, one device changed", "ms", higher_is_better=False, speed=False)
#: Time at rest before idle CPU is measured.
SETTLE_S = 1.0
#: A pty port's link directory, inside the run directory.
LINKS = "links"


class ServiceScale(Scenario):
    name = "service"
    title = "Many ports at rest: idle CPU, memory, start-up and reload"
    about = (
        "N pty ports that no application opens (also with --route=All:All, N^2 routes), "
        "and a rack of pty devices each served as RFC 2217 (up to 4 clients) and raw TCP, "
        "from a config file (our hub) or a ser2net.yaml. Start-up: from the process start "
        "until every link exists or every port listens. Idle CPU: the relay's CPU time "
        "over a quiet window after a second at rest. Reload: SIGHUP after one device's "
        "baud rate changed in the file, until systemd's READY=1 (NOTIFY_SOCKET); "
        "ser2net gives no sign when its reload is done. Not data-path speeds: a Python "
        "process starts slower than a C one."
    )
    metrics = (STARTUP, IDLE_CPU, RSS, RELOAD)

    def cases(self, settings: Settings) -> list[Case]:
        n, d = settings.service_ptys, settings.service_devices
        return [
            Case(f"{n} ptys, no application", {"ptys": n}),
            Case(f"{n} ptys, --route=All:All", {"ptys": n, "all_to_all": 1}),
            Case(f"{d} devices x 2 listeners", {"devices": d}),
        ]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        if "ptys" in case.params:
            return self._ptys(relay, int(case.params["ptys"]), bool(case.params.get("all_to_all")), settings)
        return self._rack(relay, int(case.params["devices"]), settings)

    def _ptys(self, relay: Relay, count: int, all_to_all: bool, settings: Settings) -> Run:
        links = settings.workdir / f"{LINKS}-{time.monotonic_ns()}"
        links.mkdir()
        topo = PtyLinks(str(links), count, all_to_all)
        with launched(relay, topo, settings) as (proc, _):
            _wait(proc, lambda: all(os.path.islink(p) for p in topo.links()), "every link", settings)
            values = {"startup_s": time.monotonic() - proc.started_at, **_at_rest(proc, settings)}
        return Run(values)

    def _rack(self, relay: Relay, count: int, settings: Settings) -> Run:
        with ExitStack() as stack:
            devices = [stack.enter_context(PtyDevice()) for _ in range(count)]
            free = free_ports(2 * count)
            ports = tuple(zip(free[::2], free[1::2], strict=True))
            topo = Rack(tuple(d.path for d in devices), ports)
            notify = stack.enter_context(_NotifySocket(settings.workdir / f"notify-{time.monotonic_ns()}"))
            proc, run_dir = stack.enter_context(launched(relay, topo, settings, notify.env))
            wanted = {p for pair in ports for p in pair}
            _wait(proc, lambda: wanted <= listening_ports().keys(), "every port listening", settings)
            values = {"startup_s": time.monotonic() - proc.started_at, **_at_rest(proc, settings)}
            if relay.reload_signal is None:
                return Run(values)
            notify.drain()
            relay.command(replace(topo, first_baud=57600), run_dir)  # rewrites the config file
            t0 = time.monotonic()
            proc.signal(relay.reload_signal)
            if not notify.wait_for("READY=1", after="RELOADING=1", timeout_s=settings.run_timeout_s):
                return Run(values, valid=False, note="no READY=1 after the reload")
            values["reload_ms"] = 1000 * (time.monotonic() - t0)
            _wait(proc, lambda: wanted <= listening_ports().keys(), "every port after the reload", settings)
            return Run(values)


def _wait(proc: RelayProcess, ready: Callable[[], bool], what: str, settings: Settings) -> None:
    """Wait until `ready()` is true. Raises RuntimeError (the relay died or was too slow)."""
    deadline = time.monotonic() + settings.start_timeout_s
    while not ready():
        if not proc.alive():
            raise RuntimeError(f"the relay exited before {what}: {proc.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {what} after {settings.start_timeout_s:.0f} s: {proc.log_tail()}")
        time.sleep(0.01)


def _at_rest(proc: RelayProcess, settings: Settings) -> dict[str, float]:
    """Idle CPU (% of a core over the quiet window) and RSS, after settling."""
    time.sleep(SETTLE_S)
    cpu0, t0 = proc.cpu_seconds(), time.monotonic()
    time.sleep(settings.service_idle_s)
    cpu = proc.cpu_seconds() - cpu0
    return {"idle_cpu_pct": 100 * cpu / (time.monotonic() - t0), "rss_mib": proc.rss_bytes() / (1 << 20)}


class _NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.env = {"NOTIFY_SOCKET": str(path)}

    def __enter__(self) -> _NotifySocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)

    def drain(self) -> None:
        """Forget what was sent so far."""
        try:
            while True:
                self.sock.recv(4096)
        except BlockingIOError:
            pass

    def wait_for(self, field: str, after: str, timeout_s: float) -> bool:
        """True once a datagram with `field` came after one with `after`."""
        self.sock.settimeout(timeout_s)
        seen_after = False
        try:
            while True:
                msg = self.sock.recv(4096).decode(errors="replace").splitlines()
                seen_after |= after in msg
                if seen_after and field in msg:
                    return True
        except TimeoutError:
            return False
        finally:
            self.sock.setblocking(False)
