"""Pty links are owned (issue 11 item 7, issue 17 item 6).

A link another running hub holds is refused at start-up with one line naming
that hub's pid, and left alone; a link left by a hub killed with SIGKILL is
replaced by the next one; the quick start started twice fails the second
time and leaves the first one's links working.
"""

from __future__ import annotations

import os
import signal

import pytest
import serial

from hub.errors import EXIT_USAGE

from .conftest import DEADLINE_S, Hub, free_port, run_hub, wait_for
from .test_wrappers import WrapperHub


def refusal(pid: int, link, prog: str = "hub4com") -> str:
    return f"{prog}: The pty link is in use by another hub (pid {pid}) in '{link}'"


def error_lines(text: str) -> list[str]:
    """The lines of a failed start that are not the ports' own progress lines."""
    banner = ("gps-share: GPS:", "gps-share: application port", "gps-share: TCP clients")  # what it set up
    return [
        line
        for line in text.splitlines()
        if (line.startswith(("hub4com:", "gps-share:")) or "rror" in line) and not line.startswith(banner)
    ]


def read_line(link, timeout: float = DEADLINE_S) -> bytes:
    """Open the link as an application and read one line."""
    with serial.Serial(str(link), timeout=timeout) as app:
        return app.readline()


def test_a_second_hub_on_the_same_link_is_refused(start_hub, tmp_path):
    link = tmp_path / "vcom"
    first = start_hub("--use-driver=sim", "gps", "--use-driver=pty", str(link), wait_ports=2)
    target = os.readlink(link)
    r = run_hub("--use-driver=sim", "gps", "--use-driver=pty", str(link))
    assert r.returncode == 1
    assert error_lines(r.stderr) == [refusal(first.proc.pid, link)]
    assert "Traceback" not in r.stdout + r.stderr and "Started" not in r.stderr
    assert os.readlink(link) == target, "the first hub's link is left alone"
    assert read_line(link).startswith(b"$GP")
    assert first.stop() == 0
    assert not link.is_symlink() and not (tmp_path / "vcom.lock").exists()


def test_a_link_left_by_a_killed_hub_is_replaced(start_hub, tmp_path):
    link = tmp_path / "vcom"
    killed = start_hub("--use-driver=sim", "gps", "--use-driver=pty", str(link), wait_ports=2)
    old = os.readlink(link)
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait(DEADLINE_S)
    assert link.is_symlink() and (tmp_path / "vcom.lock").exists(), "kill -9 leaves both"
    again = start_hub("--use-driver=sim", "gps", "--use-driver=pty", str(link), wait_ports=2)
    assert os.readlink(link) != old or os.path.exists(old)
    assert read_line(link).startswith(b"$GP")
    assert again.stop() == 0
    assert not link.is_symlink() and not (tmp_path / "vcom.lock").exists()


def test_the_quick_start_twice(tmp_path):
    links = [tmp_path / "gps1", tmp_path / "gps2"]
    port = free_port()
    args = [
        "--demo",
        "--pty",
        str(links[0]),
        "--pty",
        str(links[1]),
        "--tcp",
        f"127.0.0.1:{port}",
        "--status",
    ]
    first: Hub = WrapperHub("gps_share", args)
    try:
        first.wait_started(4)
        targets = [os.readlink(p) for p in links]
        second: Hub = WrapperHub("gps_share", args)
        assert second.proc.wait(DEADLINE_S) == 1
        second.stop()
        # one line, naming the command the user typed
        assert error_lines(second.output) == [refusal(first.proc.pid, links[0], "gps-share")]
        assert "Started" not in second.output and "Traceback" not in second.output
        assert [os.readlink(p) for p in links] == targets
        for p in links:
            assert read_line(p).startswith(b"$GP")
        assert first.proc.poll() is None
    finally:
        first.stop()
    wait_for(lambda: not any(p.is_symlink() for p in links), what="the links to go")


# ---- --replace-link: a pty takes a device's name for the hub's lifetime (issue 14) -------


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_a_taken_over_device_link_is_restored_when_the_hub_stops(start_hub, tmp_path, how):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    link = by_id / "usb-Prolific-if00-port0"
    os.symlink("../../ttyUSB0", link)
    hub = start_hub("--use-driver=sim", "gps", "--use-driver=pty", "--replace-link", str(link), wait_ports=2)
    hub.wait_line("taking over")
    assert os.readlink(link).startswith("/dev/pts/")
    assert read_line(link).startswith(b"$GP"), "applications opening the device's name get the hub's port"
    hub.proc.send_signal(getattr(signal, how))
    assert hub.proc.wait(DEADLINE_S) == 0
    assert os.readlink(link) == "../../ttyUSB0"
    assert sorted(os.listdir(by_id)) == ["usb-Prolific-if00-port0"]


def test_a_takeover_left_by_a_killed_hub_is_restored_by_the_next(start_hub, tmp_path):
    link = tmp_path / "gps-by-id"
    os.symlink("../../ttyACM0", link)
    killed = start_hub(
        "--use-driver=sim", "gps", "--use-driver=pty", "--replace-link", str(link), wait_ports=2
    )
    killed.wait_line("taking over")
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait(DEADLINE_S)
    assert (tmp_path / "gps-by-id.lock").read_text().splitlines()[1] == "../../ttyACM0"
    again = start_hub("--use-driver=sim", "gps", "--use-driver=pty", str(link), wait_ports=2)
    again.wait_line("restoring it at exit")
    assert read_line(link).startswith(b"$GP")
    assert again.stop() == 0
    assert os.readlink(link) == "../../ttyACM0"
    assert not (tmp_path / "gps-by-id.lock").exists()


def test_without_the_option_a_device_link_is_refused_and_kept(tmp_path):
    link = tmp_path / "gps-by-id"
    os.symlink("../../ttyACM0", link)
    r = run_hub("--use-driver=sim", "gps", "--use-driver=pty", str(link))
    assert r.returncode == EXIT_USAGE
    assert error_lines(r.stderr) == [
        f"hub4com: The pty link path is a symlink to ../../ttyACM0 that no hub made; remove it, choose "
        f"another path, or give --replace-link to take it over while the hub runs in '{link}'"
    ]
    assert os.readlink(link) == "../../ttyACM0"
