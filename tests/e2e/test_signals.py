"""Signals end to end: SIGINT, SIGTERM, SIGQUIT and SIGUSR1 stop the hub cleanly
(links removed, exit status 0); SIGHUP asks for a reload and never stops it."""

from __future__ import annotations

import signal
import socket

import pytest

from .conftest import DEADLINE_S, free_port, recv_exactly


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR1])
def test_stop_signals_clean_up(start_hub, pty_device, tmp_path, sig):
    dev = pty_device()
    link = tmp_path / "app"
    port = free_port()
    hub = start_hub(
        "--octs=off",
        dev.path,
        "--use-driver=pty",
        str(link),
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        wait_ports=3,
    )
    assert link.is_symlink()
    hub.proc.send_signal(sig)
    assert hub.proc.wait(DEADLINE_S) == 0
    hub.stop()
    assert not link.is_symlink(), "the link is removed"
    assert f"Stopping ({sig.name})" in hub.output
    assert "Stopped listening on 127.0.0.1" in hub.output


def test_sighup_does_not_stop_the_hub(start_hub, pty_device):
    dev = pty_device()
    port = free_port()
    hub = start_hub(
        "--octs=off", dev.path, "--use-driver=tcp", "--interface=127.0.0.1", f"*{port}", wait_ports=2
    )
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as c:
        hub.wait_line("accepted connection")
        for n in range(1, 4):
            hub.proc.send_signal(signal.SIGHUP)
            hub.wait_line("SIGHUP: nothing to reload", count=n)
        dev.write(b"still here\n")
        assert recv_exactly(c, 11) == b"still here\n"
    assert hub.proc.poll() is None
    assert hub.stop() == 0
    assert sum("nothing to reload" in line for line in hub.lines) == 3
