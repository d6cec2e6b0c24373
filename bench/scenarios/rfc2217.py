"""RFC 2217 server relay throughput: a pty device served over telnet/RFC 2217 to one client.

Our hub runs what ``com2tcp-rfc2217 --interface 127.0.0.1 <pty> <port>`` runs (the
command's own hub4com arguments); ser2net runs a ``telnet(rfc2217)`` accepter with
``chardelay: false`` and 4 KiB buffers. The bench plays a minimal RFC 2217 client:
it offers COM-PORT and BINARY, lets the opening negotiation pass, then moves data.
Every 0xFF is doubled on the wire, so data full of 0xFF is the worst case (twice
the bytes, and every byte is an escape). (ser2net with 64 KiB buffers was no
faster here, so the notes' 4 KiB stay.) The same relays' raw pty -> TCP relay
(no telnet) runs in the same scenario as the reference: the target is 0xFF data at
no less than 0.9 of our raw throughput (issue 15), and faster than ser2net. In every
case the sink is read by a child process (bench.readers): on 0xFF data it reads and
checksums twice the source's bytes, and sharing the bench's one thread with the
source, that would slow the bench, not the relay.
"""

from __future__ import annotations

import os
import random
import select
import socket
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..endpoints import LOOPBACK, PtyDevice, close_all, connect_synced, free_port, write_all
from ..flows import CHUNK, Pattern, Source
from ..procs import RelayProcess
from ..readers import transfer
from ..relays import SLOTS, HubRelay, NotSupported, PtyTcp, Relay, Ser2netRelay
from ..settings import Settings
from .base import CPU_PER_MB, MBPS, Case, Run, Scenario, measure_apart, started

__all__ = ["Rfc2217Throughput"]

DEV_TO_NET = "dev->net"
NET_TO_DEV = "net->dev"
#: Data kinds: seeded random bytes (1 in 256 is 0xFF), or nothing but 0xFF.
RANDOM = "random"
ALL_FF = "0xFF"
RAW = "raw"

IAC = b"\xff"
#: What the bench's client sends at once: WILL COM-PORT-OPTION, DO BINARY, WILL BINARY.
CLIENT_HELLO = bytes([255, 251, 44, 255, 253, 0, 255, 251, 0])
#: The opening negotiation is over once the server has been quiet this long.
SETTLE_S = 0.15

#: ser2net's options for the RFC 2217 accepter (the peers notes' tuning).
SER2NET_OPTIONS = ("chardelay: false", "dev-to-net-bufsize: 4096", "net-to-dev-bufsize: 4096")


class BlockPattern(Pattern):
    """A given block of bytes, repeated (Pattern's interface)."""

    def __init__(self, block: bytes) -> None:
        self.size = len(block)
        self.block = block
        self._view = memoryview(block + block[:CHUNK])


def escape(data: bytes) -> bytes:
    return data.replace(IAC, IAC + IAC)


class Stream:
    """`total` payload bytes of a repeated block, and the same stream IAC-escaped.

    Escaping works byte by byte, so the escaped stream is the escaped block
    repeated: the wire side is a plain Source or Sink on that block, and the
    lengths and checksums to expect are computed before the run. The bench does
    no telnet work while it is timed (un-escaping in Python would limit it more
    than the relays).
    """

    def __init__(self, block: bytes, total: int) -> None:
        self.total = total
        self.payload = BlockPattern(block)
        self.wire = BlockPattern(escape(block))
        whole, rest = divmod(total, len(block))
        tail = block[:rest]
        self.wire_total = whole * len(self.wire.block) + len(escape(tail))
        self.crc = self.wire_crc = 0
        for _ in range(whole):
            self.crc = zlib.crc32(block, self.crc)
            self.wire_crc = zlib.crc32(self.wire.block, self.wire_crc)
        self.crc = zlib.crc32(tail, self.crc)
        self.wire_crc = zlib.crc32(escape(tail), self.wire_crc)


def measure_escaped(
    proc: RelayProcess, source: Source, sink_fd: int, stream: Stream, wire_sink: bool, timeout_s: float
) -> Run:
    """measure_transfer() for a stream that is escaped on one side of the relay,
    its sink read by a child process (bench.readers, as in every case here).

    `mbps` and `cpu_ms_per_mb` count payload bytes; the sink is checked against
    the length and checksum it must see: the escaped stream if `wire_sink`.
    """
    want_len, want_crc = (stream.wire_total, stream.wire_crc) if wire_sink else (stream.total, stream.crc)
    done = transfer(proc, source, [sink_fd], want_len, 1, timeout_s)
    ((received, crc, _, error),) = done.results
    values = {"cpu_ms_per_mb": 1000 * done.cpu_s / max(stream.total / 1e6, 1e-9)}
    finished = done.finished and received == want_len
    if finished:
        values["mbps"] = stream.total / 1e6 / max(done.elapsed_s, 1e-9)
    problems = [p for p in (source.error, error) if p]
    if received != want_len:
        problems.append(f"the sink got {received} bytes, expected {want_len}")
    elif crc != want_crc:
        problems.append("checksum mismatch")
    if not done.finished:
        problems.insert(0, f"timeout after {timeout_s:.0f} s")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return Run(values, valid=False, note=problems[0] + more)
    return Run(values)


def rfc2217_command(relay: Relay, device: str, port: int, workdir: Path) -> list[str]:
    """The relay's command line for an RFC 2217 server on `device`; raises NotSupported."""
    if isinstance(relay, HubRelay):
        from hub.commands.com2tcp_rfc2217 import hub_args, parse

        settings = parse(["--interface", LOOPBACK, device, str(port)])
        assert settings is not None
        return [*relay._base(), *hub_args(settings)]
    if isinstance(relay, Ser2netRelay):
        config = workdir / "ser2net.yaml"
        config.write_text(
            "%YAML 1.1\n---\nconnection: &bench\n"
            f"  accepter: telnet(rfc2217),tcp,{LOOPBACK},{port}\n"
            f"  connector: serialdev,{device},115200n81,local\n"
            "  options:\n" + "".join(f"    {o}\n" for o in (*SER2NET_OPTIONS, "max-connections: 1"))
        )
        return ["ser2net", "-d", "-u", "-c", str(config)]
    raise NotSupported("no RFC 2217 server")


_run_ids = iter(range(1, 1 << 30))


@contextmanager
def started_rfc2217(relay: Relay, device: str, port: int, settings: Settings) -> Iterator[RelayProcess]:
    run_dir = settings.workdir / f"rfc2217-{next(_run_ids):04d}-{relay.name}"
    run_dir.mkdir()
    argv = rfc2217_command(relay, device, port, run_dir)
    with RelayProcess(argv, run_dir / "relay.log", cwd=relay.cwd) as proc:
        proc.wait_listening(port, settings.start_timeout_s)
        yield proc


def rfc2217_client(port: int, device_fd: int, timeout_s: float) -> socket.socket:
    """Connect, offer COM-PORT and BINARY, prove the path with one byte, let the
    server's opening negotiation pass; the socket comes back non-blocking."""
    (sock,) = connect_synced_hello(port, device_fd, timeout_s)
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < SETTLE_S:
        if time.monotonic() > deadline:
            sock.close()
            raise TimeoutError("the server never stopped negotiating")
        if select.select([sock], [], [], SETTLE_S / 3)[0]:
            try:
                if not sock.recv(65536):
                    sock.close()
                    raise EOFError("the server closed the connection while negotiating")
            except BlockingIOError:
                continue
            quiet_since = time.monotonic()
    return sock


def connect_synced_hello(port: int, device_fd: int, timeout_s: float) -> list[socket.socket]:
    """connect_synced() for one client that first sends CLIENT_HELLO."""
    sock = socket.create_connection((LOOPBACK, port), timeout=timeout_s)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        write_all(sock.fileno(), CLIENT_HELLO + b"s", timeout_s)
        deadline = time.monotonic() + timeout_s
        got = b""
        while got != b"s":
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the sync byte never reached the device")
            if select.select([device_fd], [], [], left)[0]:
                try:
                    got += os.read(device_fd, 64)
                except BlockingIOError:
                    continue
                if got.strip(b"s") or len(got) > 1:
                    raise RuntimeError(f"the device read {got[:20]!r} instead of one sync byte")
    except BaseException:
        sock.close()
        raise
    return [sock]


class Rfc2217Throughput(Scenario):
    name = "rfc2217"
    title = "RFC 2217 server relay throughput (pty device -> telnet/RFC 2217 -> client)"
    about = (
        "The bench holds a pty master as the device; the relay serves the slave over "
        "telnet with RFC 2217 (ours: com2tcp-rfc2217's chain; ser2net: telnet(rfc2217), "
        "chardelay off, 4 KiB buffers) to one client on 127.0.0.1 that offers COM-PORT, "
        "then moves data: seeded random bytes, or nothing but 0xFF (every byte doubled "
        "on the wire). MB/s counts payload bytes; the bytes on the wire are checked against "
        "the escaped stream's precomputed length and CRC. The raw "
        "cases are the same relays without telnet (the harness's pty -> TCP command "
        "lines), as the reference. The sink is read by a process of its own (on 0xFF "
        "data it reads twice the bytes the source writes)."
    )
    metrics = (MBPS, CPU_PER_MB)

    def cases(self, settings: Settings) -> list[Case]:
        cases = []
        for direction in (DEV_TO_NET, NET_TO_DEV):
            for data in (RAW, RANDOM, ALL_FF):
                cases.append(Case(f"{direction} {data}", {"direction": direction, "data": data}))
        return cases

    def run(self, relay: Relay, case: Case, settings: Settings) -> Run:
        if not isinstance(relay, (HubRelay, Ser2netRelay)):
            raise NotSupported("no RFC 2217 server")
        if isinstance(relay, HubRelay) and relay.listener != SLOTS:
            raise NotSupported("com2tcp-rfc2217 uses the slots listener: measured as hub")
        size = settings.throughput_bytes
        data = case.params["data"]
        dev_to_net = case.params["direction"] == DEV_TO_NET
        with PtyDevice() as dev:
            port = free_port()
            if data == RAW:
                with started(relay, PtyTcp(dev.path, port), port, settings) as proc:
                    clients = connect_synced(port, 1, dev.master, settings.start_timeout_s)
                    try:
                        near, far = dev.master, clients[0].fileno()
                        if not dev_to_net:
                            near, far = far, near
                        source = Source(near, size, Pattern())
                        return measure_apart(proc, source, [far], size, 1, settings.run_timeout_s)
                    finally:
                        close_all(clients)
            stream = Stream(bytes([0xFF]) * (1 << 20) if data == ALL_FF else random_block(), size)
            with started_rfc2217(relay, dev.path, port, settings) as proc:
                sock = rfc2217_client(port, dev.master, settings.start_timeout_s)
                try:
                    client = sock.fileno()
                    if dev_to_net:
                        source, sink = Source(dev.master, size, stream.payload), client
                    else:
                        source, sink = Source(client, stream.wire_total, stream.wire), dev.master
                    return measure_escaped(proc, source, sink, stream, dev_to_net, settings.run_timeout_s)
                finally:
                    sock.close()


def random_block() -> bytes:
    """The bench's usual seeded random block (what Pattern() repeats)."""
    return random.Random(2217).randbytes((1 << 20) + 4093)
