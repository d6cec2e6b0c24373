"""Fan-out: one device to N TCP clients on one port, read by separate processes."""

from __future__ import annotations

import time

from ..endpoints import PtyDevice, close_all, connect_synced, free_port
from ..flows import Pattern, Sink, Source, pump
from ..procs import RelayProcess
from ..readers import ReaderProcesses, check
from ..relays import PtyTcp, Relay
from ..settings import Settings
from .base import CPU_PER_MB, Case, Metric, Run, Scenario, measure_transfer, started

PER_CLIENT = Metric("mbps", "per-client throughput", "MB/s", higher_is_better=True)
#: Processes reading the clients (the machine has two cores; the relay needs one).
READERS = 2
#: From this many clients on, they are read by READERS processes of their own:
#: reading hundreds of sockets in Python would limit the relay. Fewer clients are
#: read by the bench itself (more processes than cores would only compete).
READERS_FROM = 100


class FanOut(Scenario):
    name = "fanout"
    title = "Fan-out: one device to N clients"
    about = (
        "The device (a pty master) sends one stream; every one of N clients on the same "
        f"port must receive all of it, CRC-checked. From {READERS_FROM} clients on, they are "
        f"read by {READERS} processes of their own, so the bench's reading is not what limits "
        "the relay. "
        "Per-client MB/s is each client's bytes over the time until the last client had all "
        "of them; relay CPU is per MB delivered (all clients together)."
    )
    metrics = (PER_CLIENT, CPU_PER_MB)

    def cases(self, settings: Settings) -> list[Case]:
        return [Case(f"{n} client{'s' if n > 1 else ''}", {"clients": n}) for n in settings.fanout_clients]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        count = int(case.params["clients"])
        size = settings.fanout_bytes(count)
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port, count), port, settings) as proc:
                clients = connect_synced(port, count, dev.master, settings.run_timeout_s)
                try:
                    source = Source(dev.master, size, Pattern())
                    if count < READERS_FROM:
                        sinks = [Sink(c.fileno(), size) for c in clients]
                        return measure_transfer(proc, [source], sinks, settings.run_timeout_s)
                    with ReaderProcesses(clients, size, READERS, settings.run_timeout_s) as readers:
                        readers.wait_ready()
                        return _transfer(proc, source, readers, settings)
                finally:
                    close_all(clients)


def _transfer(proc: RelayProcess, source: Source, readers: ReaderProcesses, settings: Settings) -> Run:
    """Write the source, collect the readers' results; measure_transfer's figures."""
    cpu0 = proc.cpu_seconds()
    t0 = time.perf_counter()
    finished = pump([source], [], settings.run_timeout_s)
    results = readers.results()
    cpu = proc.cpu_seconds() - cpu0
    elapsed = max((t for _, _, t, _ in results), default=t0) - t0
    delivered = sum(r[0] for r in results)
    values = {"cpu_ms_per_mb": 1000 * cpu / max(delivered / 1e6, 1e-9)}
    problems = [p for p in (source.error, *(check(source, r) for r in results)) if p]
    if finished and not problems:
        values["mbps"] = source.total / 1e6 / max(elapsed, 1e-9)
        return Run(values)
    if not finished:
        problems.insert(0, "timeout writing the source")
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return Run(values, valid=False, note=problems[0] + more)
