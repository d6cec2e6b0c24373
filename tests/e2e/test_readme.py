"""The README's quick starts, run as a newcomer would run them.

Every command block of the section "Install" and "Quick start" carries a mark,
``<!-- quickstart: <name> -->``, and is taken from the README itself. Each
command runs in a terminal of its own (a pty, as when typed), after the
README's own activation line, with free ports in place of 7000, 10110 and
8080, a temporary folder in place of /tmp and a pty in place of /dev/ttyUSB0.
The checks are what the README says happens.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import DEADLINE_S, PtyDevice, free_ports, wait_for

README = Path(__file__).parents[2] / "README.md"
MARK_RE = re.compile(r"<!-- quickstart: ([\w-]+) -->\n```sh\n(.*?)```", re.S)
#: A line of NMEA as the simulated receiver sends it.
NMEA_RE = re.compile(rb"\$G[PN](?:RMC|GGA),[^\r\n]*\*[0-9A-F]{2}\r?\n")
START_TIMEOUT_S = 30.0
#: What Newcomer.substitute replaces: the venv, /tmp, the device and the ports.
SUBSTITUTED_RE = re.compile(r"\.venv/bin/|\.venv/|/tmp/|/dev/ttyUSB0|(?<!\d)(?:7000|10110|8080)(?!\d)")


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("\n## Install\n") : text.index("\n## Troubleshooting\n")]


def quickstart_blocks() -> dict[str, list[str]]:
    """Each marked block's commands: one per line, comments and blank lines left out."""
    blocks: dict[str, list[str]] = {}
    for name, body in MARK_RE.findall(readme_section()):
        assert name not in blocks, f"two README blocks are marked {name!r}"
        commands = []
        for line in body.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(line)
        blocks[name] = commands
    return blocks


BLOCKS = quickstart_blocks()
#: The marks the tests below run; a new block needs a test.
TESTED = {
    "install",
    "activate",
    "one-line",
    "device",
    "serve",
    "serve-client",
    "device-talks",
    "attach",
    "attach-app",
    "gps",
    "gps-apps",
    "gps-real",
}


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"the README's commands need {', '.join(missing)} (apt-get install)")


class Terminal:
    """A command run as if typed into a terminal of its own; everything it prints is kept."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path):
        self.command = command
        master, slave = os.openpty()
        tty.setraw(master)
        self.master = master
        self.proc = subprocess.Popen(
            ["bash", "-c", command],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def wait_for(self, what: str | re.Pattern[bytes], timeout: float = DEADLINE_S) -> None:
        def seen() -> bool:
            found = what.search(self.output) if isinstance(what, re.Pattern) else what in self.text
            if not found and self.proc.poll() is not None:
                time.sleep(0.2)  # the last output may still be on its way
                found = what.search(self.output) if isinstance(what, re.Pattern) else what in self.text
                if not found:
                    raise AssertionError(f"{self.command!r} exited ({self.proc.returncode}):\n{self.text}")
            return bool(found)

        try:
            wait_for(seen, timeout, repr(what))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.command} ---\n{self.text}") from None

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait_exit(self, timeout: float = DEADLINE_S) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Ctrl-C's job: end the command (its process group, which we started) by its id."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        self._reader.join(2)


class Newcomer:
    """Runs README commands with the substitutions the module docstring names."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.rfc2217_port, self.nmea_port, self.http_port = free_ports(3)
        self.device: PtyDevice | None = None
        self.terminals: list[Terminal] = []
        self.env = dict(os.environ, TERM="xterm", PYTHONUNBUFFERED="1")
        bindir = Path(sys.executable).parent
        self.env["PATH"] = f"{bindir}{os.pathsep}{self.env.get('PATH', '')}"
        self.venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None

    def substitute(self, command: str) -> str:
        """One pass over `command`: a path put in is never substituted again (the venv
        may live under /tmp, and a temporary folder's name may hold a port number)."""
        if self.venv is not None:
            venv_dir = f"{self.venv}/"
            bin_dir = f"{self.venv}/bin/"
        else:
            venv_dir, bin_dir = ".venv/", f"{Path(sys.executable).parent}/"
        if "/dev/ttyUSB0" in command:
            self.device = self.device or PtyDevice()
        ports = {"7000": self.rfc2217_port, "10110": self.nmea_port, "8080": self.http_port}

        def put(m: re.Match[str]) -> str:
            word = m.group()
            if word == ".venv/bin/":
                return bin_dir
            if word == ".venv/":
                return venv_dir
            if word == "/tmp/":
                return f"{self.tmp}/"
            if word == "/dev/ttyUSB0":
                assert self.device is not None
                return self.device.path
            return str(ports[word])

        return SUBSTITUTED_RE.sub(put, command)

    def activated(self, command: str) -> str:
        """`command` after the README's activation line, where this Python is a venv."""
        (activate,) = BLOCKS["activate"]
        if self.venv is None or not (self.venv / "bin" / "activate").exists():
            return command  # PATH has this Python's folder first instead
        return f"{self.substitute(activate)} && {command}"

    def run(self, command: str) -> Terminal:
        term = Terminal(self.activated(self.substitute(command)), self.env, self.tmp)
        self.terminals.append(term)
        return term

    def path(self, readme_path: str) -> Path:
        return Path(self.substitute(readme_path))

    def close(self) -> None:
        for term in reversed(self.terminals):  # clients first, the device last
            term.stop()
        if self.device is not None:
            self.device.close()


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[Newcomer]:
    n = Newcomer(tmp_path)
    yield n
    n.close()


# ---- the README's marks ----------------------------------------------------------------


def test_every_quickstart_block_is_marked_and_tested() -> None:
    section = readme_section()
    fences = section.count("```sh\n")
    assert fences == len(MARK_RE.findall(section)), "an unmarked command block in the quick starts"
    assert set(BLOCKS) == TESTED


def test_the_one_line_start_is_the_install_block_then_the_demo() -> None:
    (install,) = BLOCKS["install"]
    (one_line,) = BLOCKS["one-line"]
    assert one_line.startswith(install + " && .venv/bin/gps-share --demo ")
    assert BLOCKS["activate"] == [". .venv/bin/activate"]


# ---- job 1 and job 2: RFC 2217 -----------------------------------------------------------


def start_device_and_server(n: Newcomer) -> Terminal:
    """Job 1's terminals 1 and 2: the stand-in device and the RFC 2217 server."""
    (device,) = BLOCKS["device"]
    (serve,) = BLOCKS["serve"]
    n.run(device)
    for link in ("/tmp/ttyDEV", "/tmp/ttyDEV-other"):
        wait_for(n.path(link).exists, START_TIMEOUT_S, f"socat's link {link}")
    server = n.run(serve)
    server.wait_for("Started TCP(1)", START_TIMEOUT_S)
    return server


def check_data_both_ways(n: Newcomer, app: Terminal) -> None:
    """Job 1's terminal 4: the device's line reaches `app`, and what is typed there the device."""
    echo, cat = BLOCKS["device-talks"]
    reader = n.run(cat)
    time.sleep(0.3)  # cat has opened the device's end (nothing is lost if not: see the loop)
    n.run(echo).wait_exit()
    app.wait_for("hello from the device")
    for _ in range(int(DEADLINE_S / 0.5)):  # typed keys reach the device once cat reads
        app.type(b"typed-by-the-app ")
        time.sleep(0.5)
        if "typed-by-the-app" in reader.text:
            break
    reader.wait_for("typed-by-the-app")


def test_job_1_serve_a_serial_port_over_rfc2217(newcomer: Newcomer) -> None:
    need("socat")
    server = start_device_and_server(newcomer)
    (client,) = BLOCKS["serve-client"]
    miniterm = newcomer.run(client)
    miniterm.wait_for("--- Miniterm on rfc2217://", START_TIMEOUT_S)
    server.wait_for("TCP(1) connected")
    check_data_both_ways(newcomer, miniterm)


def test_job_2_use_a_remote_port_as_a_local_one(newcomer: Newcomer) -> None:
    need("socat")
    server = start_device_and_server(newcomer)
    (attach,) = BLOCKS["attach"]
    (app,) = BLOCKS["attach-app"]
    local = newcomer.run(attach)
    local.wait_for("TCP(1) connected", START_TIMEOUT_S)
    server.wait_for("TCP(1) connected")
    miniterm = newcomer.run(app)
    miniterm.wait_for("--- Miniterm on ", START_TIMEOUT_S)
    local.wait_for("connected")
    check_data_both_ways(newcomer, miniterm)
    miniterm.stop()
    local.wait_for("the application closed")


# ---- job 3: gps-share ----------------------------------------------------------------------


def check_gps_readers(n: Newcomer, health: bool) -> None:
    """The second terminal of job 3: every reader gets whole NMEA sentences."""
    cat, nc, curl = BLOCKS["gps-apps"]
    need("nc")
    for reader in (n.run(cat), n.run(nc)):
        reader.wait_for(NMEA_RE, START_TIMEOUT_S)
    if health:
        need("curl")
        check = n.run(curl)
        assert check.wait_exit() == 0
        check.wait_for("ok")


def test_job_3_share_a_simulated_gps(newcomer: Newcomer) -> None:
    (gps,) = BLOCKS["gps"]
    hub = newcomer.run(gps)
    hub.wait_for("HTTP: status page on", START_TIMEOUT_S)
    check_gps_readers(newcomer, health=True)
    hub.wait_for("Status: ")  # --status: a line every 5 s


def test_job_3_the_one_line_start(newcomer: Newcomer) -> None:
    (one_line,) = BLOCKS["one-line"]
    (install,) = BLOCKS["install"]
    # The install step is what CI itself runs before the tests; the rest runs as written.
    hub = newcomer.run(one_line.removeprefix(install + " && "))
    hub.wait_for("HTTP: status page on", START_TIMEOUT_S)
    check_gps_readers(newcomer, health=True)


def test_job_3_a_real_receiver(newcomer: Newcomer) -> None:
    (gps,) = BLOCKS["gps-real"]
    hub = newcomer.run(gps)  # a pty stands in for /dev/ttyUSB0
    hub.wait_for("Started TCPM(3)", START_TIMEOUT_S)
    assert newcomer.device is not None
    sentence = b"$GPRMC,120000.00,A,5231.2005,N,01324.3045,E,5.05,79.8,071226,,,A*5E\r\n"
    feeding = threading.Event()

    def feed(device: PtyDevice = newcomer.device) -> None:
        while not feeding.wait(0.2):
            device.write(sentence)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        check_gps_readers(newcomer, health=False)
    finally:
        feeding.set()
        feeder.join(5)
