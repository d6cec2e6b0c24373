"""The result document (JSON) and its markdown rendering.

The JSON holds every run; the markdown is rendered from the JSON alone, so a saved
result file can be re-rendered. Summaries use valid runs only.
"""

from __future__ import annotations

import statistics
from typing import Any

from .runner import BUSY_CORES, Outcome, ScenarioResult
from .scenarios.base import Metric

__all__ = ["document", "fmt", "markdown", "median_of", "medians", "previous_of"]

Doc = dict[str, Any]


def _summary(outcome: Outcome, metric: Metric) -> dict[str, float | int] | None:
    runs = [r for r in outcome.runs if r.valid and metric.key in r.values]
    if not runs:
        return None
    values = [r.values[metric.key] for r in runs]
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "valid_runs": len(values),
        "runs": len(outcome.runs),
        "lower_bound": any(metric.key in r.lower_bounds for r in runs),
    }


def document(results: list[ScenarioResult], meta: Doc, relays: list[Doc]) -> Doc:
    """The JSON-ready result document (targets are added by the caller)."""
    scenarios = []
    for res in results:
        sc = res.scenario
        cases = []
        for cr in res.cases:
            per_relay = {}
            for name, outcome in cr.outcomes.items():
                per_relay[name] = {
                    "skipped": outcome.skipped,
                    "runs": [
                        {
                            "values": r.values,
                            "valid": r.valid,
                            "note": r.note,
                            "background_cores": round(r.background_cores, 2),
                            "lower_bounds": list(r.lower_bounds),
                        }
                        for r in outcome.runs
                    ],
                    "summary": {m.key: _summary(outcome, m) for m in sc.metrics},
                }
            cases.append({"name": cr.case.name, "params": cr.case.params, "results": per_relay})
        scenarios.append(
            {
                "name": sc.name,
                "title": sc.title,
                "about": sc.about,
                "metrics": [vars(m) for m in sc.metrics],
                "cases": cases,
            }
        )
    return {"meta": meta, "relays": relays, "scenarios": scenarios, "targets": []}


def median_of(doc: Doc, scenario: str, case: str, relay: str, metric: str) -> float | None:
    """The median of valid runs, or None if there is none."""
    for sc in doc["scenarios"]:
        if sc["name"] != scenario:
            continue
        for c in sc["cases"]:
            if c["name"] == case and relay in c["results"]:
                summary = c["results"][relay]["summary"].get(metric)
                return None if summary is None else float(summary["median"])
    return None


def fmt(value: float) -> str:
    """Three significant digits, never in exponent form."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.2g}" if value < 0.01 else f"{value:.3g}"


def _cell(result: Doc, metric: Doc) -> str:
    if result["skipped"]:
        return "n/a"
    summary = result["summary"].get(metric["key"])
    if summary is None:  # no valid run, or a metric the case does not have
        return "invalid" if any(not r["valid"] for r in result["runs"]) else "-"
    text = (">" if summary["lower_bound"] else "") + fmt(summary["median"])
    if summary["runs"] > 1:
        text += f" ({fmt(summary['min'])}-{fmt(summary['max'])})"
    if summary["valid_runs"] < summary["runs"]:
        text += f" [{summary['valid_runs']}/{summary['runs']} valid]"
    return text


def _ratio(ours: Doc, peer: Doc, metric: Doc) -> str:
    a = ours["summary"].get(metric["key"])
    b = peer["summary"].get(metric["key"])
    if a is None or b is None or not b["median"]:
        return ""
    ratio = a["median"] / b["median"]
    if a["lower_bound"] and b["lower_bound"]:
        return "?"
    # A peer's lower bound makes the ratio an upper bound, and the other way round.
    prefix = "<" if b["lower_bound"] else ">" if a["lower_bound"] else ""
    return f"{prefix}{fmt(ratio)}x"


def _measured(sc: Doc, names: list[str]) -> list[str]:
    """The relays that ran some case of the scenario (the others get a note, not a column)."""
    return [n for n in names if any(not c["results"][n]["skipped"] for c in sc["cases"] if n in c["results"])]


def _table(sc: Doc, ours: list[str], peers: list[str]) -> list[str]:
    ours, peers = _measured(sc, ours), _measured(sc, peers)
    names = ours + peers
    pairs = [(o, p) for o in ours for p in peers]
    head = ["case", "metric", *names, *(f"{o}/{p}" for o, p in pairs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in sc["cases"]:
        res = case["results"]
        for m in sc["metrics"]:
            better = "higher is better" if m["higher_is_better"] else "lower is better"
            row = [case["name"], f"{m['label']}, {m['unit']} ({better})"]
            row += [_cell(res[n], m) for n in names]
            row += [_ratio(res[o], res[p], m) for o, p in pairs]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def _skipped(sc: Doc) -> list[str]:
    """One line per relay and reason a relay could not run some cases."""
    cases: dict[tuple[str, str], list[str]] = {}
    for case in sc["cases"]:
        for relay, res in case["results"].items():
            if res["skipped"]:
                cases.setdefault((relay, res["skipped"]), []).append(case["name"])
    return [
        f"- {relay}: n/a ({why}) in {'every case' if len(names) == len(sc['cases']) else ', '.join(names)}."
        for (relay, why), names in cases.items()
    ]


def _notes(sc: Doc) -> list[str]:
    notes = _skipped(sc)
    for case in sc["cases"]:
        for relay, res in case["results"].items():
            runs = res["runs"]
            bounded = [r["note"] for r in runs if r["valid"] and r["lower_bounds"]]
            if bounded:
                notes.append(
                    f"- {relay}, {case['name']}: {len(bounded)} of {len(runs)} runs hit the time "
                    f"limit (shown as a lower bound, >): {bounded[0]}"
                )
            bad = [r["note"] for r in runs if not r["valid"]]
            if bad:
                notes.append(f"- {relay}, {case['name']}: {len(bad)} of {len(runs)} runs invalid: {bad[0]}")
    return notes


def _background(doc: Doc) -> str:
    """One line on how busy the machine was just before the runs."""
    loads = [
        run["background_cores"]
        for sc in doc["scenarios"]
        for case in sc["cases"]
        for res in case["results"].values()
        for run in res["runs"]
    ]
    if not loads:
        return "No runs."
    busy = sum(1 for x in loads if x > BUSY_CORES)
    return (
        f"Machine load just before each run (all processes, 0.3 s sample): median "
        f"{statistics.median(loads):.2f} cores, max {max(loads):.2f}; {busy} of {len(loads)} runs "
        f"started with more than {BUSY_CORES} cores busy even after waiting up to "
        f"{doc['meta']['settings']['quiet_wait_s']:.0f} s for a quiet moment (those are noisier)."
    )


def medians(doc: Doc) -> dict[tuple[str, str, str, str], float]:
    """Every figure of a result document: (scenario, case, metric, relay) -> median."""
    out = {}
    for sc in doc["scenarios"]:
        for case in sc["cases"]:
            for m in sc["metrics"]:
                for relay, res in case["results"].items():
                    summary = res["summary"].get(m["key"])
                    if summary is not None:
                        out[(sc["name"], case["name"], m["key"], relay)] = float(summary["median"])
    return out


def previous_of(old: Doc) -> Doc:
    """What a new result keeps of the previous one to show beside its own figures."""
    return {
        "date": old["meta"]["date"],
        "command": old["meta"]["command"],
        "machine": old["meta"].get("machine", {}),
        "relays": {r["name"]: r["version"] for r in old["relays"] if not r["unavailable"]},
        "medians": [[*key, value] for key, value in medians(old).items()],
        "metrics": _metric_info(old),
    }


def _metric_info(doc: Doc) -> dict[str, list[Any]]:
    """scenario/metric key -> [label, unit, higher_is_better]."""
    return {
        f"{sc['name']}/{m['key']}": [m["label"], m["unit"], m["higher_is_better"]]
        for sc in doc["scenarios"]
        for m in sc["metrics"]
    }


#: A change of a figure against the previous run beyond this fraction is called out.
CHANGE = 0.10


def _against_previous(doc: Doc) -> list[str]:
    """Every figure of the previous run beside this run's (and this run's new ones)."""
    prev = doc.get("previous")
    if not prev:
        return []
    before = {tuple(row[:4]): float(row[4]) for row in prev["medians"]}
    now = medians(doc)
    units = {**prev.get("metrics", {}), **_metric_info(doc)}
    out = [
        "",
        "## Against the previous run",
        "",
        f"Every figure of the previous run ({prev['date']}, `{prev['command']}`) beside this run's "
        f"median; better or worse where they differ by more than {CHANGE:.0%} (runs on a shared "
        "machine vary by about that much). Figures only one of the runs has show `-` for the other.",
        "",
        *_other_machine(prev.get("machine", {}), doc["meta"]["machine"]),
        "| scenario | case | metric | relay | previous | now | now/previous | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # This run's order (scenarios, cases, relays), then what only the previous run had.
    for key in [*now, *(k for k in before if k not in now)]:
        scenario, case, metric, relay = key
        label, unit, higher = units.get(f"{scenario}/{metric}", (metric, "?", True))
        a, b = before.get(key), now.get(key)
        ratio = verdict = ""
        if a and b is not None:
            ratio = f"{fmt(b / a)}x"
            better = b / a - 1 if higher else a / b - 1
            verdict = "better" if better > CHANGE else "**worse**" if better < -CHANGE else ""
        cells = [scenario, case, f"{label}, {unit}", relay]
        cells += [fmt(a) if a is not None else "-", fmt(b) if b is not None else "-", ratio, verdict]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _other_machine(before: Doc, now: Doc) -> list[str]:
    """A warning (and a blank line) when the previous run ran on another machine or kernel."""
    changed = [f"{k} {before[k]} -> {now[k]}" for k in now if k in before and before[k] != now[k]]
    if not changed:
        return []
    return [
        f"**The previous run ran elsewhere** ({'; '.join(changed)}): its absolute figures do not "
        "compare with these, the peers' included; compare the ratios to the peers within each run.",
        "",
    ]


def markdown(doc: Doc) -> str:
    """The report: setup, targets, then one table per scenario."""
    meta = doc["meta"]
    machine = meta["machine"]
    ran = [r for r in doc["relays"] if not r["unavailable"]]
    ours = [r["name"] for r in ran if r["ours"]]
    peers = [r["name"] for r in ran if not r["ours"]]
    out = [
        "# Benchmark results",
        "",
        f"Measured {meta['date']} on {machine['cpu']} ({machine['cores']} cores), Linux "
        f"{machine['kernel']}, Python {machine['python']}, with `{meta['command']}`.",
        f"{meta['settings']['repeat']} repetition(s) per case, relays alternating; each cell is "
        "the median (min-max) of valid runs; ratios are ours/peer medians. MB = 10^6 bytes.",
        "",
        "Relays:",
        "",
    ]
    for r in doc["relays"]:
        status = f"**not measured**: {r['unavailable']}" if r["unavailable"] else r["version"]
        out.append(f"- **{r['name']}**: {status}")
    out += ["", _background(doc)]
    if doc["targets"]:
        out += ["", "## Targets", "", "| target | relay | result | detail |", "|---|---|---|---|"]
        for t in doc["targets"]:
            status = f"**{t['status']}**" if t["status"] == "miss" else t["status"]
            out.append(f"| {t['target']} | {t['relay']} | {status} | {t['detail']} |")
    for sc in doc["scenarios"]:
        out += ["", f"## {sc['name']}: {sc['title']}", "", sc["about"], "", *_table(sc, ours, peers)]
        notes = _notes(sc)
        if notes:
            out += ["", *notes]
    out += _against_previous(doc)
    return "\n".join(out) + "\n"
