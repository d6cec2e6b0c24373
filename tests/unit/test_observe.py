"""What the status page, JSON API, metrics and health read: port counters, snapshots, views,
the Prometheus collector and the HTTP options. Fake ports in a real hub; no sockets."""

from __future__ import annotations

import json

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hub.cli import build
from hub.errors import UsageError
from hub.messages import (
    LineControl,
    LocalBaudStatus,
    LocalLcStatus,
    ModemStatus,
    Msr,
    Parity,
    Pin,
    SetPins,
    StopBits,
)
from hub.port import Drop, PortState
from hub.web.metrics import make_registry
from hub.web.options import HttpOptions, parse_http_address
from hub.web.views import RateMeter, find_port, health, hub_summary, list_ports, port_view

from .fakes import new_loop, registry


def make(*argv: str):  # type: ignore[no-untyped-def]
    cfg = build(["--use-driver=fake", *argv], new_loop(), registry())
    cfg.hub.start()
    return cfg


# ---- counters and snapshots -------------------------------------------------------------


def test_drops_are_counted_by_reason() -> None:
    hub = make("--write-limit=0", "a", "--write-limit=10", "b", "c").hub
    a, b, c = hub.ports
    b.queued_bytes = lambda: 41  # type: ignore[method-assign]  # over the hard cap (4 x limit)
    c.emit_data(b"12345")  # c -> a only (default routes: 0 -> all, 1 -> 0)
    hub.ports[1].emit_data(b"xyz")  # b -> a
    a.emit_data(b"0123456789")  # a -> b (queue over its hard cap), c
    assert a.drops == {Drop.DISCARDED: 3}
    assert b.drops == {Drop.QUEUE_FULL: 10}
    assert c.drops == {}
    assert a.snapshot()["dropped"] == {"discarded": 3} and a.lost_total == 3


def test_snapshot_has_line_state_pins_and_counters() -> None:
    hub = make("a", "b").hub
    a, b = hub.ports
    a.set_connected(True, [LocalBaudStatus(4800), LocalLcStatus(LineControl(8, Parity.NONE, StopBits.ONE))])
    a.emit([ModemStatus(Msr.CTS | Msr.DCD, Msr.CTS | Msr.DSR | Msr.DCD)])
    a.emit_data(b"hello")
    b.emit([SetPins(Pin.DTR, Pin.DTR | Pin.RTS)])  # b -> a: pins requested of a
    snap = a.snapshot()
    assert json.loads(json.dumps(snap)) == snap, "plain JSON data"
    assert snap["name"] == "a(0)" and snap["kind"] == "fake"
    assert snap["state"] == PortState.CONNECTED.value and snap["connected"]
    assert snap["line"] == {"baud": 4800, "data_bits": 8, "parity": "none", "stop_bits": "1"}
    assert snap["modem"] == {"CTS": True, "DSR": False, "DCD": True}
    assert snap["pins"] == {"DTR": True, "RTS": False}
    assert snap["line_changes"] == 3 and snap["connects"] == 1
    assert (snap["bytes_in"], snap["msgs_in"]) == (5, 5)  # connect + 2 statuses, modem lines, data
    assert hub.ports[1].snapshot()["msgs_out"] == 5  # all of it routed 0 -> 1
    a.note_error("a(0) error: something")
    assert a.snapshot()["errors"][-1]["text"] == "a(0) error: something"


# ---- views: paging, filtering, health ---------------------------------------------------


def test_list_ports_filters_pages_and_snapshots_only_the_page() -> None:
    hub = make(*(f"p{i}" for i in range(1000))).hub
    for p in hub.ports[::3]:
        p.connected = True
    calls = []
    for p in hub.ports:
        original = p.snapshot
        p.snapshot = lambda original=original, p=p: (calls.append(p.index), original())[1]  # type: ignore[method-assign]
    page = list_ports([hub], RateMeter(), offset=100, limit=50)
    assert page["total"] == page["matched"] == 1000
    assert page["states"] == {"connected": 334, "waiting": 666}
    assert [p["index"] for p in page["ports"]] == list(range(100, 150))
    assert sorted(calls) == list(range(100, 150))
    found = list_ports([hub], None, query="p99", state="connected")
    assert [p["name"] for p in found["ports"]] == [
        "p99(99)",
        "p990(990)",
        "p993(993)",
        "p996(996)",
        "p999(999)",
    ]
    assert list_ports([hub], limit=10**6)["limit"] == 500


def test_find_port_by_name_or_index() -> None:
    hub = make("a", "b").hub
    assert find_port([hub], "b(1)") == (hub, hub.ports[1])
    assert find_port([hub], "0") == (hub, hub.ports[0])
    assert find_port([hub], "nope") is None and find_port([hub], "0", hub="1") is None


def test_health_counts_only_required_ports() -> None:
    cfg = make("--required=1", "a", "b")
    hub = cfg.hub
    hub.ports[0].problem = lambda: "device gone"  # type: ignore[method-assign]
    assert health([hub]) == (True, [])
    hub.ports[1].problem = lambda: "listener down"  # type: ignore[method-assign]
    assert health([hub]) == (False, [{"hub": "0", "port": "b(1)", "problem": "listener down"}])
    assert [p.required for p in make("a", "b").hub.ports] == [True, True]
    assert [p.required for p in make("--required=none", "a", "b").hub.ports] == [False, False]


def test_rates_and_summary() -> None:
    hub = make("a", "b").hub
    meter = RateMeter()
    meter.sample(hub.ports, 10.0)
    hub.ports[0].emit_data(b"x" * 1000)
    meter.sample(hub.ports, 12.0)
    view = port_view("0", hub.ports[0], meter)
    assert (view["rate_in"], view["rate_out"]) == (500.0, 0.0)
    assert port_view("0", hub.ports[1], meter)["rate_out"] == 500.0
    summary = hub_summary(hub, "0")
    assert summary["routes"]["data"] == [{"from": "a(0)", "to": ["b(1)"]}, {"from": "b(1)", "to": ["a(0)"]}]


# ---- metrics ----------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_metrics_read_the_counters_at_scrape_time() -> None:
    hub = make("--required=0", "a", "b").hub
    a, b = hub.ports
    reg = make_registry(
        lambda: [hub], lambda: {"tap_clients": 2, "tap_lost_events": 5, "http_refused": {"denied": 1}}
    )
    a.emit_data(b"x" * 123)
    b.lose(7, Drop.SLOW_CLIENT)
    b.discard_unheard(11)
    a.problem = lambda: "gone"  # type: ignore[method-assign]
    got = samples(generate_latest(reg).decode())

    def value(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    pa = {"hub": "0", "port": "a(0)", "kind": "fake"}
    pb = {"hub": "0", "port": "b(1)", "kind": "fake"}
    assert value("hub4com_port_bytes_total", direction="in", **pa) == 123
    assert value("hub4com_port_bytes_total", direction="out", **pb) == 123
    assert value("hub4com_port_messages_total", direction="out", **pb) == 1
    assert value("hub4com_port_dropped_bytes_total", reason="slow_client", **pb) == 7
    assert value("hub4com_port_dropped_bytes_total", reason="queue_full", **pb) == 0
    assert value("hub4com_port_unheard_bytes_total", **pb) == 11 and b.snapshot()["unheard"] == 11
    assert value("hub4com_port_up", **pa) == 0 and value("hub4com_port_up", **pb) == 1
    assert value("hub4com_port_required", **pb) == 0
    assert value("hub4com_healthy") == 0
    assert value("hub4com_tap_clients") == 2 and value("hub4com_tap_lost_events_total") == 5
    assert value("hub4com_http_refused_connections_total", reason="denied") == 1
    a.emit_data(b"y")
    assert (
        samples(generate_latest(reg).decode())[
            ("hub4com_port_bytes_total", frozenset({**pa, "direction": "in"}.items()))
        ]
        == 124
    )


# ---- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        ("0", ("127.0.0.1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:9000", ("localhost", 9000)),
    ],
)
def test_http_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_http_address(text) == expected


@pytest.mark.parametrize("text", ["", "x", "65536", "1.2.3:80", "[::1:80", "[zz]:80", "::1:80", "host:"])
def test_bad_http_address(text: str) -> None:
    with pytest.raises(UsageError):
        parse_http_address(text)


def test_http_options_and_their_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = make("--http=[::1]:0", "--http-allow=127.0.0.1,::1", "--http-max-rate=0", "a")
    assert cfg.http is not None and cfg.http.host == "::1" and cfg.http.port == 0
    assert cfg.http.policy.max_rate == 0 and cfg.http.policy.access.allow
    assert cfg.http.url == "http://[::1]:0/"
    assert make("a").http is None
    with pytest.raises(UsageError, match="--http-deny needs --http"):
        make("--http-deny=10.0.0.0/8", "a")
    with pytest.raises(UsageError, match=r"Invalid address or network 'x'.*--http-allow=x"):
        make("--http=1", "--http-allow=x", "a")
    with pytest.raises(UsageError, match="--http-tls-cert"):
        make("--http=1", f"--http-tls-cert={tmp_path / 'missing.pem'}", "a")
    with pytest.raises(UsageError, match="--http-tls-key set but TLS is off"):
        key = tmp_path / "k.pem"
        key.write_text("x")
        make("--http=1", f"--http-tls-key={key}", "a")
    opts = HttpOptions()
    assert not opts.config_arg("--baud=9600") and opts.config_arg("--HTTP=9")
    with pytest.raises(UsageError):
        make("--required=7", "a")
