"""TCP -> TCP relay throughput (a TCP proxy), each direction on its own."""

from __future__ import annotations

from ..endpoints import close_all, connect_through, free_port, listen_socket
from ..flows import Pattern, Sink, Source
from ..relays import Relay, TcpTcp
from ..settings import Settings
from .base import CPU_PER_MB, MBPS, Case, Run, Scenario, measure_transfer, started

UP = "client->server"
DOWN = "server->client"


class TcpTcpThroughput(Scenario):
    name = "tcp-tcp"
    title = "TCP -> TCP relay throughput"
    about = (
        "The relay accepts one client on 127.0.0.1 and connects to a server the bench "
        "runs on 127.0.0.1. Seeded random data, each direction separately, counted and CRC-checked."
    )
    metrics = (MBPS, CPU_PER_MB)

    def cases(self, settings: Settings) -> list[Case]:
        return [Case(UP), Case(DOWN)]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        size = settings.throughput_bytes
        timeout = settings.start_timeout_s
        with listen_socket() as server:
            port = free_port()
            with started(relay, TcpTcp(port, server.getsockname()[1]), port, settings) as proc:
                clients = connect_through(port, server, timeout)
                try:
                    near, far = clients[0].fileno(), clients[1].fileno()
                    if case.name == DOWN:
                        near, far = far, near
                    source, sink = Source(near, size, Pattern()), Sink(far, size)
                    return measure_transfer(proc, [source], [sink], settings.run_timeout_s)
                finally:
                    close_all(clients)
