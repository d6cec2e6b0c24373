"""Password access end to end (issue 14): the real command, pty devices, loopback sockets.

socat (as a user would script it) and the hub's own tcp client port with the
right password pass data; wrong, missing and slow-drip passwords are refused
with nothing reaching the device; 1,000 wrong attempts leave the hub's file
descriptors and memory flat; the password is in neither the -vv log nor a
trace. Every wait has a deadline; every process is stopped by its pid.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time

import pytest

from hub import password as pw

from .conftest import DEADLINE_S, PtyDevice, free_port, recv_exactly, wait_for
from .test_network import open_app, read_app
from .test_security import _fds, _rss_kib, loopback2, quiet, socat_both_ways

#: Printable and unusual, so neither its text nor its hex turns up by chance.
PASSWORD = b"Zq7Kx9Wp"
PASSWORD_HEX = "5A 71 37 4B 78 39 57 70"


@pytest.fixture
def pwfile(tmp_path) -> str:
    f = tmp_path / "hub.pw"
    f.write_bytes(PASSWORD + b"\n")
    f.chmod(0o600)
    return str(f)


def start_listener(start_hub, dev: PtyDevice, pwfile: str, *extra: str) -> tuple[object, int]:
    port = free_port()
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"--password-file={pwfile}",
        *extra,
        f"*{port}",
        wait_ports=2,
    )
    return hub, port


def closed(sock: socket.socket, timeout: float = DEADLINE_S + pw.REFUSE_DELAY_S) -> bool:
    """The hub closed or reset the connection without sending anything."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (Debian package socat)")
def test_socat_sends_the_password_file_first(start_hub, pty_device, pwfile):
    dev = pty_device()
    hub, port = start_listener(start_hub, dev, pwfile)
    # What the README shows: the file first, then the user's data: (cat pwfile; cat) | socat - TCP:...
    proc = subprocess.Popen(
        ["sh", "-c", f'(cat "$0"; cat) | socat - TCP:127.0.0.1:{port}', pwfile],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        hub.wait_line("TCP(1) accepted connection from 127.0.0.1:")
        socat_both_ways(proc, dev)
    finally:
        proc.kill()
        proc.wait(5)


def test_two_hubs_with_a_password(start_hub, pty_device, pwfile, tmp_path):
    dev = pty_device()
    _, port = start_listener(start_hub, dev, pwfile)
    link = tmp_path / "remote"
    client = start_hub(
        "--use-driver=pty",
        str(link),
        "--use-driver=tcp",
        f"--password-file={pwfile}",
        f"*127.0.0.1:{port}",
        wait_ports=2,
    )
    client.wait_line(f"TCP(1) connected to 127.0.0.1:{port}")
    fd = open_app(link)
    try:
        os.write(fd, b"over the network\n")
        assert dev.read(17) == b"over the network\n"
        dev.write(b"and back\n")
        assert read_app(fd, 9) == b"and back\n"
    finally:
        os.close(fd)


def test_wrong_missing_and_slow_passwords_reach_nothing(start_hub, pty_device, pwfile):
    dev = pty_device()
    hub, port = start_listener(start_hub, dev, pwfile, "--password-timeout=1")
    wrong = socket.create_connection(("127.0.0.1", port), DEADLINE_S)
    wrong.sendall(b"Zq7Kx9Wq\ndata after a wrong password\n")
    missing = socket.create_connection(("127.0.0.1", port), DEADLINE_S)  # sends nothing
    drip = socket.create_connection(("127.0.0.1", port), DEADLINE_S)
    start = time.monotonic()
    try:
        for b in PASSWORD + b"\n":  # one byte every 0.2 s: the line is not done within 1 s
            if time.monotonic() - start > 1.2:
                break
            drip.sendall(bytes([b]))
            time.sleep(0.2)  # the pace of the drip, not a wait for the hub
    except OSError:
        pass  # refused meanwhile
    for s in (wrong, missing, drip):
        with s:
            assert closed(s)
    assert quiet(dev) == b"", "a refused client's bytes reached the device"
    assert not any("accepted connection" in line for line in hub.lines)
    hub.wait_line("refused 127.0.0.1:")
    # The listener still takes the right password.
    with socket.create_connection(("127.0.0.1", port), DEADLINE_S) as good:
        good.sendall(PASSWORD + b"\r\nwelcome")
        assert dev.read(7) == b"welcome"
        dev.write(b"hello")
        assert recv_exactly(good, 5) == b"hello"


def test_password_is_in_neither_the_verbose_log_nor_the_trace(start_hub, pty_device, pwfile, tmp_path):
    dev = pty_device()
    trace = tmp_path / "trace"
    hub, port = start_listener(
        start_hub,
        dev,
        pwfile,
        "-vv",
        f"--trace-file={trace}",
        "--create-filter=trace",
        "--add-filters=1:trace",
    )
    with socket.create_connection(("127.0.0.1", port), DEADLINE_S) as good:
        good.sendall(PASSWORD + b"\nvisible data")
        assert dev.read(12) == b"visible data"
        dev.write(b"reply")
        assert recv_exactly(good, 5) == b"reply"
    with socket.create_connection(("127.0.0.1", port), DEADLINE_S) as bad:
        bad.sendall(PASSWORD[:-1] + b"X\n")  # nearly right: not logged either
        assert closed(bad)
    hub.wait_line("refused 127.0.0.1:")
    assert hub.stop() == 0
    text = hub.output + trace.read_text()
    assert "visible data" in text.replace("\n", "") or "76 69 73 69 62 6C 65" in text  # the trace works
    for secret in (PASSWORD.decode(), PASSWORD_HEX, PASSWORD[:-1].decode()):
        assert secret not in text


def _attempts(addresses: list[str], port: int) -> int:
    """One connection from each address, each sending a wrong password; waits until the hub
    closed them all. Returns how many were refused (closed or reset) by the hub."""
    socks = []
    for source in addresses:
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(DEADLINE_S)
        s.connect(("127.0.0.1", port))
        s.sendall(b"guess\n")
        socks.append(s)
    refused = 0
    end = time.monotonic() + DEADLINE_S + pw.REFUSE_DELAY_S
    pending = list(socks)
    while pending and time.monotonic() < end:
        readable, _, _ = select.select(pending, [], [], 0.5)
        for s in readable:
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            assert data == b"", f"a refused client read {data!r}"
            refused += 1
            pending.remove(s)
            s.close()
    for s in pending:
        s.close()
    return refused


def test_a_thousand_wrong_passwords_leave_fds_and_memory_flat(start_hub, pty_device, pwfile):
    if not loopback2():
        pytest.skip("127.0.0.2 is not a local address here")
    dev = pty_device()
    # 250 addresses x 4 attempts: each attempt gets the full check (below the lock-out of 5).
    addresses = [f"127.0.{i // 250 + 1}.{i % 250 + 2}" for i in range(250)]
    hub, port = start_listener(start_hub, dev, pwfile, "--max-connections=300", "--max-rate=0")
    pid = hub.proc.pid
    assert _attempts([f"127.0.9.{i}" for i in range(2, 52)], port) == 50  # warm-up
    fds_before, rss_before = _fds(pid), _rss_kib(pid)
    lines_before = len(hub.lines)
    started = time.monotonic()
    refused = sum(_attempts(addresses, port) for _ in range(4))
    took = time.monotonic() - started
    assert refused == 1000
    wait_for(lambda: _fds(pid) <= fds_before, 10, f"fds back to {fds_before} (now {_fds(pid)})")
    rss_after = _rss_kib(pid)
    assert rss_after - rss_before < 8 * 1024, f"RSS {rss_before} -> {rss_after} KiB"
    log_lines = hub.lines[lines_before:]
    intervals = 1 + int(took // 10)  # refusals are logged once per address per 10 s
    assert len(log_lines) <= len(addresses) * intervals + 10, "\n".join(log_lines[-20:])
    assert quiet(dev) == b""
    # Still serving the right password.
    with socket.create_connection(("127.0.0.1", port), DEADLINE_S) as good:
        good.sendall(PASSWORD + b"\nok")
        assert dev.read(2) == b"ok"
    print(
        f"1000 wrong passwords in {took:.1f} s: fds {fds_before} -> {_fds(pid)}, "
        f"RSS {rss_before} -> {rss_after} KiB, {len(log_lines)} log lines"
    )
    assert hub.stop() == 0
    hub.wait_line("1050 wrong or missing passwords")
