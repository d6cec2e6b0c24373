"""Network features end to end (issue 14): the real hub4com command, real ptys and
loopback sockets.

A listener that listens only while an application holds the pty; data kept
while nobody is connected, for the first client, in whole lines.
"""

from __future__ import annotations

import os
import socket
import time

from .conftest import DEADLINE_S, free_port, recv_exactly, wait_for


def connect_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S):
            return False
    except ConnectionRefusedError:
        return True


def open_app(link) -> int:
    return os.open(str(link), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


def read_app(fd: int, n: int, timeout: float = DEADLINE_S) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n:
        try:
            out += os.read(fd, n - len(out))
        except BlockingIOError:
            if time.monotonic() > end:
                raise AssertionError(f"application read: got {out!r}") from None
            time.sleep(0.005)
    return out


def test_listener_socket_exists_only_while_an_application_holds_the_pty(start_hub, tmp_path):
    link = tmp_path / "vcom"
    port = free_port()
    hub = start_hub(
        "--use-driver=pty",
        str(link),
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        "--listen=on-demand",
        f"{port}",
        wait_ports=2,
    )
    assert connect_refused(port), "no socket before an application opens the pty"
    fd = open_app(link)
    try:
        hub.wait_line(f"Listening on 127.0.0.1:{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as client:
            hub.wait_line("TCP(1) accepted connection")
            client.sendall(b"to the app\n")
            assert read_app(fd, 11) == b"to the app\n"
            os.write(fd, b"to the client\n")
            assert recv_exactly(client, 14) == b"to the client\n"
            os.close(fd)
            fd = -1
            # the application left: the session ends and the socket goes
            client.settimeout(DEADLINE_S)
            assert client.recv(100) == b""
        wait_for(lambda: connect_refused(port), what="the listening socket to close")
        hub.wait_line(f"Stopped listening on 127.0.0.1:{port}")
        fd = open_app(link)
        wait_for(lambda: not connect_refused(port), what="listening again")
    finally:
        if fd >= 0:
            os.close(fd)
    assert hub.stop() == 0


def test_pty_buffer_gives_the_first_application_whole_lines(start_hub, tmp_path):
    link = tmp_path / "gps"
    port = free_port()
    hub = start_hub(
        "--route=1:0",
        "--status-interval=0.2",
        "--use-driver=pty",
        "--frame=line",
        "--buffer=1000",
        str(link),
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        wait_ports=2,
    )
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as device:
        hub.wait_line("TCP(1) accepted connection")
        device.sendall(b"ial sentence\r\n$GPGGA,1*00\r\n$GPRMC,2*")
        device.sendall(b"00\r\n$GPVTG,3")
        # kept for the application: 34 B from the first line start; the partial line before it is unheard
        hub.wait_line("gps(0) waiting for an application")
        hub.wait_line("in 0 B, out 34 B, unheard 14 B (no connection) | TCP(1)")
        fd = open_app(link)
        try:
            device.sendall(b"*00\r\n")
            want = b"$GPGGA,1*00\r\n$GPRMC,2*00\r\n$GPVTG,3*00\r\n"
            assert read_app(fd, len(want)) == want
        finally:
            os.close(fd)
    assert hub.stop() == 0
