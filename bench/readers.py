"""Sinks read in child processes, so reading does not limit the bench.

The parent connects the clients (connect_synced), then `ReaderProcesses` forks
children that each read a share of the fds with `flows.Sink`s and report
every sink's count, CRC, finish time and error back through a pipe. The
parent writes the source meanwhile. perf_counter() is CLOCK_MONOTONIC, the
same clock in every process, so finish times compare across them.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType

from .flows import Sink, Source, pump
from .procs import RelayProcess

__all__ = ["ReaderProcesses", "SinkResult", "Transfer", "check", "transfer"]

#: (received, crc, t_done, error) of one sink.
SinkResult = tuple[int, int, float, str]


def _read(fds: list[int], expected: int, timeout_s: float, conn: Connection) -> None:
    sinks = [Sink(fd, expected) for fd in fds]
    conn.send("ready")
    pump([], sinks, timeout_s)
    conn.send([(s.received, s.crc, s.t_done, s.error) for s in sinks])


def _child(fds: list[int], expected: int, timeout_s: float, conn: Connection) -> None:
    code = 0
    try:
        _read(fds, expected, timeout_s, conn)
    except BaseException:  # report nothing; the parent sees the missing results
        code = 1
    finally:
        os._exit(code)  # no atexit handlers of the parent (they stop its relays)


class ReaderProcesses:
    """`count` child processes reading `fds` (each expects `expected` bytes)."""

    def __init__(self, fds: list[int], expected: int, count: int, timeout_s: float) -> None:
        ctx = multiprocessing.get_context("fork")
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._conns: list[Connection] = []
        self._shares: list[int] = []
        count = max(1, min(count, len(fds)))
        for k in range(count):
            share = fds[k::count]
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(share, expected, timeout_s, child), daemon=True)
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
            self._shares.append(len(share))
        self.timeout_s = timeout_s

    def __enter__(self) -> ReaderProcesses:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        for conn in self._conns:
            conn.close()

    def wait_ready(self) -> None:
        """Wait until every child reads (so its start-up is not timed)."""
        for conn in self._conns:
            if not conn.poll(self.timeout_s) or conn.recv() != "ready":
                raise RuntimeError("a reader process did not start")

    def results(self) -> list[SinkResult]:
        """Every sink's result, in the order of the sockets given; missing ones as errors."""
        per_child: list[list[SinkResult]] = []
        for conn, n in zip(self._conns, self._shares, strict=True):
            got: list[SinkResult] = []
            try:
                if conn.poll(self.timeout_s):
                    got = conn.recv()
            except (EOFError, OSError):
                pass
            per_child.append(got or [(0, 0, 0.0, "the reader process failed")] * n)
        count = len(per_child)
        out: list[SinkResult] = []
        for i in range(sum(self._shares)):
            out.append(per_child[i % count][i // count])
        return out


@dataclass
class Transfer:
    """What `transfer` saw: every sink's result, and the time and relay CPU it took."""

    finished: bool
    results: list[SinkResult]
    elapsed_s: float
    cpu_s: float


def transfer(
    proc: RelayProcess, source: Source, fds: list[int], expected: int, readers: int, timeout_s: float
) -> Transfer:
    """Write `source` while `readers` child processes read `fds` (`expected` bytes each).

    The time runs from the first write until the last sink had its bytes; the
    relay's CPU over the same span (until every reader reported).
    """
    with ReaderProcesses(fds, expected, readers, timeout_s) as children:
        children.wait_ready()
        cpu0 = proc.cpu_seconds()
        t0 = time.perf_counter()
        finished = pump([source], [], timeout_s)
        results = children.results()
        cpu = proc.cpu_seconds() - cpu0
    elapsed = max((r[2] for r in results), default=t0) - t0
    return Transfer(finished, results, elapsed, cpu)


def check(source: Source, result: SinkResult) -> str:
    """'' if a sink got exactly what the source sent, else what went wrong (Sink.check's rule)."""
    received, crc, _, error = result
    if error and received < source.sent:
        return f"{error} after {received} of {source.sent} bytes"
    if received != source.sent:
        return f"received {received} bytes, sent {source.sent}"
    if crc != source.crc:
        return "checksum mismatch"
    return ""
