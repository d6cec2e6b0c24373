"""A live tap on a port that carries 100 MB: the data intact, the tap's cost, a stalled tap's memory.

    PYTHONPATH=. python -m bench.tap [--mb 100] [--repeat 3] [--json FILE] [--no-uvloop]

Our hub relays a pty "device" to one TCP client (the pty-tcp scenario, device to
network) with ``--http`` on, in four cases per repetition, order rotating:

* ``no-http``: the relay alone (the baseline);
* ``http``: ``--http`` on, nobody watching;
* ``tap``: ``hub4com-tap --raw`` attached to the TCP port, reading as fast as
  the hub sends (the hub sends a tap at most 256 KiB of shown bytes a second;
  the rest is lost to the tap, counted);
* ``stalled``: a WebSocket tap client that completes its handshake and never
  reads again.

Per run: MB/s from the first byte written to the last byte read, SHA-256 of
what the device wrote against what the client read, the hub's peak RSS
(VmHWM) and the tap lines the hub counted as lost. Medians over --repeat; the
report gives tap / no-http throughput (the issue's target: within 10%), tap /
http (the tap's own cost, with the web stack loaded in both) and the stalled
tap's RSS over the ``http`` case's. Every process is stopped by pid. The bench
itself uses a core (it pumps and hashes both ends), the hub one, and the tap
client shares them: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from .endpoints import PtyDevice, close_all, connect_synced, free_port
from .flows import Pattern, Sink, Source, pump
from .procs import RelayProcess

ROOT = Path(__file__).resolve().parent.parent
CASES = ("no-http", "http", "tap", "stalled")
TAPPED_PORT = "TCP(1)"
DEADLINE_S = 20.0
NO_UVLOOP = "import sys; sys.modules['uvloop'] = None; from hub.main import main; sys.exit(main())"


@dataclass
class Result:
    case: str
    mbps: float
    sha_ok: bool
    peak_rss_mib: float
    tap_lost_events: int
    cpu_s: float


def hub_argv(device: str, port: int, http: int | None, uvloop: bool) -> list[str]:
    base = [sys.executable, "-m", "hub"] if uvloop else [sys.executable, "-c", NO_UVLOOP]
    argv = [*base, "-q", "--octs=off", device, "--use-driver=tcp", "--interface=127.0.0.1", "--max-rate=0"]
    argv.append(f"*{port}")
    if http is not None:
        argv.append(f"--http={http}")
    return argv


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stalled_tap(http: int) -> socket.socket:
    """A WebSocket tap that finishes its handshake and then never reads."""
    s = socket.create_connection(("127.0.0.1", http), timeout=DEADLINE_S)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    path = f"/api/tap/{urllib.parse.quote(TAPPED_PORT)}?max=65536"
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise RuntimeError("the hub closed the tap's handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"tap handshake refused: {head[:40]!r}")
    return s


def tap_lost(http: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=DEADLINE_S) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("hub4com_tap_lost_events_total"):
                return int(float(line.split()[-1]))
    return 0


def tapped(http: int) -> bool:
    url = f"http://127.0.0.1:{http}/api/ports/{urllib.parse.quote(TAPPED_PORT)}"
    with urllib.request.urlopen(url, timeout=DEADLINE_S) as r:
        return bool(json.loads(r.read())["tapped"])


def wait(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def run_case(case: str, size: int, workdir: Path, uvloop: bool) -> Result:
    with PtyDevice() as dev:
        port = free_port()
        http = None if case == "no-http" else free_port()
        log = workdir / f"{case}-{time.monotonic_ns()}.log"
        with RelayProcess(hub_argv(dev.path, port, http, uvloop), log, cwd=ROOT) as proc:
            proc.wait_listening(port, DEADLINE_S)
            if http is not None:
                proc.wait_listening(http, DEADLINE_S)
            clients = connect_synced(port, 1, dev.master, DEADLINE_S)
            extra: list[socket.socket] = []
            watcher = None
            try:
                if case == "tap":
                    cmd = [sys.executable, "-m", "hub.commands.tap", f"--url=http://127.0.0.1:{http}"]
                    cmd += ["--raw", "--dir=out", "--max=65536", TAPPED_PORT]
                    watcher = subprocess.Popen(
                        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    )
                elif case == "stalled":
                    assert http is not None
                    extra.append(stalled_tap(http))
                if http is not None and case in ("tap", "stalled"):
                    wait(lambda: tapped(http), "the tap to attach")
                source = Source(dev.master, size, Pattern(), sha256=True)
                sink = Sink(clients[0].fileno(), size, sha256=True)
                cpu0 = proc.cpu_seconds()
                t0 = time.perf_counter()
                finished = pump([source], [sink], 300.0)
                elapsed = sink.t_done - t0 if finished else float("inf")
                cpu = proc.cpu_seconds() - cpu0
                assert source.sha is not None and sink.sha is not None
                ok = finished and sink.received == source.sent and sink.sha.digest() == source.sha.digest()
                lost = tap_lost(http) if http is not None else 0
                rss = peak_rss_mib(proc.pid)
            finally:
                if watcher is not None:
                    watcher.terminate()
                    watcher.wait(5)
                close_all(extra)
                close_all(clients)
    return Result(case, size / 1e6 / elapsed, ok, rss, lost, cpu)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--mb", type=int, default=100, help="megabytes (10^6) per run (default 100)")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--json", type=Path, help="also write the runs and medians here")
    ap.add_argument("--no-uvloop", action="store_true", help="run the hub on the standard asyncio loop")
    args = ap.parse_args(argv)
    size = args.mb * 1_000_000
    runs: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-tap-") as tmp:
        for k in range(args.repeat):
            order = CASES[k % len(CASES) :] + CASES[: k % len(CASES)]
            for case in order:
                r = run_case(case, size, Path(tmp), not args.no_uvloop)
                runs.append(r)
                print(
                    f"{r.case:8} {r.mbps:7.1f} MB/s  sha256 {'ok' if r.sha_ok else 'MISMATCH'}  "
                    f"peak RSS {r.peak_rss_mib:6.1f} MiB  tap lines lost {r.tap_lost_events}  "
                    f"hub CPU {1000 * r.cpu_s / (size / 1e6):.2f} ms/MB",
                    file=sys.stderr,
                )
    med = {
        c: {
            k: statistics.median(getattr(r, k) for r in runs if r.case == c) for k in ("mbps", "peak_rss_mib")
        }
        for c in CASES
    }
    summary = {
        "mb_per_run": args.mb,
        "repeat": args.repeat,
        "loop": "asyncio" if args.no_uvloop else "uvloop",
        "all_sha256_ok": all(r.sha_ok for r in runs),
        "median": med,
        "tap_over_no_http": med["tap"]["mbps"] / med["no-http"]["mbps"],
        "tap_over_http": med["tap"]["mbps"] / med["http"]["mbps"],
        "http_over_no_http": med["http"]["mbps"] / med["no-http"]["mbps"],
        "stalled_over_no_http": med["stalled"]["mbps"] / med["no-http"]["mbps"],
        "stalled_extra_rss_mib": med["stalled"]["peak_rss_mib"] - med["http"]["peak_rss_mib"],
    }
    print("| case | MB/s (median) | peak RSS MiB (median) |\n|---|---|---|")
    for c in CASES:
        print(f"| {c} | {med[c]['mbps']:.1f} | {med[c]['peak_rss_mib']:.1f} |")
    print(
        f"\nsha256 intact in every run: {summary['all_sha256_ok']}; tap / no-http throughput "
        f"{summary['tap_over_no_http']:.2f}x (tap / http {summary['tap_over_http']:.2f}x), "
        f"http {summary['http_over_no_http']:.2f}x, stalled tap "
        f"{summary['stalled_over_no_http']:.2f}x; stalled tap RSS +{summary['stalled_extra_rss_mib']:.1f} MiB"
    )
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": [asdict(r) for r in runs]}, indent=1))
    return 0 if summary["all_sha256_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
