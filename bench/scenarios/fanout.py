"""Fan-out: one device to N TCP clients on one port, read by separate processes."""

from __future__ import annotations

from ..endpoints import PtyDevice, close_all, connect_synced, free_port
from ..flows import Pattern, Sink, Source
from ..relays import PtyTcp, Relay
from ..settings import Settings
from .base import CPU_PER_MB, Case, Metric, Run, Scenario, measure_apart, measure_transfer, started

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
                    fds = [c.fileno() for c in clients]
                    return measure_apart(proc, source, fds, size, READERS, settings.run_timeout_s)
                finally:
                    close_all(clients)
