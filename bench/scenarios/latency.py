"""Round-trip latency of a small message through one relay at light load."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from ..endpoints import (
    PtyDevice,
    close_all,
    connect_synced,
    connect_through,
    free_port,
    listen_socket,
    read_exactly,
    write_all,
)
from ..procs import RelayProcess
from ..relays import PtyTcp, Relay, TcpTcp
from ..settings import Settings
from .base import Case, Metric, Run, Scenario, started

P50 = Metric("rtt_p50_ms", "round trip p50", "ms", higher_is_better=False)
P99 = Metric("rtt_p99_ms", "round trip p99", "ms", higher_is_better=False)
#: Steadier than wall-clock latency on a shared machine: what one round trip costs the relay.
CPU = Metric("cpu_us_per_rt", "relay CPU per round trip", "CPU us", higher_is_better=False, speed=False)
#: Percentiles kept with every run (the plot draws them); p50 and p99 are the metrics.
PERCENTILES = (1, 10, 25, 50, 75, 90, 95, 99, 99.9)
#: Samples thrown away first (connection warm-up, first allocations).
WARMUP = 20
MESSAGE_SIZE = 32
PTY_TCP = "pty<->TCP"
TCP_TCP = "TCP<->TCP"


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def percentile_key(q: float) -> str:
    """The run value that holds percentile q: rtt_p50_ms, rtt_p99.9_ms, ..."""
    return f"rtt_p{q:g}_ms"


def round_trips(near: int, far: int, count: int, gap_s: float, timeout_s: float) -> list[float] | str:
    """`count` round trips near -> relay -> far, echoed -> relay -> near, one at a time.

    Returns the round-trip times in seconds, or what went wrong.
    """
    rtts = []
    for i in range(count):
        msg = f"{i:08d}".encode().ljust(MESSAGE_SIZE, b".")
        t0 = time.perf_counter()
        write_all(near, msg, timeout_s)
        echo = read_exactly(far, MESSAGE_SIZE, timeout_s)
        write_all(far, echo, timeout_s)
        back = read_exactly(near, MESSAGE_SIZE, timeout_s)
        rtts.append(time.perf_counter() - t0)
        if back != msg:
            return f"message {i} came back as {back!r}"
        if gap_s:
            time.sleep(gap_s)
    return rtts


class Latency(Scenario):
    name = "latency"
    title = "Latency: small message round trip, one hop"
    about = (
        f"A {MESSAGE_SIZE}-byte message crosses the relay, the far end reads it and sends it "
        "straight back, and it crosses the relay again: pty<->TCP (the device writes, a TCP "
        "client echoes) and TCP<->TCP (a client writes, the server the relay connects to "
        "echoes). One message at a time with a short pause (light load); each echo is "
        "compared with what was sent. Added latency per hop is at most RTT/2 (the bench's "
        "own system calls are included). Relay CPU per round trip (user and system) over "
        "the samples varies far less than wall-clock time when others share the machine."
    )
    metrics = (P50, P99, CPU)
    every_loop = True

    def cases(self, settings: Settings) -> list[Case]:
        return [Case(PTY_TCP), Case(TCP_TCP)]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        with relay_ends(relay, case.name == PTY_TCP, settings) as (proc, near, far):
            return _measure(proc, near, far, settings)


@contextlib.contextmanager
def relay_ends(relay: Relay, pty: bool, settings: Settings) -> Iterator[tuple[RelayProcess, int, int]]:
    """A started relay and the fds of both ends of a message's way through it: the
    pty device and its TCP client (`pty`), or a TCP client and the server the relay
    connected to. Closed and stopped afterwards."""
    timeout = settings.start_timeout_s
    if pty:
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port), port, settings) as proc:
                clients = connect_synced(port, 1, dev.master, timeout)
                try:
                    yield proc, dev.master, clients[0].fileno()
                finally:
                    close_all(clients)
        return
    with listen_socket() as server:
        port = free_port()
        with started(relay, TcpTcp(port, server.getsockname()[1]), port, settings) as proc:
            clients = connect_through(port, server, timeout)
            try:
                yield proc, clients[0].fileno(), clients[1].fileno()
            finally:
                close_all(clients)


def _measure(proc: RelayProcess, near: int, far: int, settings: Settings) -> Run:
    """The round trips of one run: percentiles after the warm-up, relay CPU over all."""
    count = WARMUP + settings.latency_samples
    cpu0 = proc.cpu_seconds()
    rtts = round_trips(near, far, count, settings.latency_gap_s, settings.start_timeout_s)
    cpu = proc.cpu_seconds() - cpu0
    if isinstance(rtts, str):
        return Run.invalid(rtts)
    ms = sorted(1000 * r for r in rtts[WARMUP:])
    values = {percentile_key(q): percentile(ms, q) for q in PERCENTILES}
    values["cpu_us_per_rt"] = 1e6 * cpu / count
    return Run(values)
