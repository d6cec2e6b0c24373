"""The targets from the issues, checked against a result document: pass, miss or n/a."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .report import fmt, median_of

__all__ = ["TARGETS", "evaluate"]

Doc = dict[str, Any]
#: (status, detail) for one of our relays.
Verdict = tuple[str, str]


def _cases(doc: Doc, scenario: str) -> Iterator[Doc]:
    for sc in doc["scenarios"]:
        if sc["name"] == scenario:
            yield from sc["cases"]


def _ratio(doc: Doc, scenario: str, case: str, ours: str, peer: str, metric: str) -> float | None:
    a = median_of(doc, scenario, case, ours, metric)
    b = median_of(doc, scenario, case, peer, metric)
    return None if a is None or not b else a / b


def _verdict(checks: list[tuple[str, bool]]) -> Verdict:
    if not checks:
        return "n/a", "not measured"
    status = "pass" if all(ok for _, ok in checks) else "miss"
    return status, "; ".join(text for text, _ in checks)


def socat_parity(doc: Doc, ours: str) -> Verdict:
    """>= 0.8x socat's throughput on every single-relay case."""
    checks = []
    for scenario in ("pty-tcp", "tcp-tcp"):
        for case in _cases(doc, scenario):
            r = _ratio(doc, scenario, case["name"], ours, "socat", "mbps")
            if r is not None:
                checks.append((f"{scenario} {case['name']} {r:.2f}x", r >= 0.8))
    return _verdict(checks)


def ser2tcp_fanout(doc: Doc, ours: str) -> Verdict:
    """>= 2x ser2tcp's per-client throughput at 100 clients."""
    checks = []
    for case in _cases(doc, "fanout"):
        if case["params"].get("clients") == 100:
            r = _ratio(doc, "fanout", case["name"], ours, "ser2tcp", "mbps")
            if r is not None:
                checks.append((f"{r:.2f}x per client", r >= 2.0))
    return _verdict(checks)


def faster_than_ser2net(doc: Doc, ours: str) -> Verdict:
    """Better than ser2net on every speed metric (throughput, latency, time) measured for both."""
    checks = []
    for sc in doc["scenarios"]:
        for case in sc["cases"]:
            for m in sc["metrics"]:
                if not m["speed"]:
                    continue
                r = _ratio(doc, sc["name"], case["name"], ours, "ser2net", m["key"])
                if r is not None:
                    ok = r > 1 if m["higher_is_better"] else r < 1
                    checks.append((f"{sc['name']} {case['name']} {m['label']} {r:.2f}x", ok))
    if not checks:
        return "n/a", "not measured"
    misses = [text for text, ok in checks if not ok]
    if misses:
        return "miss", "; ".join(misses)
    return "pass", f"all {len(checks)} comparisons"


def _at_least_peers(
    doc: Doc, ours: str, scenario: str, peers: tuple[str, ...], case: str = "", speed_only: bool = True
) -> Verdict:
    """Every (speed) metric of `scenario` (of one case, if given) at least as good as each peer's."""
    checks = []
    for sc in doc["scenarios"]:
        if sc["name"] != scenario:
            continue
        for c in sc["cases"]:
            if case and c["name"] != case:
                continue
            for m in sc["metrics"]:
                if speed_only and not m["speed"]:
                    continue
                for peer in peers:
                    r = _ratio(doc, scenario, c["name"], ours, peer, m["key"])
                    if r is not None:
                        ok = r >= 1 if m["higher_is_better"] else r <= 1
                        checks.append((f"{c['name']} {m['label']} {r:.2f}x {peer}", ok))
    if not checks:
        return "n/a", "not measured"
    misses = [text for text, ok in checks if not ok]
    return ("miss", "; ".join(misses)) if misses else ("pass", f"all {len(checks)} comparisons")


def latency_vs_c_peers(doc: Doc, ours: str) -> Verdict:
    """Round trip p50 and p99 at or below socat's and ser2net's, every case (issue 15)."""
    return _at_least_peers(doc, ours, "latency", ("socat", "ser2net"))


def rate_vs_c_peers(doc: Doc, ours: str) -> Verdict:
    """32-byte messages per second at least socat's and ser2net's (issue 15)."""
    return _at_least_peers(doc, ours, "rate", ("socat", "ser2net"))


def fanout_1000(doc: Doc, ours: str) -> Verdict:
    """At 1,000 clients: per-client throughput above and CPU per MB below ser2tcp's and ser2net's."""
    return _at_least_peers(doc, ours, "fanout", ("ser2tcp", "ser2net"), "1000 clients", speed_only=False)


#: RFC 2217 on all-0xFF data against our raw relay (issue 15; was 0.5 in issue 8).
IAC_HEAVY_RATIO = 0.9


def rfc2217_iac_heavy(doc: Doc, ours: str) -> Verdict:
    """RFC 2217 on all-0xFF data at no less than 0.9 of our own raw relay, per direction."""
    cases = {
        (c["params"].get("direction"), c["params"].get("data")): c["name"] for c in _cases(doc, "rfc2217")
    }
    checks = []
    for (direction, data), name in cases.items():
        raw = cases.get((direction, "raw"))
        if data != "0xFF" or raw is None:
            continue
        iac = median_of(doc, "rfc2217", name, ours, "mbps")
        base = median_of(doc, "rfc2217", raw, ours, "mbps")
        if iac is not None and base:
            checks.append((f"{direction} 0xFF {iac / base:.2f}x raw", iac / base >= IAC_HEAVY_RATIO))
    return _verdict(checks)


def latency_per_hop(doc: Doc, ours: str) -> Verdict:
    """p99 added latency under 1 ms per hop (RTT p99 / 2, an upper bound)."""
    checks = []
    for case in _cases(doc, "latency"):
        p99 = median_of(doc, "latency", case["name"], ours, "rtt_p99_ms")
        if p99 is not None:
            checks.append((f"p99 per hop <= {fmt(p99 / 2)} ms", p99 / 2 < 1.0))
    return _verdict(checks)


#: RSS per idle client (issue 15; was 64 KiB in issue 5).
RSS_PER_CLIENT_KIB = 2


def memory_per_client(doc: Doc, ours: str) -> Verdict:
    """Under 2 KiB of RSS per idle session."""
    checks = []
    for case in _cases(doc, "memory"):
        kib = median_of(doc, "memory", case["name"], ours, "per_client_kib")
        if kib is not None:
            checks.append((f"{fmt(kib)} KiB per client ({case['name']})", kib < RSS_PER_CLIENT_KIB))
    return _verdict(checks)


def idle_ptys(doc: Doc, ours: str) -> Verdict:
    """Idle CPU below 1% of a core with 1,000 pty ports nobody opened (issue 12)."""
    checks = []
    for case in _cases(doc, "service"):
        if case["params"].get("ptys"):
            pct = median_of(doc, "service", case["name"], ours, "idle_cpu_pct")
            if pct is not None:
                checks.append((f"{fmt(pct)}% ({case['name']})", pct < 1))
    return _verdict(checks)


TARGETS: tuple[tuple[str, Callable[[Doc, str], Verdict]], ...] = (
    (">= 0.8x socat, single relay", socat_parity),
    (">= 2x ser2tcp per client at 100 clients", ser2tcp_fanout),
    ("faster than ser2net everywhere", faster_than_ser2net),
    ("latency at or below socat and ser2net", latency_vs_c_peers),
    ("small-message rate at or above socat and ser2net", rate_vs_c_peers),
    ("1,000 clients: ahead of ser2tcp and ser2net", fanout_1000),
    (f"RFC 2217 on 0xFF data >= {IAC_HEAVY_RATIO}x raw", rfc2217_iac_heavy),
    ("p99 added latency < 1 ms per hop", latency_per_hop),
    (f"< {RSS_PER_CLIENT_KIB} KiB RSS per idle client", memory_per_client),
    ("< 1% of a core idle, unopened ptys", idle_ptys),
)


def evaluate(doc: Doc, ours: list[str]) -> list[Doc]:
    """One row per target and per relay of ours (none where a relay measured in some
    scenarios only, hub-asyncio by default, has nothing to check)."""
    partial = {r["name"] for r in doc["relays"] if r.get("every_loop_only")}
    rows = []
    for name, check in TARGETS:
        for relay in ours:
            status, detail = check(doc, relay)
            if status != "n/a" or relay not in partial:
                rows.append({"target": name, "relay": relay, "status": status, "detail": detail})
    return rows
