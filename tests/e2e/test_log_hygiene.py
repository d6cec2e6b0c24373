"""What peers can do to the log: nothing (issue 17 items 3 and 4, issue 11 item 4).

* An RFC 2217 SIGNATURE with a newline and terminal escape codes is logged
  escaped and cut to a bound: no forged line, nothing for a terminal to run.
* A client repeating a bad request 200,000 times (unknown escape records to
  com2tcp-esc, unknown telnet commands to an RFC 2217 server, data sizes a
  pty cannot take) writes a bounded number of log lines: the first, then a
  summary with the count.
"""

from __future__ import annotations

import socket

from .conftest import DEADLINE_S, free_port
from .test_wrappers import WrapperHub

IAC, SB, SE = b"\xff", b"\xfa", b"\xf0"
COM_PORT = b"\x2c"
REPEATS = 200_000


def telnet_server(start_hub, dev) -> tuple[object, int]:
    port = free_port()
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--create-filter=telnet,srv,telnet:--comport=server",
        "--add-filters=1:srv",
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        wait_ports=2,
    )
    return hub, port


def test_a_peer_signature_is_logged_escaped_and_bounded(start_hub, pty_device):
    dev = pty_device()
    hub, port = telnet_server(start_hub, dev)
    evil = b"evil\nFAKE: root login accepted\r\x1b[2J" + b"A" * 3000
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as c:
        hub.wait_line("accepted connection")
        c.sendall(IAC + SB + COM_PORT + b"\x00" + evil + IAC + SE + b"after\n")
        assert dev.read(6) == b"after\n"  # the signature was handled before
        hub.wait_line("peer signature")
    hub.stop()
    line = next(x for x in hub.lines if "peer signature" in x)
    assert "'evil\\nFAKE: root login accepted\\r\\x1b[2J" in line
    assert line.endswith("(3035 bytes in all)") and len(line) < 250
    assert not any(x.startswith("FAKE") for x in hub.lines)
    assert "\x1b" not in hub.output and "\r" not in hub.output


def count(hub, text: str) -> int:
    return sum(text in line for line in hub.lines)


def test_200000_bad_escape_records_give_two_log_lines(pty_device):
    dev = pty_device()
    port = free_port()
    hub = WrapperHub("com2tcp_esc", ["--interface", "127.0.0.1", dev.path, str(port)])
    try:
        hub.wait_started(2)
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as c:
            hub.wait_line("TCP(1) accepted connection")
            c.sendall(b"\xff\x42" * REPEATS + b"END\n")  # 400 kB of unknown escape codes
            assert dev.read(4, timeout=60) == b"END\n"
    finally:
        hub.stop()
    assert count(hub, "unknown escape code 0x42") == 2, hub.output[-2000:]
    assert f"(error {REPEATS}) ({REPEATS - 1} more like this in the last" in hub.output
    assert len(hub.lines) < 40


def test_200000_bad_telnet_commands_give_two_log_lines(start_hub, pty_device):
    dev = pty_device()
    hub, port = telnet_server(start_hub, dev)
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as c:
        hub.wait_line("accepted connection")
        c.sendall(IAC + b"\x10" + b"x" + (IAC + b"\x10") * (REPEATS - 1) + b"END\n")
        assert dev.read(5, timeout=60) == b"xEND\n"
    hub.stop()
    assert count(hub, "telnet peer: unknown command IAC 16") == 2, hub.output[-2000:]
    assert f"({REPEATS - 1} more like this in the last" in hub.output
    assert len(hub.lines) < 40


def test_200000_line_control_requests_the_device_cannot_take(start_hub, pty_device):
    # Issue 11 item 4: one log line per request before (200,000 from one connection).
    dev = pty_device()
    port = free_port()
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--create-filter=telnet,srv,telnet:--comport=server",
        "--create-filter=linectl,lc,linectl:--br=remote --lc=remote",
        "--add-filters=0:lc",
        "--add-filters=1:srv",
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        wait_ports=2,
    )
    size5, size7 = (IAC + SB + COM_PORT + bytes((2, n)) + IAC + SE for n in (5, 7))  # SET-DATASIZE
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as c:
        hub.wait_line("accepted connection")
        c.sendall((size5 + size7) * (REPEATS // 2) + b"END\n")
        assert dev.read(4, timeout=120) == b"END\n"
    hub.stop()
    assert len(hub.lines) < 40, hub.output[-3000:]
