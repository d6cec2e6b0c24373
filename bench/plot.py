"""PNGs of throughput and fan-out, and of latency percentiles, per relay, if matplotlib
is importable (optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot", "plot_latency"]

Doc = dict[str, Any]


def _scenario(doc: Doc, name: str) -> Doc | None:
    return next((sc for sc in doc["scenarios"] if sc["name"] == name), None)


def _errs(summaries: list[Doc | None]) -> tuple[list[float], list[list[float]]]:
    """Medians (0 where missing) and min/max error bar lengths."""
    meds = [s["median"] if s else 0.0 for s in summaries]
    lo = [s["median"] - s["min"] if s else 0.0 for s in summaries]
    hi = [s["max"] - s["median"] if s else 0.0 for s in summaries]
    return meds, [lo, hi]


def _bars(ax: Any, sc: Doc, relays: list[str]) -> None:
    """Grouped bars: one group per case, one bar per relay."""
    width = 0.8 / max(1, len(relays))
    for i, relay in enumerate(relays):
        summaries = [case["results"][relay]["summary"].get("mbps") for case in sc["cases"]]
        meds, err = _errs(summaries)
        xs = [x + i * width for x in range(len(meds))]
        ax.bar(xs, meds, width, yerr=err, label=relay, capsize=2)
    ticks = [x + width * (len(relays) - 1) / 2 for x in range(len(sc["cases"]))]
    ax.set_xticks(ticks, [case["name"] for case in sc["cases"]])
    ax.set_ylabel("MB/s (median, min-max)")
    ax.set_title(f"{sc['title']}\n(missing bar = n/a)", fontsize=10)
    ax.legend(fontsize=8)


def _fanout(ax: Any, sc: Doc, relays: list[str]) -> None:
    """Per-client MB/s against the number of clients, log-log."""
    for relay in relays:
        points = [
            (int(case["params"]["clients"]), case["results"][relay]["summary"].get("mbps"))
            for case in sc["cases"]
        ]
        points = [(n, s) for n, s in points if s]
        if points:
            meds, err = _errs([s for _, s in points])
            ax.errorbar([n for n, _ in points], meds, yerr=err, marker="o", capsize=3, label=relay)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("clients")
    ax.set_ylabel("MB/s per client")
    ax.set_title(sc["title"], fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _title(fig: Any, doc: Doc) -> None:
    machine = doc["meta"]["machine"]
    fig.suptitle(
        f"{machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, {doc['meta']['date']}",
        fontsize=9,
    )


def _percentiles(result: Doc) -> list[tuple[float, float]]:
    """(q, median over valid runs of the round trip's q-th percentile), for one relay."""
    runs = [r["values"] for r in result["runs"] if r["valid"]]
    points = []
    for key in runs[0] if runs else ():
        if key.startswith("rtt_p") and key.endswith("_ms"):
            values = sorted(v[key] for v in runs if key in v)
            points.append((float(key[5:-3]), values[len(values) // 2]))
    return sorted(points)


def plot_latency(doc: Doc, path: Path) -> str:
    """Round-trip time against percentile, a line per relay, a panel per case."""
    plt = _pyplot()
    if plt is None:
        return "matplotlib is not importable: no latency plot"
    sc = _scenario(doc, "latency")
    if sc is None:
        return "no latency results: no latency plot"
    fig, axes = plt.subplots(1, len(sc["cases"]), figsize=(6 * len(sc["cases"]), 4.6), squeeze=False)
    for ax, case in zip(axes[0], sc["cases"], strict=True):
        labels: list[str] = []
        for relay, result in case["results"].items():
            points = _percentiles(result)
            if not points:
                continue
            labels = [f"p{q:g}" for q, _ in points]
            ax.plot(range(len(points)), [ms for _, ms in points], marker="o", label=relay)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel("percentile of 32-byte round trips (median of runs)")
        ax.set_yscale("log")  # the tail is ten times the median; the medians must stay apart
        ax.yaxis.set_major_formatter(plt.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(plt.FormatStrFormatter("%g"))
        ax.set_ylabel("round trip, ms, log scale (lower is better)")
        ax.set_title(f"Latency, {case['name']}", fontsize=10)
        ax.grid(alpha=0.3)
        if labels:
            ax.legend(fontsize=8)
    _title(fig, doc)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"latency plot written to {path}"


def plot(doc: Doc, path: Path) -> str:
    """Write the plot; return a line saying what happened."""
    plt = _pyplot()
    if plt is None:
        return "matplotlib is not importable: no plot"
    relays = [r["name"] for r in doc["relays"] if not r["unavailable"]]
    panels = [
        (sc, draw)
        for sc, draw in ((_scenario(doc, "pty-tcp"), _bars), (_scenario(doc, "tcp-tcp"), _bars))
        if sc is not None
    ]
    fan = _scenario(doc, "fanout")
    if fan is not None:
        panels.append((fan, _fanout))
    if not panels:
        return "no throughput or fan-out results: no plot"
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.8), squeeze=False)
    for ax, (sc, draw) in zip(axes[0], panels, strict=True):
        draw(ax, sc, relays)
    _title(fig, doc)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"plot written to {path}"
