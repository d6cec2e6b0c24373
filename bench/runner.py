"""Runs every case of every scenario against every relay, alternating relays between repetitions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .endpoints import PtyDevice, free_port
from .procs import busy_cores
from .relays import NotSupported, PtyTcp, Relay
from .scenarios.base import Case, Run, Scenario, started
from .settings import Settings

__all__ = ["BUSY_CORES", "CaseResult", "Outcome", "ScenarioResult", "preflight", "run_all"]

#: Pause before each run, so sockets and ptys of the last run are gone; the
#: machine's CPU use during it is recorded as the run's background load.
PAUSE_S = 0.3
#: Other processes' load (cores) above which a run counts as disturbed.
BUSY_CORES = 0.5
#: Why a relay measured for every event loop only sits out a scenario.
ONE_LOOP = "measured in the latency and rate scenarios only; --both-loops measures it everywhere"


@dataclass
class Outcome:
    """All runs of one case against one relay, or why the relay cannot do it."""

    runs: list[Run] = field(default_factory=list)
    skipped: str = ""


@dataclass
class CaseResult:
    case: Case
    outcomes: dict[str, Outcome]


@dataclass
class ScenarioResult:
    scenario: Scenario
    cases: list[CaseResult]


def run_all(
    scenarios: list[Scenario], relays: list[Relay], settings: Settings, say: Callable[[str], None]
) -> list[ScenarioResult]:
    """Run every case of every scenario against every relay."""
    return [
        ScenarioResult(sc, [_run_case(sc, case, relays, settings, say) for case in sc.cases(settings)])
        for sc in scenarios
    ]


def _run_case(
    scenario: Scenario, case: Case, relays: list[Relay], settings: Settings, say: Callable[[str], None]
) -> CaseResult:
    """All repetitions of one case; repetition k starts with the k-th relay, so none always goes first."""
    outcomes = {r.name: Outcome() for r in relays}
    for rep in range(settings.repeat):
        shift = rep % len(relays)
        for relay in relays[shift:] + relays[:shift]:
            outcome = outcomes[relay.name]
            if relay.every_loop_only and not scenario.every_loop:
                outcome.skipped = ONE_LOOP
            if outcome.skipped:
                continue
            label = f"{scenario.name} [{case.name}] {relay.name} {rep + 1}/{settings.repeat}"
            background = _quiet_moment(settings.quiet_wait_s)
            try:
                run = scenario.run(relay, case, settings)
            except NotSupported as exc:
                outcome.skipped = str(exc)
                say(f"{label}: n/a ({exc})")
                continue
            except (OSError, EOFError, RuntimeError) as exc:
                run = Run.invalid(f"{type(exc).__name__}: {exc}")
            run.background_cores = background
            outcome.runs.append(run)
            say(f"{label}: {_describe(scenario, run)}")
    return CaseResult(case, outcomes)


def preflight(relay: Relay, settings: Settings) -> str | None:
    """Start the relay once for a one-client pty device: None if it came up, else why not.

    Catches a broken relay (or a half-edited tree) before a long run, not after.
    """
    try:
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port), port, settings):
                return None
    except (OSError, RuntimeError) as exc:
        return f"did not start: {exc}"


def _quiet_moment(max_wait_s: float) -> float:
    """Wait (up to max_wait_s) until other processes leave the CPUs idle; return the last load."""
    load = busy_cores(PAUSE_S)
    deadline = time.monotonic() + max_wait_s
    while load > BUSY_CORES and time.monotonic() < deadline:
        load = busy_cores(PAUSE_S)
    return load


def _describe(scenario: Scenario, run: Run) -> str:
    parts = [f"{m.label} {run.values[m.key]:.4g} {m.unit}" for m in scenario.metrics if m.key in run.values]
    text = ", ".join(parts) or "no values"
    return text if run.valid else f"INVALID ({run.note}) {text}"
