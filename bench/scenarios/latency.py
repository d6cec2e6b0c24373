"""Round-trip latency of a small message through one relay at light load."""

from __future__ import annotations

import math
import time

from ..endpoints import PtyDevice, close_all, connect_synced, free_port, read_exactly, write_all
from ..relays import PtyTcp, Relay
from ..settings import Settings
from .base import Case, Metric, Run, Scenario, started

P50 = Metric("rtt_p50_ms", "round trip p50", "ms", higher_is_better=False)
P99 = Metric("rtt_p99_ms", "round trip p99", "ms", higher_is_better=False)
#: Samples thrown away first (connection warm-up, first allocations).
WARMUP = 20
MESSAGE_SIZE = 32


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


class Latency(Scenario):
    name = "latency"
    title = "Latency: small message round trip, one hop"
    about = (
        f"The device writes a {MESSAGE_SIZE}-byte message, the TCP client reads it and "
        "sends it straight back, the device reads it: one round trip crosses the relay "
        "twice. One message at a time with a short pause (light load); each echo is "
        "compared with what was sent. Added latency per hop is at most RTT/2 (the "
        "bench's own syscalls are included)."
    )
    metrics = (P50, P99)

    def cases(self, settings: Settings) -> list[Case]:
        return [Case("pty<->TCP")]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        timeout = settings.start_timeout_s
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port), port, settings):
                clients = connect_synced(port, 1, dev.master, timeout)
                try:
                    client = clients[0].fileno()
                    rtts = []
                    for i in range(WARMUP + settings.latency_samples):
                        msg = f"{i:08d}".encode().ljust(MESSAGE_SIZE, b".")
                        t0 = time.perf_counter()
                        write_all(dev.master, msg, timeout)
                        echo = read_exactly(client, MESSAGE_SIZE, timeout)
                        write_all(client, echo, timeout)
                        back = read_exactly(dev.master, MESSAGE_SIZE, timeout)
                        rtts.append(time.perf_counter() - t0)
                        if back != msg:
                            return Run.invalid(f"message {i} came back as {back!r}")
                        time.sleep(settings.latency_gap_s)
                finally:
                    close_all(clients)
        ms = sorted(1000 * r for r in rtts[WARMUP:])
        return Run({"rtt_p50_ms": percentile(ms, 50), "rtt_p99_ms": percentile(ms, 99)})
