"""python -m bench: run the scenarios against our hub and the installed peers.

Writes latest.json, latest.md and throughput.png (if matplotlib is importable) to
bench/results/ (bench/results/quick/ with --quick) and prints the markdown report.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import procs
from .plot import plot, plot_latency
from .relays import LISTENERS, REPO, Relay, make_relays, snapshot_hub
from .report import document, markdown, previous_of
from .runner import preflight, run_all
from .scenarios import SCENARIOS
from .settings import Settings
from .targets import evaluate

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    names = [s.name for s in SCENARIOS]
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes and one repetition (a smoke run)")
    p.add_argument("--scenario", action="append", choices=names, help="run only these (repeatable)")
    p.add_argument("--relay", action="append", help="run only these relays (repeatable), e.g. hub, socat")
    p.add_argument("--repeat", type=int, help="repetitions per case (default 5, 1 with --quick)")
    loops = p.add_mutually_exclusive_group()
    loops.add_argument("--no-uvloop", action="store_true", help="run our hub on the standard asyncio loop")
    loops.add_argument("--both-loops", action="store_true", help="run our hub with uvloop and without")
    p.add_argument(
        "--listener",
        choices=[*LISTENERS, "both"],
        default="both",
        help="how our hub serves TCP clients: a *PORT slot per client (slots), the tcp-multi "
        "listener (multi), or both side by side (the default)",
    )
    p.add_argument(
        "--out", type=Path, help=f"result directory (default {RESULTS}, or {RESULTS / 'quick'} with --quick)"
    )
    p.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="run nothing: re-render the report and plot (and re-check the targets) from a result file",
    )
    p.add_argument(
        "--previous",
        type=Path,
        metavar="JSON",
        help="the run to show beside this one (default: the latest.json this run replaces)",
    )
    p.add_argument("--keep", action="store_true", help="keep the relays' config files and logs")
    p.add_argument(
        "--live", action="store_true", help="run our hub from the working tree, not from a copy made at start"
    )
    p.add_argument(
        "--hub-src",
        type=Path,
        default=REPO,
        help="the tree holding our hub's hub/, drivers/, filters/ (default: this repository); "
        "for measuring a changed copy against the results of the original",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and relays, then exit")
    args = p.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def machine() -> dict[str, str | int]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def raise_fd_limit() -> None:
    """Room for 1,000 clients on each side (relays inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS
    if args.render:
        doc = json.loads(args.render.read_text())
        if args.previous:
            doc["previous"] = previous_of(json.loads(args.previous.read_text()))
        write_results(doc, args.out)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    try:
        return _bench(args, workdir, sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        say("interrupted; every relay started was stopped")
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            say(f"relay configs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _bench(args: argparse.Namespace, workdir: Path, argv: list[str]) -> int:
    relays = _relays(args, workdir)
    if relays is None:
        return 2
    scenarios = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:18} {s.title}")
        for r in relays:
            print(f"{r.name:18} {r.unavailable() or 'available'}")
        return 0
    raise_fd_limit()
    settings = Settings.make(workdir, quick=args.quick, repeat=args.repeat)
    info = _check(relays, settings)
    usable = [r for r, entry in zip(relays, info, strict=True) if not entry["unavailable"]]
    if not usable:
        say("no relay to measure")
        return 1
    results = run_all(scenarios, usable, settings, say)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "machine": machine(),
        "settings": {k: v for k, v in vars(settings).items() if k != "workdir"},
    }
    doc = document(results, meta, info)
    previous = args.previous or args.out / "latest.json"
    if previous.exists():
        doc["previous"] = previous_of(json.loads(previous.read_text()))
    write_results(doc, args.out)
    return 0


def _relays(args: argparse.Namespace, workdir: Path) -> list[Relay] | None:
    """The relays asked for (our hub from a fresh copy unless --live); None if a name is unknown."""
    origin = args.hub_src.resolve()
    src, digest = (origin if args.live else None), ""
    if not args.live and not args.list:
        src = workdir / "hub-src"
        digest = snapshot_hub(src, origin)
    loops = (True, False) if args.both_loops else (not args.no_uvloop,)
    listeners = LISTENERS if args.listener == "both" else (args.listener,)
    relays = make_relays(loops, listeners, src, digest, origin, asyncio_for_latency=True)
    if not args.relay:
        return relays
    unknown = set(args.relay) - {r.name for r in relays}
    if unknown:
        say(f"unknown relay(s): {', '.join(sorted(unknown))}; known: {', '.join(r.name for r in relays)}")
        return None
    return [r for r in relays if r.name in args.relay]


def _check(relays: list[Relay], settings: Settings) -> list[dict[str, Any]]:
    """Each relay's entry for the report: installed and starting (preflight), with its version."""
    info = []
    for r in relays:
        why = r.unavailable() or preflight(r, settings)
        if why:
            say(f"skipping {r.name}: {why}")
        info.append(
            {
                "name": r.name,
                "ours": r.ours,
                "unavailable": why,
                "version": "" if why else r.version(),
                "every_loop_only": r.every_loop_only,
            }
        )
    return info


def write_results(doc: dict[str, Any], out: Path) -> None:
    """Check the targets, then write latest.json, latest.md and the plot to `out`; print the report."""
    doc["targets"] = evaluate(doc, [r["name"] for r in doc["relays"] if r["ours"] and not r["unavailable"]])
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(doc, indent=1) + "\n")
    text = markdown(doc)
    (out / "latest.md").write_text(text)
    print(text)
    say(plot(doc, out / "throughput.png"))
    say(plot_latency(doc, out / "latency.png"))


if __name__ == "__main__":
    sys.exit(main())
