"""Every installed command: -h and --version work, and a bad command line is one line
naming the user's own argument, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hub.errors import EXIT_USAGE

SCRIPTS: dict[str, str] = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())[
    "project"
]["scripts"]


def run(command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an installed command as the user would (its module's main where not installed)."""
    module, _, func = SCRIPTS[command].partition(":")
    code = f"import sys; from {module} import {func}; sys.exit({func}())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_help_and_version(command: str) -> None:
    for flag in ("-h", "--help"):
        r = run(command, flag)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        assert "Usage:" in r.stdout or "usage:" in r.stdout.lower()
    r = run(command, "--version")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith(command) and len(r.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["gps-share", "--demo", "--tcp", "seventy"], "gps-share: 'seventy' is not a --tcp port"),
        (["gps-share", "--demo=3", "--pty", "/tmp/x"], "gps-share: --demo must not have an argument"),
        (["com2tcp-rfc2217", "/dev/ttyUSB0", "70000"], "com2tcp-rfc2217: listen port 70000 is out of range"),
        (["com2tcp-rfc2217", "/dev/ttyUSB0", "seventy"], "com2tcp-rfc2217: 'seventy' is not a listen port"),
        (["multiplexer", "--link-type", "tcp", "h:seventy", "/tmp/a"], "'seventy' is not a link port"),
        (["hub4com", "--baud", "9600", "/dev/ttyUSB0"], "write --baud=9600"),
        (["hub4com", "--use-driver=tcp", "*70000"], "port 70000 is out of range (0 to 65535) in '*70000'"),
        (["hub4com", "--help=nosuch"], "there is no driver or filter 'nosuch'"),
        (["hub4com-tap", "--bogus", "0"], "hub4com-tap: unknown option --bogus"),
        # an error found as the hub starts names the command the user typed
        (["gps-share", "/dev/no-such-gps", "--pty", "/tmp/x"], "gps-share: no such device in '/dev/no-such"),
        (["com2tcp-rfc2217", "/dev/no-such-tty", "7000"], "com2tcp-rfc2217: no such device in '/dev/no-such"),
    ],
)
def test_a_bad_command_line_is_one_line_in_the_users_words(argv: list[str], text: str) -> None:
    r = run(*argv)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert text in r.stderr and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"{argv[0]}: ")
    assert "Option(" not in r.stderr and "docopt" not in r.stderr.lower()
