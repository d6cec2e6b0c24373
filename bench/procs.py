"""Relay processes: started without a shell, watched through /proc, stopped by pid.

Every process started here is recorded until it is reaped, so an interrupted run
still stops what it started (SIGTERM, then SIGKILL), never by name.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RelayProcess", "StartupError", "busy_cores", "listening_ports", "stop_all"]

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: 127.0.0.1 as /proc/net/tcp spells it (little-endian hex).
LOOPBACK_HEX = "0100007F"
#: TCP_LISTEN in /proc/net/tcp's "st" column.
TCP_LISTEN = "0A"

_live: dict[int, RelayProcess] = {}


class StartupError(RuntimeError):
    """A relay did not come up (exited, or its ports never listened in time)."""


class RelayProcess:
    """One relay process, its log file and its /proc counters."""

    def __init__(
        self, argv: list[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        #: When the process was started (time.monotonic()).
        self.started_at = time.monotonic()
        self._log = open(log_path, "wb")  # closed in stop()
        try:
            self._popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else {**os.environ, **env},
            )
        except OSError:
            self._log.close()
            raise
        self.pid = self._popen.pid
        _live[self.pid] = self

    def __enter__(self) -> RelayProcess:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def signal(self, sig: int) -> None:
        """Send `sig` to the process (by its pid)."""
        self._popen.send_signal(sig)

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self._popen.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time of the process, all threads, in seconds.

        From the scheduler's nanosecond counters (/proc/<pid>/task/*/schedstat)
        where the kernel has them, else from utime + stime in clock ticks.
        """
        try:
            total_ns = 0
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                total_ns += int((task / "schedstat").read_text().split()[0])
            return total_ns / 1e9
        except (FileNotFoundError, ProcessLookupError):
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_bytes(self) -> int:
        """Resident set size (VmRSS) in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def wait_listening(self, port: int, timeout_s: float) -> None:
        """Wait until 127.0.0.1:<port> listens, without connecting to it.

        A relay found listening on any other address is stopped: the bench binds
        loopback only, and so must everything it starts.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            addrs = listening_ports().get(port, set())
            if addrs - {LOOPBACK_HEX}:
                raise StartupError(f"listens on port {port} beyond 127.0.0.1 ({', '.join(sorted(addrs))})")
            if addrs:
                return
            if not self.alive():
                raise StartupError(f"exited with {self._popen.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise StartupError(f"port {port} not listening after {timeout_s:.0f} s: {self.log_tail()}")
            time.sleep(0.01)

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the process's output, on one line."""
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, grace_s: float = 3.0) -> int | None:
        """SIGTERM, wait up to grace_s, then SIGKILL; return the exit status."""
        try:
            if self._popen.poll() is None:
                self._popen.send_signal(signal.SIGTERM)
                try:
                    self._popen.wait(grace_s)
                except subprocess.TimeoutExpired:
                    self._popen.kill()
                    self._popen.wait(grace_s)
            return self._popen.returncode
        finally:
            _live.pop(self.pid, None)
            self._log.close()


def stop_all() -> None:
    """Stop every relay process still running (used at exit and on interrupt)."""
    for proc in list(_live.values()):
        proc.stop(grace_s=1.0)


atexit.register(stop_all)


def listening_ports() -> dict[int, set[str]]:
    """TCP ports in LISTEN state -> local addresses (hex, as /proc/net/tcp and tcp6 spell them)."""
    ports: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            addr, port_hex = parts[1].split(":")
            if parts[3] == TCP_LISTEN:
                ports.setdefault(int(port_hex, 16), set()).add(addr)
    return ports


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields)
    return total - idle, total


def busy_cores(interval_s: float) -> float:
    """How many cores the whole machine kept busy during the next interval_s (sleeps that long)."""
    busy0, total0 = _cpu_times()
    time.sleep(interval_s)
    busy1, total1 = _cpu_times()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)
