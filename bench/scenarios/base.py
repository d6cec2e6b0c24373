"""What a scenario is: cases, metrics, and one run of one case against one relay."""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..flows import Sink, Source, pump
from ..procs import RelayProcess
from ..readers import check, transfer
from ..relays import Relay, Topology
from ..settings import Settings

__all__ = [
    "CPU_PER_MB",
    "MBPS",
    "Case",
    "Metric",
    "Run",
    "Scenario",
    "launched",
    "measure_apart",
    "measure_transfer",
    "started",
]

_run_ids = itertools.count(1)


@dataclass(frozen=True)
class Metric:
    """One number a scenario reports."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    #: A speed (throughput, latency, time): counts for "faster than ser2net everywhere".
    speed: bool = True


@dataclass(frozen=True)
class Case:
    """One configuration of a scenario (a direction, a client count, ...)."""

    name: str
    params: dict[str, int | str] = field(default_factory=dict)


@dataclass
class Run:
    """The outcome of one run: metric values, and whether the data checks passed."""

    values: dict[str, float] = field(default_factory=dict)
    valid: bool = True
    note: str = ""
    #: Cores the machine kept busy just before the run (other processes' load).
    background_cores: float = 0.0
    #: Metrics whose value is only a lower bound (the run hit its time limit).
    lower_bounds: tuple[str, ...] = ()

    @classmethod
    def invalid(cls, note: str, **values: float) -> Run:
        return cls(values=dict(values), valid=False, note=note)


class Scenario(ABC):
    """A benchmark. Subclasses set the class attributes and implement cases() and run()."""

    #: Name used with --scenario and in the JSON file.
    name: str = ""
    title: str = ""
    #: One or two sentences for the markdown report: what is measured, how.
    about: str = ""
    metrics: tuple[Metric, ...] = ()
    #: Also measured with our hub on the standard asyncio loop by default (not
    #: only with --both-loops): the figures uvloop matters most for.
    every_loop: bool = False

    @abstractmethod
    def cases(self, settings: Settings) -> list[Case]:
        """The cases to run, in order."""

    @abstractmethod
    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        """Run one case against one relay. Raises NotSupported, StartupError or OSError."""


@contextmanager
def launched(
    relay: Relay, topo: Topology, settings: Settings, env: dict[str, str] | None = None
) -> Iterator[tuple[RelayProcess, Path]]:
    """Start `relay` for `topo` (with `env` added to the environment); yield it and its
    run directory; stop it (by pid) afterwards. Raises NotSupported before starting."""
    run_dir = settings.workdir / f"{next(_run_ids):04d}-{relay.name}"
    run_dir.mkdir()
    argv = relay.command(topo, run_dir)
    with RelayProcess(argv, run_dir / "relay.log", cwd=relay.cwd, env=env) as proc:
        yield proc, run_dir


@contextmanager
def started(relay: Relay, topo: Topology, port: int, settings: Settings) -> Iterator[RelayProcess]:
    """Start `relay` for `topo`, wait until `port` listens, stop it (by pid) afterwards."""
    with launched(relay, topo, settings) as (proc, _):
        proc.wait_listening(port, settings.start_timeout_s)
        yield proc


#: Shared metrics.
MBPS = Metric("mbps", "throughput", "MB/s", higher_is_better=True)
CPU_PER_MB = Metric("cpu_ms_per_mb", "relay CPU", "CPU ms/MB", higher_is_better=False, speed=False)


def measure_transfer(proc: RelayProcess, sources: list[Source], sinks: list[Sink], timeout_s: float) -> Run:
    """Pump the data, then check every sink against the (single) source.

    `mbps` is the bytes each sink received over the time until the last one had
    all of its bytes (MB = 10^6 bytes); `cpu_ms_per_mb` is the relay's CPU time (ms) over
    all bytes delivered.
    """
    cpu0 = proc.cpu_seconds()
    t0 = time.perf_counter()
    finished = pump(sources, sinks, timeout_s)
    elapsed = max((s.t_done for s in sinks), default=t0) - t0
    cpu = proc.cpu_seconds() - cpu0
    (source,) = sources
    delivered = sum(s.received for s in sinks)
    values = {"cpu_ms_per_mb": 1000 * cpu / max(delivered / 1e6, 1e-9)}
    if finished:
        values["mbps"] = source.total / 1e6 / max(elapsed, 1e-9)
    problems = [p for p in (source.error, *(s.check(source) for s in sinks)) if p]
    if not finished:
        problems.insert(0, f"timeout after {timeout_s:.0f} s")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Run(values, valid=False, note=problems[0] + more)
    return Run(values)


def measure_apart(
    proc: RelayProcess, source: Source, fds: list[int], expected: int, readers: int, timeout_s: float
) -> Run:
    """measure_transfer() with the sinks (`fds`, `expected` bytes each) read by
    `readers` child processes (bench.readers), not by the bench's own thread."""
    done = transfer(proc, source, fds, expected, readers, timeout_s)
    delivered = sum(r[0] for r in done.results)
    values = {"cpu_ms_per_mb": 1000 * done.cpu_s / max(delivered / 1e6, 1e-9)}
    problems = [p for p in (source.error, *(check(source, r) for r in done.results)) if p]
    if done.finished and not problems:
        values["mbps"] = source.total / 1e6 / max(done.elapsed_s, 1e-9)
        return Run(values)
    if not done.finished:
        problems.insert(0, "timeout writing the source")
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return Run(values, valid=False, note=problems[0] + more)
