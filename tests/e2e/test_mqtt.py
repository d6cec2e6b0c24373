"""The mqtt driver end to end: real hubs, a real mosquitto on a loopback port, ptys.

Hub A has the device and publishes it (--role=device); hubs B and C read it
(--role=client) and each offers a pty to an application. The broker runs from a
config file in tmp_path and is stopped by its pid. Skipped where mosquitto or
aiomqtt is missing (CI installs both).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from .conftest import DEADLINE_S, free_port, run_hub, wait_for

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
)

try:
    import aiomqtt  # noqa: F401  (the driver needs it)
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion
except ImportError:  # pragma: no cover - depends on the machine
    paho = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (apt-get install mosquitto)"),
    pytest.mark.skipif(paho is None, reason="aiomqtt is not installed (pip install '.[mqtt]')"),
]

NMEA_RE = re.compile(rb"\$([A-Z]{5}),([^*\r\n]*)\*([0-9A-F]{2})\r\n\Z")
#: Reconnect quickly in tests.
BACKOFF = "--backoff=100,400"


# ---- helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def mqtt_entry_point(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Make `--use-driver=mqtt` work in the hubs we start, even before the package
    metadata declares the entry point: a throw-away dist-info on PYTHONPATH."""
    eps = importlib.metadata.entry_points(group="hub4com.drivers")
    if any(ep.name == "mqtt" for ep in eps):
        yield
        return
    root = tmp_path_factory.mktemp("mqtt-ep")
    info = root / "hub4com_mqtt_test-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hub4com-mqtt-test\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[hub4com.drivers]\nmqtt = drivers.mqtt:MqttDriver\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        yield


class Broker:
    """A mosquitto on 127.0.0.1:<port> with a config file; restartable on the same port."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.conf = tmp_path / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stdout\nlog_type error\nlog_type warning\nlog_type notice\n"
        )
        self.log = tmp_path / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, prefix: str) -> str:
        return f"mqtt://127.0.0.1:{self.port}/{prefix}"

    def start(self) -> None:
        assert MOSQUITTO is not None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                return False
            return True

        wait_for(up, 5.0, "mosquitto to listen")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()


class Watch:
    """Collects the messages of one topic (a paho client on its own thread)."""

    def __init__(self, port: int, topic: str):
        self.got: queue.Queue[tuple[bytes, bool]] = queue.Queue()
        c = paho.Client(CallbackAPIVersion.VERSION2)
        c.on_connect = lambda c, *_: c.subscribe(topic, 1)
        c.on_message = lambda _c, _u, m: self.got.put((m.payload, bool(m.retain)))
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self.client = c

    def wait(self, payload: bytes, timeout: float = DEADLINE_S) -> bool:
        """Wait for `payload`; return its retain flag. Fails at the deadline."""
        end = time.monotonic() + timeout
        seen = []
        while True:
            try:
                got, retain = self.got.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {payload!r} within {timeout}s; saw {seen}") from None
            if got == payload:
                return retain
            seen.append(got)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def open_app(path: Path) -> serial.Serial:
    wait_for(lambda: path.exists(), what=f"{path} to exist")
    return serial.Serial(str(path), 115200, timeout=DEADLINE_S)


def nmea_ok(line: bytes) -> bool:
    m = NMEA_RE.match(line)
    if m is None:
        return False
    body = line[1 : line.index(b"*")]
    return functools.reduce(lambda a, b: a ^ b, body, 0) == int(m.group(3), 16)


def read_sentences(app: serial.Serial, n: int) -> list[bytes]:
    """Read `n` lines; each must be a complete NMEA sentence with a good checksum."""
    lines = []
    for _ in range(n):
        line = app.readline()
        assert line.endswith(b"\r\n"), f"no complete line within the timeout: {line!r} after {lines}"
        assert nmea_ok(line), f"not a complete NMEA sentence: {line!r}"
        lines.append(line)
    return lines


def gga_times(lines: list[bytes]) -> set[bytes]:
    return {ln.split(b",")[1] for ln in lines if ln[3:6] == b"GGA"}


def drain(app: serial.Serial) -> None:
    app.reset_input_buffer()


# ---- tests -----------------------------------------------------------------------------------


def test_start_up_errors_are_one_line():
    for args, expect in [
        (["--use-driver=mqtt", "mqtt://127.0.0.1"], "in 'mqtt://127.0.0.1'"),
        (["--use-driver=mqtt", "--qos=2", "mqtt://h/p"], "Invalid --qos value (0 to 1) in '--qos=2'"),
        (["--use-driver=mqtt", "--tls-ca=/nonexistent.pem", "mqtts://h/p"], "Cannot use the CA file"),
    ]:
        r = run_hub(*args)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert expect in r.stderr


def test_gps_fans_out_to_two_hubs(start_hub, broker, tmp_path):
    url = broker.url("fleet/gps1")
    a = start_hub("--use-driver=sim", "gps", "--rate=5", "--use-driver=mqtt", url, wait_ports=2)
    links = [tmp_path / "b-gps", tmp_path / "c-gps"]
    consumers = [
        start_hub("--use-driver=mqtt", "--role=client", url, "--use-driver=pty", str(link), wait_ports=2)
        for link in links
    ]
    a.wait_line("MQTT(1) connected")
    apps = [open_app(link) for link in links]
    try:
        for hub in consumers:
            hub.wait_line("device hub on fleet/gps1 is online")
        b_lines, c_lines = (read_sentences(app, 20) for app in apps)
        assert gga_times(b_lines) & gga_times(c_lines), "B and C should see the same sentences"
        watch = Watch(broker.port, "fleet/gps1/status")
        try:
            assert watch.wait(b"online") is True  # retained
            assert a.stop() == 0
            watch.wait(b"offline")  # the last will, at a normal shutdown too
        finally:
            watch.close()
        for hub in consumers:
            hub.wait_line("device hub on fleet/gps1 is offline")
    finally:
        for app in apps:
            app.close()
    assert "Traceback" not in a.output


def test_broker_restart_resumes_the_flow(start_hub, broker, tmp_path):
    url = broker.url("fleet/gps2")
    a = start_hub("--use-driver=sim", "gps", "--rate=5", "--use-driver=mqtt", BACKOFF, url, wait_ports=2)
    link = tmp_path / "b-gps"
    b = start_hub(
        "--use-driver=mqtt", "--role=client", BACKOFF, url, "--use-driver=pty", str(link), wait_ports=2
    )
    a.wait_line("MQTT(1) connected")
    b.wait_line("MQTT(0) connected")
    app = open_app(link)
    try:
        read_sentences(app, 5)
        broker.stop(signal.SIGKILL)
        a.wait_line("MQTT(1) disconnected")
        b.wait_line("MQTT(0) disconnected")
        time.sleep(0.5)  # a few reconnect attempts fail meanwhile
        drain(app)
        before = time.monotonic()
        broker.start()
        a.wait_line("MQTT(1) connected", count=2)
        b.wait_line("MQTT(0) connected", count=2)
        lines = read_sentences(app, 15)  # whole sentences after the outage too
        assert time.monotonic() - before < DEADLINE_S
        assert gga_times(lines)
        watch = Watch(broker.port, "fleet/gps2/status")
        try:
            assert watch.wait(b"online") is True  # republished after the restart
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(5)
            watch.wait(b"offline")  # the will
        finally:
            watch.close()
    finally:
        app.close()
    assert "Traceback" not in b.output


def _speed(fd: int) -> tuple[int, bool]:
    attrs = termios.tcgetattr(fd)
    return attrs[4], bool(attrs[2] & termios.CSTOPB)


def test_writes_and_line_settings_reach_the_device(start_hub, broker, pty_device, tmp_path):
    dev = pty_device()
    url = broker.url("lab/dev1")
    a = start_hub(
        "--create-filter=linectl",
        "--add-filters=0:linectl",
        "--octs=off",
        dev.path,
        "--use-driver=mqtt",
        url,
        wait_ports=2,
    )
    link = tmp_path / "b-dev"
    b = start_hub(
        "--create-filter=linectl",
        "--add-filters=0:linectl",
        "--use-driver=mqtt",
        "--role=client",
        url,
        "--use-driver=pty",
        str(link),
        wait_ports=2,
    )
    a.wait_line("MQTT(1) connected")
    b.wait_line("MQTT(0) connected")
    assert _speed(dev.slave) == (termios.B19200, False)  # the serial driver's default
    app = open_app(link)
    try:
        # Opening at 115200 is the application's first setting; it reaches the device.
        wait_for(lambda: _speed(dev.slave) == (termios.B115200, False), what="115200 on the device")
        app.write(b"$PMTK220,200*2C\r\n")
        assert dev.read(17) == b"$PMTK220,200*2C\r\n"
        app.baudrate = 4800
        app.stopbits = serial.STOPBITS_TWO
        wait_for(
            lambda: _speed(dev.slave) == (termios.B4800, True), what="4800 baud, 2 stop bits on the device"
        )
        dev.write(b"$GPTXT,01,01,02,ANTSTATUS=OK*3B\r\n")
        assert app.readline() == b"$GPTXT,01,01,02,ANTSTATUS=OK*3B\r\n"
    finally:
        app.close()
    assert "Write lost" not in a.output


def test_rfc2217_client_drives_a_device_through_the_broker(start_hub, broker, pty_device):
    """pyserial's rfc2217:// client on hub B's TCP port sets the baud rate of hub A's device."""
    dev = pty_device()
    url = broker.url("lab/dev2")
    a = start_hub(
        "--create-filter=linectl",
        "--create-filter=pinmap:--rts=cts --dtr=dsr --break=break",
        "--add-filters=0:linectl,pinmap",
        "--create-filter=linectl,state:--br=local --lc=local",
        "--add-filters=1:state",
        "--octs=off",
        dev.path,
        "--use-driver=mqtt",
        url,
        wait_ports=2,
    )
    port = free_port()
    b = start_hub(
        "--create-filter=linectl",
        "--create-filter=pinmap:--rts=cts --dtr=dsr --break=break",
        "--add-filters=0:linectl,pinmap",
        "--create-filter=telnet:--comport=server",
        "--create-filter=linectl,answer:--br=local --lc=local",
        "--add-filters=1:telnet,answer",
        "--use-driver=mqtt",
        "--role=client",
        url,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        f"*{port}",
        wait_ports=2,
    )
    a.wait_line("MQTT(1) connected")
    b.wait_line("device hub on lab/dev2 is online")
    client = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", baudrate=9600, timeout=DEADLINE_S)
    try:
        wait_for(lambda: _speed(dev.slave)[0] == termios.B9600, what="9600 baud on the device")
        client.baudrate = (
            57600  # pyserial waits for the answer: the device's own rate, back through the broker
        )
        assert _speed(dev.slave)[0] == termios.B57600
        client.write(b"$PMTK220,200*2C\r\n")
        assert dev.read(17) == b"$PMTK220,200*2C\r\n"
        dev.write(b"$GPTXT,01,01,02,ANTSTATUS=OK*3B\r\n")
        assert client.readline() == b"$GPTXT,01,01,02,ANTSTATUS=OK*3B\r\n"
    finally:
        client.close()
