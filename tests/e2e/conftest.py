"""End-to-end helpers: start the real `hub4com` command and talk to it from outside.

Every wait has a deadline; every process started here is stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DEADLINE_S = 10.0

#: Runs the hub with uvloop unimportable, so it falls back to the standard asyncio loop.
NO_UVLOOP = "import sys; sys.modules['uvloop'] = None; from hub.main import main; sys.exit(main())"
#: The event loops a test can run the hub on (`uvloop` argument of Hub and start_hub).
LOOPS = ("uvloop", "asyncio")


def wait_for(predicate: Callable[[], object], timeout: float = DEADLINE_S, what: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` different free ports (free_port() twice may give the same one: the
    kernel hands a just-closed port out again)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(family, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Hub:
    """A running hub4com process; its stderr lines are collected in `lines`."""

    def __init__(
        self, args: list[str], cwd: str | None = None, stdin: bytes | None = None, uvloop: bool = True
    ):
        self.args = args
        self.lines: list[str] = []
        command = ["-m", "hub"] if uvloop else ["-c", NO_UVLOOP]
        self.proc = subprocess.Popen(
            [sys.executable, *command, *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )
        if stdin is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(stdin)
            self.proc.stdin.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, text: str, timeout: float = DEADLINE_S, count: int = 1) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None and sum(text in line for line in self.lines) < count:
                raise AssertionError(f"hub exited ({self.proc.returncode}) before {text!r}:\n{self.output}")
            return sum(text in line for line in self.lines) >= count

        try:
            wait_for(seen, timeout, repr(text))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- hub output ---\n{self.output}") from None

    def wait_started(self, nports: int, timeout: float = DEADLINE_S) -> None:
        self.wait_line("Started ", timeout, count=nports)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(2)
        return self.proc.returncode


def run_hub(
    *args: str, timeout: float = 20.0, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run hub4com to completion (for start-up errors and --help)."""
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class PtyDevice:
    """A pty pair standing in for a serial device: the hub opens `path`, the test holds `master`."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        os.set_blocking(self.master, False)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        end = time.monotonic() + DEADLINE_S
        while view:
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > end:
                    raise AssertionError("device write timed out") from None
                time.sleep(0.001)

    def read(self, n: int, timeout: float = DEADLINE_S) -> bytes:
        """Read exactly `n` bytes or fail at the deadline."""
        buf = bytearray()
        end = time.monotonic() + timeout
        while len(buf) < n:
            try:
                buf += os.read(self.master, n - len(buf))
            except BlockingIOError:
                if time.monotonic() > end:
                    raise AssertionError(f"device read: got {len(buf)} of {n} bytes") from None
                time.sleep(0.002)
        return bytes(buf)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def pty_device() -> Iterator[Callable[[], PtyDevice]]:
    devices: list[PtyDevice] = []

    def make() -> PtyDevice:
        d = PtyDevice()
        devices.append(d)
        return d

    yield make
    for d in devices:
        d.close()


def recv_exactly(sock: socket.socket, n: int, timeout: float = DEADLINE_S) -> bytes:
    sock.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


@pytest.fixture
def start_hub(pty_device: Callable[[], PtyDevice]) -> Iterator[Callable[..., Hub]]:
    """Hubs are stopped before the pty devices they use are closed."""
    hubs: list[Hub] = []

    def start(
        *args: str, wait_ports: int | None = None, stdin: bytes | None = None, uvloop: bool = True
    ) -> Hub:
        hub = Hub(list(args), stdin=stdin, uvloop=uvloop)
        hubs.append(hub)
        if wait_ports:
            hub.wait_started(wait_ports)
        return hub

    yield start
    for hub in hubs:
        hub.stop()


# ---- running a wrapper command (com2tcp-rfc2217 by default) ------------------------------


def command_argv(*args: str) -> list[str]:
    """com2tcp-rfc2217 as installed next to this Python, else through its module."""
    script = Path(sys.executable).with_name("com2tcp-rfc2217")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "hub.commands.com2tcp_rfc2217", *args]


class Command(Hub):
    """A running com2tcp-rfc2217 (or any command); output lines collected as for Hub."""

    def __init__(self, argv: list[str]):
        self.args = argv
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


@pytest.fixture
def start_command() -> Iterator[Callable[..., Command]]:
    running: list[Command] = []

    def start(*args: str, wait_ports: int = 2, hub4com: bool = False) -> Command:
        argv = [sys.executable, "-m", "hub", *args] if hub4com else command_argv(*args)
        c = Command(argv)
        running.append(c)
        if wait_ports:
            c.wait_started(wait_ports)
        return c

    yield start
    for c in running:
        c.stop()
