"""TCP -> TCP relay throughput (a TCP proxy), each direction on its own."""

from __future__ import annotations

from ..endpoints import close_all, connect_clients, free_port, listen_socket, read_exactly, write_all
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
            server.settimeout(timeout)
            with started(relay, TcpTcp(port, server.getsockname()[1]), port, settings) as proc:
                clients = connect_clients(port, 1, timeout)
                try:
                    # The relay may connect out at start or on the client's arrival.
                    write_all(clients[0].fileno(), b"s", timeout)
                    upstream, _ = server.accept()
                    clients.append(upstream)
                    upstream.setblocking(False)
                    if read_exactly(upstream.fileno(), 1, timeout) != b"s":
                        return Run.invalid("sync byte corrupted")
                    near, far = clients[0].fileno(), upstream.fileno()
                    if case.name == DOWN:
                        near, far = far, near
                    source, sink = Source(near, size, Pattern()), Sink(far, size)
                    return measure_transfer(proc, [source], [sink], settings.run_timeout_s)
                finally:
                    close_all(clients)
