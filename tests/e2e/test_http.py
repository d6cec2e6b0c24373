"""The HTTP server (--http) of the real command: JSON API, /metrics, /healthz, taps over
WebSocket and hub4com-tap, and strangers refused as TCP listeners refuse them."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DEADLINE_S, free_port, recv_exactly, run_hub, wait_for
from tests.e2e.test_security import STRANGERS, attempt, listener_tls, loopback2, pki, tls_connect  # noqa: F401
from tests.tlscerts import Pki


def get(port: int, path: str, scheme: str = "http", context: Any = None) -> tuple[int, str]:
    """GET a path of the hub's HTTP server: (status, body)."""
    url = f"{scheme}://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=DEADLINE_S, context=context) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get_json(port: int, path: str) -> Any:
    status, body = get(port, path)
    assert status == 200, (status, body)
    return json.loads(body)


def metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, body = get(port, "/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def metric(http: int, name: str, labels: dict[str, str] | None = None, **more: str) -> float | None:
    return metrics(http).get((name, frozenset({**(labels or {}), **more}.items())))


def port_of(ports: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(p for p in ports if p["name"] == name)


def test_api_and_metrics_count_what_was_sent(start_hub, pty_device):
    dev = pty_device()
    tcp, http = free_port(), free_port()
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{tcp}",
        f"--http={http}",
        wait_ports=2,
    )
    hub.wait_line(f"HTTP: status page on http://127.0.0.1:{http}/")
    serial = get_json(http, "/api/ports/0")["name"]  # pts/N(0)
    with socket.create_connection(("127.0.0.1", tcp), timeout=DEADLINE_S) as c:
        wait_for(lambda: port_of(get_json(http, "/api/ports")["ports"], "TCP(1)")["state"] == "connected")
        up = os.urandom(1000)
        c.sendall(up)
        assert dev.read(1000) == up
        down = os.urandom(2000)
        dev.write(down)
        assert recv_exactly(c, 2000) == down
        labels = {"hub": "0", "kind": "tcp", "port": "TCP(1)"}
        wait_for(lambda: metric(http, "hub4com_port_bytes_total", labels, direction="out") == 2000)
        m = metrics(http)
        s_labels = {"hub": "0", "kind": "serial", "port": serial}
        for name, lab, value in [
            ("hub4com_port_bytes_total", {**labels, "direction": "in"}, 1000),
            ("hub4com_port_bytes_total", {**labels, "direction": "out"}, 2000),
            ("hub4com_port_bytes_total", {**s_labels, "direction": "in"}, 2000),
            ("hub4com_port_bytes_total", {**s_labels, "direction": "out"}, 1000),
            ("hub4com_port_connected", labels, 1),
            ("hub4com_port_up", s_labels, 1),
            ("hub4com_healthy", {}, 1),
        ]:
            assert m[(name, frozenset(lab.items()))] == value, name
        ports = get_json(http, "/api/ports")
        assert ports["total"] == 2 and ports["states"] == {"connected": 2}
        t = port_of(ports["ports"], "TCP(1)")
        assert t["kind"] == "tcp" and t["peers"] == [f"127.0.0.1:{c.getsockname()[1]}"]
        assert t["bytes_in"] == 1000 and t["bytes_out"] == 2000 and t["gate"]["admitted"] == 1
        s = port_of(ports["ports"], serial)
        assert s["device"] == dev.path and s["line"]["baud"] == 19200 and s["state"] == "connected"
    wait_for(lambda: get_json(http, "/api/ports/TCP(1)")["connected"] is False)
    assert get(http, "/api/ports/nope")[0] == 404
    hubs = get_json(http, "/api/hubs")
    assert hubs[0]["routes"]["data"][0] == {"from": serial, "to": ["TCP(1)"]}
    assert "/api/ports" in " ".join(get_json(http, "/api")["endpoints"])
    status, page = get(http, "/")
    assert status == 200 and "/static/app.js" in page
    assert get(http, "/static/app.js")[0] == 200


def test_healthz_follows_a_required_device(start_hub, pty_device, tmp_path):
    link = tmp_path / "ttyGPS"
    dev = pty_device()
    os.symlink(dev.path, link)
    http = free_port()
    hub = start_hub(
        "--octs=off",
        "--reopen-interval=100",
        str(link),
        "--use-driver=tcp-multi",
        f"127.0.0.1:{free_port()}",
        f"--http={http}",
        wait_ports=2,
    )
    hub.wait_line("HTTP: status page")
    assert get(http, "/healthz") == (200, "ok\n")
    dev.close()  # unplugged
    link.unlink()
    wait_for(lambda: get(http, "/healthz")[0] == 503, what="/healthz 503")
    status, body = get(http, "/healthz")
    assert body.startswith("unhealthy\nttyGPS(0): device ") and str(link) in body
    status, body = get(http, "/api/health")
    assert status == 503 and json.loads(body)["problems"][0]["port"] == "ttyGPS(0)"
    labels = {"hub": "0", "kind": "serial", "port": "ttyGPS(0)"}
    assert metric(http, "hub4com_port_up", labels) == 0
    assert metric(http, "hub4com_healthy") == 0
    dev2 = pty_device()
    os.symlink(dev2.path, link)
    wait_for(lambda: get(http, "/healthz") == (200, "ok\n"), what="/healthz 200 again")
    assert metric(http, "hub4com_port_reopens_total", labels) == 1
    errors = get_json(http, "/api/ports/0")["errors"]
    assert any("device lost" in e["text"] or "cannot open" in e["text"] for e in errors)


def test_healthz_ignores_ports_not_required(start_hub, pty_device, tmp_path):
    link = tmp_path / "ttyX"
    dev = pty_device()
    os.symlink(dev.path, link)
    http = free_port()
    hub = start_hub("--octs=off", str(link), "--use-driver=sim", "gps", f"--http={http}", "--required=1")
    hub.wait_line("HTTP: status page")
    dev.close()
    link.unlink()
    hub.wait_line("device lost")
    assert get(http, "/healthz") == (200, "ok\n")
    assert get_json(http, "/api/ports/0")["state"] in ("absent", "reopening")


def run_tap(http: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.commands.tap", f"--url=http://127.0.0.1:{http}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("chains", [False, True], ids=["no filters", "session chains"])
def test_tap_shows_traffic_per_direction_and_session(start_hub, tmp_path, chains):
    tcpm, http = free_port(), free_port()
    # With a filter on the tcp-multi port every session gets a chain of its own
    # and its data reaches the hub (and the tap) through that chain.
    filters = [f"--trace-file={tmp_path / 'trace'}", "--create-filter=trace", "--add-filters=1:trace"]
    hub = start_hub(
        *(filters if chains else []),
        "--use-driver=sim",
        "gps",
        "--use-driver=tcp-multi",
        f"127.0.0.1:{tcpm}",
        f"--http={http}",
    )
    hub.wait_line("HTTP: status page")
    gps = run_tap(http, "--count=2", "sim-gps(0)")
    out, err = gps.communicate(timeout=DEADLINE_S + 5)
    assert gps.returncode == 0, err
    assert "tapping sim-gps(0) (sim)" in err and "2 lines; 0 lost" in err
    lines = out.splitlines()
    assert len(lines) == 2 and all(" in  " in ln and "$GPGGA," in ln for ln in lines)
    with socket.create_connection(("127.0.0.1", tcpm), timeout=DEADLINE_S) as c1:
        with socket.create_connection(("127.0.0.1", tcpm), timeout=DEADLINE_S) as c2:
            wait_for(lambda: len(get_json(http, "/api/ports/1")["sessions"]) == 2)
            tap = run_tap(http, "--count=1", "--dir=in", "--session=2", "--hex", "TCPM(1)")
            wait_for(lambda: get_json(http, "/api/ports/1")["tapped"], what="the tap to attach")
            c1.sendall(b"from the first client\n")
            c2.sendall(b"\x00\x01second")
            out, err = tap.communicate(timeout=DEADLINE_S + 5)
    assert tap.returncode == 0, err
    assert " in  #2 8 B: 00 01 73 65 63 6f 6e 64" in out, out
    assert "first" not in out
    if chains:  # the session's own trace filter saw it too
        wait_for(lambda: "TCPM(1)#2" in (tmp_path / "trace").read_text(), what="the session's trace")
    wait_for(lambda: not get_json(http, "/api/ports/1")["tapped"], what="the tap to detach")
    missing = run_tap(http, "nope")
    _, err = missing.communicate(timeout=DEADLINE_S)
    assert missing.returncode == 1 and "no such port" in err


def test_startup_errors_are_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, text, status in [
            ([f"--http={port}"], f"HTTP: Cannot listen on 127.0.0.1:{port}: Address already in use", 1),
            (["--http=70000"], "hub4com: Invalid --http port (0 to 65535) in '--http=70000'", 2),
            (["--http=1", "--http-deny=300.1.1.1"], "Invalid address or network '300.1.1.1'", 2),
            (["--http-allow=::1"], "hub4com: --http-allow needs --http in '--http-allow'", 2),
            (["--http=1", f"--http-tls-cert={tmp_path}/none.pem"], "Cannot read the TLS certificate file", 2),
        ]:
            r = run_hub(*args, "--use-driver=sim", "gps")
            assert r.returncode == status, r  # 1: cannot start, 2: a bad command line
            lines = r.stderr.strip().splitlines()
            assert text in lines[-1] and "Traceback" not in r.stderr, r.stderr


# ---- strangers ---------------------------------------------------------------------------


def test_http_refuses_a_denied_address(start_hub):
    http = free_port()
    hub = start_hub("--use-driver=sim", "gps", f"--http={http}", "--http-deny=127.0.0.1")
    hub.wait_line("HTTP: status page")
    for _ in range(3):
        with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
            get(http, "/healthz")
    hub.wait_line("HTTP: refused connection from 127.0.0.1:")
    assert sum("HTTP: refused" in line for line in hub.lines) == 1, "logged once per address and interval"
    assert hub.proc.poll() is None
    assert get_json_ok_after_restart(start_hub)


def get_json_ok_after_restart(start_hub: Any) -> bool:
    """The same server without --http-deny answers: the refusal was the access list's."""
    http = free_port()
    hub = start_hub("--use-driver=sim", "gps", f"--http={http}", "--http-allow=127.0.0.1")
    hub.wait_line("HTTP: status page")
    return get(http, "/healthz") == (200, "ok\n")


@pytest.mark.parametrize("kind", list(STRANGERS))
def test_http_refuses_strangers_as_tcp_listeners_do(start_hub, pty_device, pki: Pki, kind):  # noqa: F811
    """The same strangers against a TLS TCP listener and the HTTPS server of one hub end the same way."""
    options, connect, logged = STRANGERS[kind]
    if "127.0.0.2" in logged and not loopback2():
        pytest.skip("127.0.0.2 is not a local address here")
    dev = pty_device()
    tcp, http = free_port(), free_port()
    http_options = [o.replace("--", "--http-", 1) for o in options]
    http_tls = [o.replace("--", "--http-", 1) for o in listener_tls(pki)]
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        *listener_tls(pki),
        *options,
        f"*{tcp}",
        f"--http={http}",
        *http_tls,
        *http_options,
        wait_ports=2,
    )
    hub.wait_line("HTTP: status page on https://")
    outcome_tcp = attempt(lambda: connect(tcp, pki))
    outcome_http = attempt(lambda: connect(http, pki))
    assert outcome_tcp.split(":")[0] == outcome_http.split(":")[0], (outcome_tcp, outcome_http)
    hub.wait_line(f"HTTP: {logged}")
    # Someone who belongs gets in.
    with tls_connect(http, pki) as c:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        c.settimeout(DEADLINE_S)
        reply = b""
        while chunk := c.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok\n")


async def _open_ws(http: int, path: str, origin: str) -> tuple[int, Any]:
    """(HTTP status of the WebSocket handshake, the first message or None)."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(f"http://127.0.0.1:{http}{path}", origin=origin)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, None
        async with ws:
            return 101, await ws.receive_json(timeout=DEADLINE_S)


def test_websockets_from_other_origins_are_refused(start_hub):
    http = free_port()
    hub = start_hub("--use-driver=sim", "gps", f"--http={http}")
    hub.wait_line("HTTP: status page")
    for path, first in (("/api/live", "status"), ("/api/tap/0", "hello")):
        assert asyncio.run(_open_ws(http, path, "http://evil.example")) == (403, None)
        status, msg = asyncio.run(_open_ws(http, path, f"http://127.0.0.1:{http}"))
        assert status == 101 and msg["type"] == first
