"""The routing core end to end: the real command, real ptys, loopback sockets."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import serial

from .conftest import free_port, recv_exactly, run_hub, wait_for

NMEA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"


def open_app(path, timeout=5.0):
    """Open a hub pty link as an application does."""
    wait_for(lambda: os.path.exists(path), what=f"{path} to exist")
    return serial.Serial(str(path), 115200, timeout=timeout)


def read_exactly(app: serial.Serial, n: int) -> bytes:
    data = app.read(n)
    assert len(data) == n, f"got {data!r}"
    return data


def test_three_ptys_route_all_all(start_hub, tmp_path):
    links = [tmp_path / f"vcom{i}" for i in range(3)]
    hub = start_hub("--route=All:All", "--use-driver=pty", *map(str, links), wait_ports=3)
    apps = [open_app(p) for p in links]
    hub.wait_line("connected", count=3)
    try:
        apps[0].write(b"hello from 0\n")
        assert read_exactly(apps[1], 13) == b"hello from 0\n"
        assert read_exactly(apps[2], 13) == b"hello from 0\n"
        apps[2].write(b"and 2\n")
        assert read_exactly(apps[0], 6) == b"and 2\n"
        assert read_exactly(apps[1], 6) == b"and 2\n"
        apps[0].timeout = 0.3
        assert apps[0].read(100) == b"", "an application must not read its own data"
    finally:
        for a in apps:
            a.close()
    assert hub.stop() == 0
    assert not any(p.exists() or p.is_symlink() for p in links), "links are removed at exit"


def test_gps_hub_default_routes(start_hub, pty_device, tmp_path):
    gps = pty_device()
    app1, app2 = tmp_path / "app1", tmp_path / "app2"
    hub = start_hub("--octs=off", gps.path, "--use-driver=pty", str(app1), str(app2), wait_ports=3)
    a1, a2 = open_app(app1), open_app(app2)
    hub.wait_line("connected", count=3)  # the GPS port and both applications
    try:
        for _ in range(5):
            gps.write(NMEA)
        assert read_exactly(a1, 5 * len(NMEA)) == 5 * NMEA
        assert read_exactly(a2, 5 * len(NMEA)) == 5 * NMEA
        a1.write(b"$PMTK220,100*2F\r\n")
        assert gps.read(17) == b"$PMTK220,100*2F\r\n"
        a2.write(b"from app2\r\n")
        time.sleep(0.3)
        try:
            extra = os.read(gps.master, 100)
        except BlockingIOError:
            extra = b""
        assert extra == b"", "app2 must not reach the GPS with the default routes"
    finally:
        a1.close()
        a2.close()


def test_serial_to_tcp_listener(start_hub, pty_device):
    dev = pty_device()
    port = free_port()
    hub = start_hub(
        "--octs=off", dev.path, "--use-driver=tcp", "--interface=127.0.0.1", f"*{port}", wait_ports=2
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        # The kernel completes the handshake before the hub accepts: data the device
        # sends before that is unheard (nobody connected yet), so wait for the accept.
        hub.wait_line("TCP(1) accepted connection")
        payload = bytes(range(256)) * 64
        dev.write(payload)
        assert recv_exactly(c, len(payload)) == payload
        c.sendall(payload)
        assert dev.read(len(payload)) == payload


def test_serial_to_tcp_client_reconnects_after_server_restart(start_hub, pty_device):
    dev = pty_device()
    port = free_port()

    def listen():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(1)
        s.settimeout(10)
        return s

    srv = listen()
    start_hub(
        "--octs=off", dev.path, "--use-driver=tcp", "--reconnect=100", f"*127.0.0.1:{port}", wait_ports=2
    )
    conn, _ = srv.accept()
    dev.write(b"first")
    assert recv_exactly(conn, 5) == b"first"
    conn.close()
    srv.close()
    time.sleep(0.3)
    srv = listen()
    conn, _ = srv.accept()
    with conn:
        conn.sendall(b"second")
        assert dev.read(6) == b"second"
        dev.write(b"third")
        assert recv_exactly(conn, 5) == b"third"
    srv.close()


def test_three_tcp_slots_on_one_port(start_hub, pty_device):
    dev = pty_device()
    port = free_port()
    start_hub(
        "--route=0:All",
        "--route=All:0",
        "--octs=off",
        dev.path,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        f"*{port}",
        f"*{port}",
        wait_ports=4,
    )
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.3)
        dev.write(b"broadcast")
        for c in clients:
            assert recv_exactly(c, 9) == b"broadcast"
        for i, c in enumerate(clients):
            c.sendall(f"from{i}".encode())
            assert dev.read(5) == f"from{i}".encode()
    finally:
        for c in clients:
            c.close()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_lossless_backpressure_slow_reader(start_hub, pty_device):
    """With a flow-control route, a slow TCP reader still gets all of 20 MB."""
    dev = pty_device()
    port = free_port()
    hub = start_hub(
        "--octs=off", dev.path, "--use-driver=tcp", "--interface=127.0.0.1", f"*{port}", wait_ports=2
    )
    size = 20 * 1024 * 1024
    payload = os.urandom(1024 * 1024) * 20
    sent = hashlib.sha256(payload).hexdigest()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        time.sleep(0.2)
        writer = threading.Thread(target=dev.write, args=(payload,), daemon=True)
        writer.start()
        h = hashlib.sha256()
        got = 0
        peak = 0
        deadline = time.monotonic() + 100
        while got < size:
            chunk = c.recv(min(65536, size - got))
            assert chunk, f"closed after {got} bytes"
            h.update(chunk)
            got += len(chunk)
            time.sleep(0.003)  # read slower than the device writes, so the queues fill
            if got % (1024 * 1024) < len(chunk):
                peak = max(peak, _rss_kib(hub.proc.pid))
            assert time.monotonic() < deadline
        writer.join(10)
    assert h.hexdigest() == sent
    assert peak < 120 * 1024, f"hub RSS peaked at {peak} KiB"
    assert "Write lost" not in hub.output


def test_device_loss_and_reopen(start_hub, tmp_path, pty_device):
    link = tmp_path / "ttyGPS"
    dev = pty_device()
    os.symlink(dev.path, link)
    port = free_port()
    hub = start_hub(
        "--octs=off",
        "--reopen-interval=100",
        str(link),
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        wait_ports=2,
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        time.sleep(0.2)
        dev.write(b"before")
        assert recv_exactly(c, 6) == b"before"
        dev.close()  # unplug
        link.unlink()
        hub.wait_line("disconnected")
        time.sleep(0.3)
        dev2 = pty_device()
        os.symlink(dev2.path, link)
        hub.wait_line("reopened")
        dev2.write(b"after")
        assert recv_exactly(c, 5) == b"after"
        c.sendall(b"back")
        assert dev2.read(4) == b"back"


def _route_lines(result_lines):
    return [ln for ln in result_lines if ln.startswith(("Route ", "No route"))]


def test_load_gives_same_routes_as_command_line(start_hub, tmp_path):
    f = tmp_path / "hub.txt"
    f.write_text(
        "rem lines before the marker are skipped\n"
        "_BEGIN_\n"
        "# %%1%% is the driver\n"
        "--use-driver=%%1%%\n"
        "--route=0:All\n"
        "--bi-route=1:2\n"
        "a\nb\nc\n"
        "_END_\n"
        "--never-read\n"
    )
    direct = start_hub(
        "--use-driver=connector", "--route=0:All", "--bi-route=1:2", "a", "b", "c", wait_ports=3
    )
    loaded = start_hub(f"--load={f},_BEGIN_,_END_:connector", wait_ports=3)
    for hub in (direct, loaded):  # the routes are logged after the ports' "Started" lines
        hub.wait_line("Route flow control c(2) --> b(1)")
    assert _route_lines(direct.lines) == _route_lines(loaded.lines)
    assert any("Route data a(0) --> b(1) c(2)" in ln for ln in direct.lines)
    f.write_text("--use-driver=connector\na\n--route=0:All:x\n")
    r = run_hub(f"--load={f}")
    assert r.returncode == 2 and f"(file {f}, line 3" in r.stderr


def test_sigterm_exits_zero_and_removes_links(start_hub, tmp_path):
    link = tmp_path / "v0"
    hub = start_hub("--use-driver=pty", str(link), wait_ports=1)
    assert link.is_symlink()
    assert hub.stop() == 0
    assert not link.is_symlink()
