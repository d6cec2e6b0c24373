"""Memory (RSS) of the relay holding many idle clients."""

from __future__ import annotations

import time

from ..endpoints import PtyDevice, close_all, connect_synced, free_port
from ..flows import Pattern, Sink, Source, pump
from ..relays import PtyTcp, Relay
from ..settings import Settings
from .base import Case, Metric, Run, Scenario, started

RSS = Metric("rss_mib", "RSS", "MiB", higher_is_better=False, speed=False)
PER_CLIENT = Metric("per_client_kib", "RSS per client", "KiB", higher_is_better=False, speed=False)
#: Idle time before reading RSS.
SETTLE_S = 1.0
HELLO = 64


class IdleMemory(Scenario):
    name = "memory"
    title = "Memory with many idle clients"
    about = (
        "The relay serves a pty device to N clients on one port; every client proves its "
        f"path works (one byte to the device, then {HELLO} bytes from the device to all, "
        "CRC-checked), then all sit idle for a second and the relay's VmRSS is read. Per "
        "client = (that RSS - RSS of the same relay set up for one client, idle) / N."
    )
    metrics = (RSS, PER_CLIENT)

    def cases(self, settings: Settings) -> list[Case]:
        return [Case(f"{settings.memory_clients} idle clients", {"clients": settings.memory_clients})]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        count = int(case.params["clients"])
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port, 1), port, settings) as proc:
                time.sleep(SETTLE_S)
                base = proc.rss_bytes()
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port, count), port, settings) as proc:
                clients = connect_synced(port, count, dev.master, settings.run_timeout_s)
                try:
                    source = Source(dev.master, HELLO, Pattern())
                    sinks = [Sink(c.fileno(), HELLO) for c in clients]
                    finished = pump([source], sinks, settings.run_timeout_s)
                    time.sleep(SETTLE_S)
                    rss = proc.rss_bytes()
                finally:
                    close_all(clients)
        values = {"rss_mib": rss / (1 << 20), "per_client_kib": (rss - base) / count / 1024}
        problems = [p for p in (s.check(source) for s in sinks) if p]
        if not finished or problems:
            return Run(values, valid=False, note=(problems or ["timeout"])[0])
        return Run(values)
