"""The relay's CPU per small-message round trip: a figure that stays steady on a busy machine.

    python -m bench.msgcost [--relay hub] [--topology pty|tcp|both] [--trips N] [--no-uvloop] [--gap S]

Runs N round trips of a 32-byte message through one relay, back to back (the next
message leaves when the echo is back), as the latency scenario does without its
pauses, and reads the relay's CPU time (all threads, /proc) before and after.
Prints microseconds of relay CPU per round trip, and the wall-clock round trip
p50 for reference. Wall-clock latency on a shared machine varies from run to run;
CPU per message hardly does, so this is the figure to watch while optimising the
data path. `--gap` pauses between messages as the latency scenario does (the
relay then wakes cold for each one). `--relay bare` (or `bare+N`, N layers of
bookkeeping per chunk) runs bench/bare_relay.py, the floor for a Python relay,
TCP to TCP only. Stops what it starts by pid.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .procs import CLK_TCK, RelayProcess, stop_all
from .relays import SLOTS, BareRelay, NotSupported, Relay, make_relays
from .scenarios.latency import relay_ends, round_trips
from .settings import Settings

WARMUP = 200


def _trips(near: int, far: int, count: int, timeout_s: float, gap_s: float = 0.0) -> list[float]:
    rtts = round_trips(near, far, count, gap_s, timeout_s)
    if isinstance(rtts, str):
        raise RuntimeError(rtts)
    return rtts


@dataclass
class Sample:
    """Per round trip, in microseconds: relay CPU (all, user, system) and wall-clock p50."""

    cpu: float
    user: float
    sys: float
    wall_p50: float


def measure(relay: Relay, topology: str, trips: int, settings: Settings, gap_s: float = 0.0) -> Sample:
    """What one fresh relay process costs per round trip."""
    with relay_ends(relay, topology == "pty", settings) as (proc, near, far):
        return _timed(proc, near, far, trips, settings.start_timeout_s, gap_s)


def _user_sys(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (clock ticks, all threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def _timed(proc: RelayProcess, near: int, far: int, trips: int, timeout_s: float, gap_s: float) -> Sample:
    _trips(near, far, WARMUP, timeout_s)
    cpu0, (u0, s0) = proc.cpu_seconds(), _user_sys(proc.pid)
    rtts = _trips(near, far, trips, timeout_s, gap_s)
    cpu, (u1, s1) = proc.cpu_seconds() - cpu0, _user_sys(proc.pid)
    n = trips
    return Sample(1e6 * cpu / n, 1e6 * (u1 - u0) / n, 1e6 * (s1 - s0) / n, 1e6 * statistics.median(rtts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.msgcost", description=__doc__.splitlines()[0])
    p.add_argument("--relay", action="append", help="relays to measure (default: hub)")
    p.add_argument("--topology", choices=["pty", "tcp", "both"], default="both")
    p.add_argument("--trips", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--listener", choices=["slots", "multi"], default=SLOTS)
    p.add_argument("--gap", type=float, default=0.0, help="seconds between messages (default 0)")
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="hub-msgcost-"))
    settings = Settings(workdir=workdir)
    relays = make_relays((not args.no_uvloop,), (args.listener,))
    wanted = args.relay or [relays[0].name]
    for name in wanted:  # bare, bare+N: the floor, on request only
        if re.fullmatch(r"bare(\+\d+)?", name):
            relays.append(BareRelay(int(name[5:] or 0)))
    chosen = [r for r in relays if r.name in wanted]
    if not chosen:
        print(f"no such relay; known: {', '.join(r.name for r in relays)}", file=sys.stderr)
        return 2
    topologies = ["pty", "tcp"] if args.topology == "both" else [args.topology]
    try:
        for relay in chosen:
            for topo in topologies:
                try:
                    runs = [measure(relay, topo, args.trips, settings, args.gap) for _ in range(args.repeat)]
                except (OSError, RuntimeError, EOFError, NotSupported) as exc:  # no such topology, a failure
                    print(f"{relay.name:12} {topo}: {type(exc).__name__}: {exc}")
                    continue
                cpu = sorted(r.cpu for r in runs)

                def med(key: str, runs: list[Sample] = runs) -> float:
                    return statistics.median(getattr(r, key) for r in runs)

                print(
                    f"{relay.name:12} {topo}: CPU {med('cpu'):6.1f} us/round trip "
                    f"({cpu[0]:.1f}-{cpu[-1]:.1f}; user {med('user'):.1f}, sys {med('sys'):.1f}), "
                    f"wall p50 {med('wall_p50'):6.1f} us",
                    flush=True,
                )
    finally:
        stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
