"""pty -> TCP relay throughput, each direction on its own."""

from __future__ import annotations

from ..endpoints import PtyDevice, close_all, connect_synced, free_port
from ..flows import Pattern, Sink, Source
from ..relays import PtyTcp, Relay
from ..settings import Settings
from .base import CPU_PER_MB, MBPS, Case, Run, Scenario, measure_transfer, started

DEV_TO_NET = "dev->net"
NET_TO_DEV = "net->dev"


class PtyTcpThroughput(Scenario):
    name = "pty-tcp"
    title = "pty -> TCP relay throughput"
    about = (
        "The bench holds a pty master as the serial device; the relay opens the slave and "
        "serves it to one TCP client on 127.0.0.1. Seeded random data, each direction "
        "separately; every byte is counted and CRC-checked."
    )
    metrics = (MBPS, CPU_PER_MB)

    def cases(self, settings: Settings) -> list[Case]:
        return [Case(DEV_TO_NET), Case(NET_TO_DEV)]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        size = settings.throughput_bytes
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port), port, settings) as proc:
                clients = connect_synced(port, 1, dev.master, settings.start_timeout_s)
                try:
                    client = clients[0].fileno()
                    if case.name == DEV_TO_NET:
                        source, sink = Source(dev.master, size, Pattern()), Sink(client, size)
                    else:
                        source, sink = Source(client, size, Pattern()), Sink(dev.master, size)
                    return measure_transfer(proc, [source], [sink], settings.run_timeout_s)
                finally:
                    close_all(clients)
