"""An on-demand TCP client port loses nothing while it connects (issue 11 item 2).

The bridge: a listener with the telnet server filter, bi-routed to a TCP
client port with the telnet client filter, in front of pyserial's RFC 2217
server on loop://. The server is slow: it takes up to 0.8 s to close a
connection after the client's EOF, and accepts the next one only then. A
pyserial rfc2217:// client opens, writes HELLO at once, reads it back and
closes, 0.3 s apart, 20 times: each new session starts while the client port
is still half-closed from the last one, so its first bytes (the RFC 2217
settings, then HELLO) are held and sent once the new connection is up.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from .conftest import DEADLINE_S, free_port

PEER = Path(__file__).parent / "peers" / "rfc2217_server.py"
TRIALS = 20
#: How long the server may take to close a connection (its device read timeout).
SLOW_CLOSE_S = 0.8


@pytest.fixture
def slow_rfc2217_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(PEER), "loop://", str(port), str(SLOW_CLOSE_S)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"READY"), "the RFC 2217 server did not start"
        yield port
    finally:
        proc.terminate()
        proc.wait(DEADLINE_S)


def trial(port: int) -> tuple[bytes, float]:
    """One session: open, write HELLO, read it back. Returns (what came back, seconds)."""
    try:
        s = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", timeout=DEADLINE_S)
    except serial.SerialException as exc:
        return f"open failed: {exc}".encode(), DEADLINE_S
    try:
        s.timeout = 0.5
        start = time.monotonic()
        s.write(b"HELLO")
        got = s.read(5)
        return got, time.monotonic() - start
    finally:
        s.close()


@pytest.mark.interop
def test_bridge_sessions_lose_nothing_while_the_client_port_reconnects(start_hub, slow_rfc2217_server):
    listen = free_port()
    hub = start_hub(
        "--create-filter=telnet,srv,telnet:--comport=server",
        "--create-filter=telnet,cli,telnet:--comport=client",
        "--add-filters=0:srv",
        "--add-filters=1:cli",
        "--bi-route=0:1",
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        str(listen),
        f"127.0.0.1:{slow_rfc2217_server}",
        wait_ports=2,
    )
    results = []
    for _ in range(TRIALS):
        results.append(trial(listen))
        time.sleep(0.3)
    hub.stop()
    good = [r for r in results if r[0] == b"HELLO" and r[1] < 0.5]
    assert len(good) == TRIALS, f"{len(good)} of {TRIALS} trials got HELLO within 0.5 s: {results}"
    assert "Write lost" not in hub.output
    # the client port did half-close and reconnect between sessions
    assert hub.output.count("TCP(1) connected to 127.0.0.1:") == TRIALS
