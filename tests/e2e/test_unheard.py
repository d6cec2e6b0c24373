"""Data for a port with no connection is unheard, not lost (issue 17 item 7, issue 16).

One rule for every port kind: an idle `*` listener slot, a tcp-multi port
without clients and a pty no application has open count what they are given
as unheard, shown in status lines; "Write lost" is for data somebody
connected did not get.
"""

from __future__ import annotations

import re
import socket

from .conftest import DEADLINE_S, free_port, recv_exactly, wait_for

CHUNK = b"0123456789" * 1000


def status_of(hub, name: str) -> str:
    """The part of the last status line about port `name` ("" before the first one)."""
    lines = [line for line in hub.lines if line.startswith("Status: ")]
    for part in lines[-1][len("Status: ") :].split(" | ") if lines else ():
        if part.startswith(name + " "):
            return part
    return ""


def unheard(hub, name: str) -> int:
    m = re.search(r"unheard (\d+) B", status_of(hub, name))
    return int(m.group(1)) if m else 0


def test_idle_slots_unopened_pty_and_clientless_multi_count_unheard(start_hub, pty_device, tmp_path):
    dev = pty_device()
    port, multi = free_port(), free_port()
    hub = start_hub(
        "--report-interval=1",
        "--status-interval=0.5",
        "--octs=off",
        dev.path,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        f"*{port}",
        f"*{port}",
        "--use-driver=tcp-multi",
        f"127.0.0.1:{multi}",
        "--use-driver=pty",
        str(tmp_path / "nobody"),
        wait_ports=6,
    )
    total = 0
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as c:
        hub.wait_line("TCP(1) accepted connection")
        for _ in range(20):
            dev.write(CHUNK)
            assert recv_exactly(c, len(CHUNK)) == CHUNK
            total += len(CHUNK)
        names = ("TCP(2)", "TCP(3)", "TCPM(4)", "nobody(5)")
        wait_for(lambda: all(unheard(hub, n) == total for n in names), what="status lines with unheard data")
        # two loss reports later still nothing is lost
        hub.wait_line("Status: ", count=sum(line.startswith("Status: ") for line in hub.lines) + 4)
    assert unheard(hub, "TCP(1)") == 0
    assert "Write lost" not in hub.output
    assert "lost" not in status_of(hub, "TCP(2)")
    hub.stop()
    assert "Write lost" not in hub.output
