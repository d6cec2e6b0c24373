"""Small-message rate: 32-byte messages, each written on its own, through one relay."""

from __future__ import annotations

from ..endpoints import PtyDevice, close_all, connect_synced, free_port
from ..flows import Pattern, Sink, Source
from ..relays import PtyTcp, Relay
from ..settings import Settings
from .base import Case, Metric, Run, Scenario, measure_transfer, started

MESSAGE_SIZE = 32
#: Messages the source writes per wake-up, each with its own write().
BURST = 64
RATE = Metric("msgs_per_s", "message rate", "msg/s", higher_is_better=True)
CPU = Metric("cpu_us_per_msg", "relay CPU", "CPU us/msg", higher_is_better=False, speed=False)
DEV_TO_NET = "dev->net"
NET_TO_DEV = "net->dev"


class MessageRate(Scenario):
    name = "rate"
    title = "Small-message rate through one relay"
    about = (
        f"The source writes {MESSAGE_SIZE}-byte messages back to back, each with its own "
        "write() (the device into its pty, or a TCP client with TCP_NODELAY), and the "
        "other end reads them; seeded data, counted and CRC-checked. Messages per second "
        "from the first write to the last byte read, and the relay's CPU per message. The "
        "relay may read several messages at once, as it would from a busy device."
    )
    metrics = (RATE, CPU)
    every_loop = True

    def cases(self, settings: Settings) -> list[Case]:
        return [Case(DEV_TO_NET), Case(NET_TO_DEV)]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        size = settings.rate_messages * MESSAGE_SIZE
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port), port, settings) as proc:
                clients = connect_synced(port, 1, dev.master, settings.start_timeout_s)
                try:
                    near, far = dev.master, clients[0].fileno()
                    if case.name == NET_TO_DEV:
                        near, far = far, near
                    source = Source(near, size, Pattern(), chunk=MESSAGE_SIZE, burst=BURST)
                    run = measure_transfer(proc, [source], [Sink(far, size)], settings.run_timeout_s)
                finally:
                    close_all(clients)
        # measure_transfer counts MB: turn its figures into messages.
        values = {"cpu_us_per_msg": run.values["cpu_ms_per_mb"] * MESSAGE_SIZE / 1000}
        if "mbps" in run.values:
            values["msgs_per_s"] = run.values["mbps"] * 1e6 / MESSAGE_SIZE
        return Run(values, valid=run.valid, note=run.note)
