"""Prometheus metrics: a prometheus_client Collector that reads the hub's counters at scrape time.

No metric object is updated on the data path: each scrape walks the ports
(through the provider) and reports what their counters say now. Labels are
stable: ``hub`` (its position, "0" for the one hub of today), ``port`` (the
port's name, e.g. ``TCPM(2)``) and ``kind`` (the driver).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..port import Drop
from .views import Provider, hub_label

__all__ = ["HubCollector", "make_registry"]

_PORT = ["hub", "port", "kind"]


class HubCollector(Collector):
    """Reports every port of every hub the provider returns, plus `extra()` server counters.

    `extra()` returns {"tap_clients": n, "tap_lost_events": n, "http_refused": {reason: n}}.
    """

    def __init__(self, provider: Provider, extra: Callable[[], dict[str, Any]] | None = None):
        self.provider = provider
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        def counter(name: str, doc: str, extra: list[str] | None = None) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=_PORT + (extra or []))

        def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=_PORT + (extra or []))

        nbytes = counter("hub4com_port_bytes", "Bytes read from and written to a port", ["direction"])
        msgs = counter("hub4com_port_messages", "Messages (data chunks, signals) in and out", ["direction"])
        dropped = counter("hub4com_port_dropped_bytes", "Bytes lost on the way out, by reason", ["reason"])
        unheard = counter("hub4com_port_unheard_bytes", "Bytes written while the port had no connection")
        queue = gauge("hub4com_port_queue_bytes", "Bytes waiting in the port's write queue (longest session)")
        sessions = gauge("hub4com_port_sessions", "Clients connected to a multi-client port")
        connects = counter("hub4com_port_connects", "Times the port came up (connections, sessions, reopens)")
        reopens = counter("hub4com_port_reopens", "Times a lost device was opened again")
        line = counter("hub4com_port_line_state_changes", "Modem-line, baud-rate and line-control reports")
        up = gauge("hub4com_port_up", "1 while the port works (device present, listener listening)")
        connected = gauge("hub4com_port_connected", "1 while the port is connected")
        required = gauge("hub4com_port_required", "1 if /healthz requires this port (--required)")
        refused = counter(
            "hub4com_port_refused_connections", "Connections a listener refused, by reason", ["reason"]
        )
        healthy = GaugeMetricFamily("hub4com_healthy", "1 while every required port works (/healthz 200)")
        ok = True
        gates_seen: set[tuple[str, str]] = set()
        for i, h in enumerate(self.provider()):
            label = hub_label(h, i)
            for p in h.ports:
                lv = [label, p.name, p.kind or type(p).__name__]
                nbytes.add_metric([*lv, "in"], p.bytes_in)
                nbytes.add_metric([*lv, "out"], p.bytes_out)
                msgs.add_metric([*lv, "in"], p.msgs_in)
                msgs.add_metric([*lv, "out"], p.msgs_out)
                for reason in Drop:
                    dropped.add_metric([*lv, reason.value], p.drops.get(reason, 0))
                unheard.add_metric(lv, p.unheard)
                queue.add_metric(lv, p.queued_bytes())
                connects.add_metric(lv, p.connects)
                reopens.add_metric(lv, p.reopens)
                line.add_metric(lv, p.line_changes)
                problem = p.problem()
                up.add_metric(lv, 0 if problem is not None else 1)
                connected.add_metric(lv, 1 if p.connected else 0)
                required.add_metric(lv, 1 if p.required else 0)
                if p.required and problem is not None:
                    ok = False
                snap = p.snapshot()
                if snap.get("sessions") is not None:
                    sessions.add_metric(lv, len(snap["sessions"]))
                gate = snap.get("gate")
                address = str(snap.get("address"))
                if gate is not None and (label, address) not in gates_seen:
                    # Ports sharing one listening socket share its counters: report them once.
                    gates_seen.add((label, address))
                    for reason, n in gate["refused"].items():
                        refused.add_metric([*lv, reason], n)
                    refused.add_metric([*lv, "tls_handshake"], gate["tls_failures"])
        healthy.add_metric([], 1 if ok else 0)
        yield from (nbytes, msgs, dropped, unheard, queue, sessions, connects, reopens, line, up, connected)
        yield required
        yield from (refused, healthy)
        if self.extra is not None:
            extra = self.extra()
            taps = GaugeMetricFamily("hub4com_tap_clients", "Live taps attached now")
            taps.add_metric([], extra.get("tap_clients", 0))
            lost = CounterMetricFamily("hub4com_tap_lost_events", "Tap lines slow tap clients did not get")
            lost.add_metric([], extra.get("tap_lost_events", 0))
            http = CounterMetricFamily(
                "hub4com_http_refused_connections", "Connections the HTTP server refused", labels=["reason"]
            )
            for reason, n in extra.get("http_refused", {}).items():
                http.add_metric([reason], n)
            yield from (taps, lost, http)


def make_registry(provider: Provider, extra: Callable[[], dict[str, Any]] | None = None) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one) holding a HubCollector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(provider, extra))
    return registry
