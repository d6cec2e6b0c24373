"""Connection storm: N clients connect at once; time until every one is served both ways."""

from __future__ import annotations

import errno
import os
import selectors
import socket
import statistics
import time

from ..endpoints import LOOPBACK, PtyDevice, free_port, write_all
from ..relays import PtyTcp, Relay
from ..settings import Settings
from .base import Case, Metric, Run, Scenario, started

ALL = Metric("all_served_ms", "all served", "ms", higher_is_better=False)
MEDIAN = Metric("p50_served_ms", "median client served", "ms", higher_is_better=False)
HELLO = b"h"
GO = b"GO-all-clients-served-0123456789"


class _Client:
    """One storm client: connect, send HELLO, wait for GO."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.connected = False
        self.buf = b""
        self.t_done = 0.0
        self.error = ""

    def on_ready(self, sel: selectors.BaseSelector) -> None:
        try:
            if self.connected:
                data = self.sock.recv(256)
            else:
                self._on_connected(sel)
                return
        except OSError as exc:
            self.error = f"{'recv' if self.connected else 'send'}: {exc.strerror}"
            return
        if not data:
            self.error = f"closed by the relay after {self.buf!r}"
            return
        self.buf += data
        if len(self.buf) >= len(GO):
            self.t_done = time.perf_counter()

    def _on_connected(self, sel: selectors.BaseSelector) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self.error = f"connect: {errno.errorcode.get(err, err)}"
            return
        self.connected = True
        self.sock.send(HELLO)
        sel.modify(self.sock, selectors.EVENT_READ, self)


class ConnectionStorm(Scenario):
    name = "storm"
    title = "Connection storm"
    about = (
        "N clients start connecting to one port at the same moment (non-blocking connects); "
        "each sends one byte once connected. When the device has all N bytes it writes a "
        f"{len(GO)}-byte message that every client must receive exactly. Time is from the "
        "first connect until the last client has that message."
    )
    metrics = (ALL, MEDIAN)

    def cases(self, settings: Settings) -> list[Case]:
        return [Case(f"{settings.storm_clients} clients", {"clients": settings.storm_clients})]

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        count = int(case.params["clients"])
        with PtyDevice() as dev:
            port = free_port()
            with started(relay, PtyTcp(dev.path, port, count), port, settings):
                return _storm(port, count, dev.master, settings.storm_timeout_s)


def _storm(port: int, count: int, device: int, timeout_s: float) -> Run:
    sel = selectors.DefaultSelector()
    clients = [_Client() for _ in range(count)]
    hellos = b""
    try:
        t0 = time.perf_counter()
        for c in clients:
            err = c.sock.connect_ex((LOOPBACK, port))
            if err not in (0, errno.EINPROGRESS):
                c.error = f"connect: {errno.errorcode.get(err, err)}"
                continue
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        sel.register(device, selectors.EVENT_READ, None)
        waiting = sum(1 for c in clients if not c.error)
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(min(0.5, max(0.0, deadline - time.monotonic()))):
                client = key.data
                if client is None:
                    hellos += _read_some(device)
                    if len(hellos) >= count:
                        sel.unregister(device)
                        write_all(device, GO, timeout_s)
                    continue
                client.on_ready(sel)
                if client.error or client.t_done:
                    sel.unregister(client.sock)
                    waiting -= 1
    finally:
        sel.close()
        for c in clients:
            c.sock.close()
    return _verdict(clients, hellos, count, t0, timeout_s)


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def _verdict(clients: list[_Client], hellos: bytes, count: int, t0: float, timeout_s: float) -> Run:
    done = [c.t_done - t0 for c in clients if c.t_done]
    failed = [c.error for c in clients if c.error]
    if failed:
        return Run.invalid(f"{len(failed)} clients failed, e.g. {failed[0]}")
    if len(done) < count:
        connected = sum(1 for c in clients if c.connected)
        note = (
            f"after {timeout_s:.0f} s {connected} of {count} clients were connected, "
            f"{len(hellos)} heard at the device, {len(done)} served"
        )
        limit_ms = 1000 * timeout_s
        return Run(
            {"all_served_ms": limit_ms, "p50_served_ms": limit_ms},
            note=note,
            lower_bounds=("all_served_ms", "p50_served_ms"),
        )
    values = {"all_served_ms": 1000 * max(done), "p50_served_ms": 1000 * statistics.median(done)}
    if hellos != HELLO * count:
        return Run.invalid(f"device read {len(hellos)} bytes, expected {count} x {HELLO!r}", **values)
    wrong = sum(1 for c in clients if c.buf != GO)
    if wrong:
        return Run.invalid(f"{wrong} clients received something other than the message", **values)
    return Run(values)
