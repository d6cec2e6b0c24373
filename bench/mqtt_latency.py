"""MQTT against a direct TCP link between two hubs: messages per second and latency.

    PYTHONPATH=. python -m bench.mqtt_latency [--messages N] [--samples N] [--json FILE]

Hub A has the device (a pty pair; this script holds the master and writes
NMEA-sized lines into it); hub B offers a pty to the application (this script
opens the link and reads). Between A and B, in one run:

* ``tcp``: A's tcp listener, B's tcp client (the point-to-point baseline);
* ``mqtt-line-q0`` / ``mqtt-line-q1``: A publishes through a local mosquitto
  (--role=device), B subscribes (--role=client), one message per line, QoS 0/1;
* ``mqtt-bytes-q0``: the same with --frame=bytes (coalesced chunks).

Latency: one line at a time, from the write into the device's pty to the whole
line read by the application (p50, p99, max over --samples). Throughput: --messages
lines written as fast as the device takes them; lines per second until the last
line arrived, and how many were lost. Each case starts fresh hubs (and a fresh
broker). Needs mosquitto and aiomqtt; stops every process it starts by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
#: Every wait ends after this long at the latest.
DEADLINE_S = 20.0
#: An NMEA-sized line (72 bytes with CR LF); the sequence number goes in the time field.
LINE = b"$GPGGA,%09d,5231.2000,N,01324.3046,E,1,10,1.2,68.4,M,18.4,M,,*00\r\n"


@dataclass
class Result:
    case: str
    p50_ms: float
    p99_ms: float
    max_ms: float
    lines_per_s: float
    lost: int


# ---- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose output lines are collected; stopped by its pid."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        self.lines: list[str] = []
        self.p = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for raw in self.p.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def wait_line(self, text: str, count: int = 1) -> None:
        end = time.monotonic() + DEADLINE_S
        while sum(text in ln for ln in self.lines) < count:
            if self.p.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"no {text!r} from {self.p.args}:\n" + "\n".join(self.lines))
            time.sleep(0.01)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


def hub_env(tmp: Path) -> dict[str, str]:
    """The environment for our hubs: the working tree first, and the mqtt entry point
    even where the installed metadata does not declare it yet."""
    path = [str(ROOT)]
    if not any(ep.name == "mqtt" for ep in metadata.entry_points(group="hub4com.drivers")):
        info = tmp / "hub4com_mqtt_bench-0.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hub4com-mqtt-bench\nVersion: 0\n")
        (info / "entry_points.txt").write_text("[hub4com.drivers]\nmqtt = drivers.mqtt:MqttDriver\n")
        path.insert(0, str(tmp))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*path, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def hub(env: dict[str, str], *args: str) -> Proc:
    return Proc([sys.executable, "-m", "hub", "-q", *args], env)


@contextmanager
def mosquitto(tmp: Path) -> Iterator[int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type error\n")
    broker = Proc([MOSQUITTO, "-c", str(conf)])
    try:
        end = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if broker.p.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("mosquitto did not start:\n" + "\n".join(broker.lines)) from None
                time.sleep(0.01)
        yield port
    finally:
        broker.stop()


# ---- the device and the application ------------------------------------------------------


class Device:
    """A pty pair: hub A opens the slave path, we write into the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        end = time.monotonic() + DEADLINE_S * 3
        while view:
            _, w, _ = select.select([], [self.master], [], 1.0)
            if w:
                view = view[os.write(self.master, view[:65536]) :]
            elif time.monotonic() > end:
                raise RuntimeError("the device write stalled")

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with suppress(OSError):
                os.close(fd)


class App:
    """The application on hub B's pty link: reads whole lines."""

    def __init__(self, link: Path):
        end = time.monotonic() + DEADLINE_S
        while not link.exists():
            if time.monotonic() > end:
                raise RuntimeError(f"{link} never appeared")
            time.sleep(0.01)
        self.fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.buf = b""

    def lines(self, timeout: float) -> list[bytes]:
        """Whole lines available within `timeout` (maybe none)."""
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            with suppress(BlockingIOError):
                self.buf += os.read(self.fd, 1 << 20)
        *done, self.buf = self.buf.split(b"\n")
        return done

    def close(self) -> None:
        os.close(self.fd)


# ---- measurements -----------------------------------------------------------------------


def seq_of(line: bytes) -> int:
    return int(line[7:16])


def measure(dev: Device, app: App, samples: int, messages: int) -> tuple[list[float], float, int]:
    # Warm-up: the first line crosses once the whole path is up.
    end = time.monotonic() + DEADLINE_S
    while True:
        dev.write_all(LINE % 999_999_999)
        if any(seq_of(ln) == 999_999_999 for ln in app.lines(0.2) if len(ln) > 16):
            break
        if time.monotonic() > end:
            raise RuntimeError("no line crossed from the device to the application")
    while app.lines(0.2):
        pass
    latencies = []
    for i in range(samples):
        t0 = time.perf_counter()
        dev.write_all(LINE % i)
        got = False
        while not got:
            lines = app.lines(DEADLINE_S)
            if not lines:
                raise RuntimeError(f"latency sample {i} never arrived")
            got = any(seq_of(ln) == i for ln in lines)
        latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.002)
    blob = b"".join(LINE % i for i in range(messages))
    writer = threading.Thread(target=dev.write_all, args=(blob,), daemon=True)
    t0 = time.perf_counter()
    writer.start()
    received = 0
    last = -1
    t_last = t0
    idle_end = time.monotonic() + DEADLINE_S
    while last != messages - 1 and time.monotonic() < idle_end:
        lines = app.lines(0.5)
        if lines:
            received += len(lines)
            last = seq_of(lines[-1])
            t_last = time.perf_counter()
            idle_end = time.monotonic() + 3.0  # give up 3 s after the flow stops
    writer.join(DEADLINE_S)
    return latencies, messages / (t_last - t0), messages - received


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def run_case(case: str, tmp: Path, env: dict[str, str], samples: int, messages: int) -> Result:
    dev = Device()
    link = tmp / f"app-{case}"
    procs: list[Proc] = []
    try:
        with mosquitto(tmp) if case != "tcp" else _nothing() as broker_port:
            if case == "tcp":
                port = free_port()
                a_args = ["--use-driver=tcp", "--interface=127.0.0.1", f"*{port}"]
                b_args = ["--use-driver=tcp", f"*127.0.0.1:{port}"]
            else:
                _, frame, q = case.split("-")
                url = f"mqtt://127.0.0.1:{broker_port}/bench/{case}"
                common = [f"--frame={frame}", f"--qos={q[1]}"]
                a_args = ["--use-driver=mqtt", *common, url]
                b_args = ["--use-driver=mqtt", "--role=client", *common, url]
            a = hub(env, "--octs=off", dev.path, *a_args)
            procs.append(a)
            b = hub(env, *b_args, "--use-driver=pty", str(link))
            procs.append(b)
            app = App(link)  # hubs run with -q: the warm-up line shows the path is up
            try:
                lat, rate, lost = measure(dev, app, samples, messages)
            finally:
                app.close()
    finally:
        for p in procs:
            p.stop()
        dev.close()
    return Result(case, pct(lat, 50), pct(lat, 99), max(lat), rate, lost)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.mqtt_latency", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--messages", type=int, default=20_000, help="lines in the throughput run (default 20000)"
    )
    ap.add_argument("--samples", type=int, default=300, help="latency samples per case (default 300)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if not os.path.exists(MOSQUITTO):
        print("mosquitto is not installed (apt-get install mosquitto)", file=sys.stderr)
        return 2
    cases = ["tcp", "mqtt-line-q0", "mqtt-line-q1", "mqtt-bytes-q0"]
    results = []
    with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = hub_env(tmp)
        for case in cases:
            results.append(run_case(case, tmp, env, args.samples, args.messages))
            r = results[-1]
            print(f"  {r.case}: p50 {r.p50_ms:.3f} ms, {r.lines_per_s:,.0f} lines/s", file=sys.stderr)
    base = results[0]
    print(f"\n{args.samples} latency samples, {args.messages} lines of {len(LINE % 0)} bytes per case\n")
    print("| path | p50 ms | p99 ms | max ms | lines/s | lost | p50 vs tcp | rate vs tcp |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.case} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.max_ms:.2f} | {r.lines_per_s:,.0f} "
            f"| {r.lost} | {r.p50_ms / base.p50_ms:.1f}x | {r.lines_per_s / base.lines_per_s:.2f}x |"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
