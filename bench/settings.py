"""Sizes, counts and time limits for one bench run (full or --quick)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["MiB", "Settings"]

MiB = 1 << 20


@dataclass
class Settings:
    """Everything a scenario needs to know about this run."""

    #: Where relays' config files and logs go (a fresh temporary directory).
    workdir: Path
    repeat: int = 5
    quick: bool = False
    #: Bytes per direction in the single-relay throughput scenarios.
    throughput_bytes: int = 64 * MiB
    #: Fan-out: client counts, and bytes per client = max(min, total / clients).
    fanout_clients: tuple[int, ...] = (1, 10, 100, 1000)
    fanout_total_bytes: int = 32 * MiB
    fanout_min_bytes: int = 1 * MiB
    latency_samples: int = 2000
    #: Small-message rate: messages per run.
    rate_messages: int = 200_000
    #: Pause between latency samples, so the load stays light.
    latency_gap_s: float = 0.0005
    memory_clients: int = 1000
    storm_clients: int = 500
    #: Service: pty ports no application opens, and devices with two listeners each.
    service_ptys: int = 1000
    service_devices: int = 40
    #: Service: how long idle CPU is measured (after a second of settling).
    service_idle_s: float = 5.0
    #: Storm: time limit for all clients to be served (a relay that hits it gets ">limit").
    storm_timeout_s: float = 60.0
    #: Upper bound on one run once the relay is up.
    run_timeout_s: float = 120.0
    #: Before each run, wait up to this long for other processes to leave the CPUs idle.
    quiet_wait_s: float = 10.0
    #: Upper bound on a relay's start-up (and on connecting its clients).
    start_timeout_s: float = 20.0

    @classmethod
    def make(cls, workdir: Path, quick: bool, repeat: int | None) -> Settings:
        """Full settings, or small sizes and one repetition for --quick."""
        if not quick:
            return cls(workdir=workdir, repeat=repeat or 5)
        return cls(
            workdir=workdir,
            repeat=repeat or 1,
            quick=True,
            throughput_bytes=4 * MiB,
            fanout_total_bytes=4 * MiB,
            fanout_min_bytes=MiB // 4,
            fanout_clients=(1, 100, 1000),
            latency_samples=200,
            rate_messages=20_000,
            memory_clients=200,
            storm_clients=100,
            service_ptys=200,
            service_devices=10,
            service_idle_s=2.0,
            storm_timeout_s=15.0,
            quiet_wait_s=0.0,
            run_timeout_s=30.0,
        )

    def fanout_bytes(self, clients: int) -> int:
        """Bytes each client receives in the fan-out scenario."""
        return max(self.fanout_min_bytes, self.fanout_total_bytes // clients)
