"""RFC 2217 and telnet end to end, against real peers.

* pyserial's ``rfc2217://`` client against our server (``com2tcp-rfc2217 <device> <port>``)
  on a pty standing in for the serial device;
* our client (``com2tcp-rfc2217 --pty <link> <host> <port>``) against pyserial's
  PortManager server and against ser2net's ``telnet(rfc2217)`` accepter;
* Debian's telnet client, driven through a pty, on the chat example;
* hostile telnet input through the real hub.

Each test skips with a reason when its peer is missing. Every wait has a
deadline; every process started here is stopped by its pid.
"""

from __future__ import annotations

import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
import serial
import serial.rfc2217

from .conftest import DEADLINE_S, Command, PtyDevice, free_port, wait_for

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent / "peers"


def listening(port: int) -> bool:
    """True when something listens on TCP `port` (checked without connecting to it)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def device_termios(dev: PtyDevice) -> tuple[int, bool]:
    """The (speed code, two stop bits) of `dev`'s serial side (the pty slave the test holds)."""
    attrs = termios.tcgetattr(dev.slave)
    return attrs[5], bool(attrs[2] & termios.CSTOPB)


def iac_heavy(size: int, seed: int) -> bytes:
    """Seeded random bytes, a quarter of them 0xFF (IAC), some doubled."""
    rnd = random.Random(seed)
    data = bytearray(rnd.randbytes(size))
    for i in rnd.sample(range(size), size // 4):
        data[i] = 0xFF
    return bytes(data)


def read_all(app: serial.SerialBase, n: int, timeout: float = DEADLINE_S) -> bytes:
    """Read exactly `n` bytes from a pyserial port, or fail at the deadline."""
    buf = bytearray()
    end = time.monotonic() + timeout
    while len(buf) < n and time.monotonic() < end:
        buf += app.read(n - len(buf))
    assert len(buf) == n, f"got {len(buf)} of {n} bytes"
    return bytes(buf)


def pump_device(dev: PtyDevice, data: bytes) -> threading.Thread:
    t = threading.Thread(target=dev.write, args=(data,), daemon=True)
    t.start()
    return t


# ---- pyserial's rfc2217:// client against our server ----------------------------------


def start_server(start_command, dev: PtyDevice, *extra: str) -> tuple[Command, int]:
    port = free_port()
    hub = start_command(*extra, "--interface", "127.0.0.1", dev.path, str(port))
    return hub, port


def test_pyserial_client_settings_and_signals(start_command, pty_device):
    dev = pty_device()
    hub, port = start_server(start_command, dev, "--trace")
    c = serial.serial_for_url(f"rfc2217://127.0.0.1:{port}", baudrate=9600, timeout=DEADLINE_S)
    try:
        # Open waited for every setting, SET-CONTROL and PURGE-DATA to be answered.
        wait_for(lambda: device_termios(dev) == (termios.B9600, False), what="9600 on the device")
        c.baudrate = 57600
        c.stopbits = serial.STOPBITS_TWO
        assert device_termios(dev) == (termios.B57600, True)

        # A pty keeps 8 data bits and no parity: the answer carries what the device
        # took, and pyserial reports the rejection (it then keeps re-sending its
        # value with every setting, so the test puts it back).
        with pytest.raises(ValueError, match="remote rejected value for option 'datasize'"):
            c.bytesize = serial.SEVENBITS
        c.bytesize = serial.EIGHTBITS
        with pytest.raises(ValueError, match="remote rejected value for option 'parity'"):
            c.parity = serial.PARITY_EVEN
        c.parity = serial.PARITY_NONE
        assert termios.tcgetattr(dev.slave)[2] & termios.CSIZE == termios.CS8

        # Each SET-CONTROL is acknowledged (pyserial would time out otherwise) and
        # drives the device's pin through pinmap: seen in the trace nearest the port.
        c.dtr = False
        c.rts = False
        c.break_condition = True
        c.break_condition = False
        c.dtr = True
        c.reset_output_buffer()  # PURGE-DATA 2, acknowledged, becomes PURGE_TX
        # (pyserial's open already raised DTR and purged both buffers once)
        for pins, count in (("SET[] CLR[DTR]", 1), ("SET[] CLR[RTS]", 1), ("SET[BREAK] CLR[]", 1)):
            hub.wait_line(f"<-(COM)-TCP(1): SET_PIN_STATE {pins}", count=count)
        hub.wait_line("<-(COM)-TCP(1): SET_PIN_STATE SET[] CLR[BREAK]")
        hub.wait_line("<-(COM)-TCP(1): SET_PIN_STATE SET[DTR] CLR[]", count=2)
        hub.wait_line("<-(COM)-TCP(1): PURGE_TX", count=2)

        # The server notified the modem state at once: the lines can be read
        # (a pty has none, so they are off).
        assert (c.cts, c.dsr, c.ri, c.cd) == (False, False, False, False)

        c.write(b"ab\xff\xffcd\xff")
        assert dev.read(7) == b"ab\xff\xffcd\xff"
        dev.write(b"\xff\xfe\xfd\xff")
        assert read_all(c, 4) == b"\xff\xfe\xfd\xff"
    finally:
        c.close()
    assert hub.proc.poll() is None


def test_pyserial_client_data_and_reopen(start_command, pty_device, monkeypatch):
    dev = pty_device()
    hub, port = start_server(start_command, dev)
    url = f"rfc2217://127.0.0.1:{port}"
    size = 256 * 1024
    down, up = iac_heavy(size, 1), iac_heavy(size, 2)
    c = serial.serial_for_url(url, baudrate=115200, timeout=DEADLINE_S)
    try:
        writer = pump_device(dev, down)
        assert read_all(c, size) == down
        writer.join(DEADLINE_S)
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(dev.read(size)), daemon=True)
        reader.start()
        c.write(up)
        reader.join(DEADLINE_S)
        assert result == [up]
    finally:
        c.close()

    # Close and reopen at once, twenty times. pyserial polls every 50 ms while it
    # waits for answers and sleeps 0.3 s after a close; shortening those sleeps
    # makes each reopen come sooner (a harder test) and keeps the test quick.
    class FastTime:  # serial.rfc2217 uses only time.sleep
        @staticmethod
        def sleep(s: float) -> None:
            time.sleep(min(s, 0.005))

    monkeypatch.setattr(serial.rfc2217, "time", FastTime)
    for i in range(20):
        c = serial.serial_for_url(url, baudrate=115200, timeout=DEADLINE_S)
        try:
            marker = b"session %02d \xff" % i
            c.write(marker)
            assert dev.read(len(marker)) == marker
            dev.write(marker)
            assert read_all(c, len(marker)) == marker
        finally:
            c.close()
    assert hub.proc.poll() is None
    assert "Traceback" not in hub.output


def test_load_files_match_the_command(start_command, pty_device, tmp_path):
    dev = pty_device()
    port = free_port()

    def summary(c: Command) -> list[str]:
        c.wait_line("Filters TCP(1)")
        return [ln for ln in c.lines if ln.startswith(("Route ", "Filters "))]

    cases = [
        ("server", [str(port)], f"{dev.path},{port}"),
        ("client", ["127.0.0.1", str(port)], f"{dev.path},127.0.0.1,{port}"),
    ]
    for name, address, params in cases:
        direct = start_command(dev.path, *address)
        want = summary(direct)
        direct.stop()
        loaded = start_command(
            f"--load={ROOT / 'examples' / f'com2tcp-rfc2217-{name}.txt'},_BEGIN_,_END_:{params}", hub4com=True
        )
        assert summary(loaded) == want, name
        loaded.stop()
        assert any(ln.startswith("Filters TCP(1) <-> telnet") for ln in want)


# ---- our client against pyserial's server and ser2net -----------------------------------


def start_pyserial_server(dev: PtyDevice, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, str(PEERS / "rfc2217_server.py"), dev.path, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    return proc


def start_ser2net(dev: PtyDevice, port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    ser2net = shutil.which("ser2net") or "/usr/sbin/ser2net"
    config = tmp_path / "ser2net.yaml"
    config.write_text(
        "%YAML 1.1\n---\n"
        "connection: &rfc\n"
        f"  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n"
        f"  connector: serialdev,{dev.path},115200n81,local\n"
        "  options:\n"
        "    chardelay: false\n"
    )
    return subprocess.Popen(
        [ser2net, "-d", "-u", "-c", str(config), "-P", str(tmp_path / "ser2net.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


NO_SER2NET = "ser2net is not installed (apt-get install ser2net)"


def have_ser2net() -> bool:
    return bool(shutil.which("ser2net") or os.access("/usr/sbin/ser2net", os.X_OK))


@pytest.mark.parametrize(
    "peer",
    [
        "pyserial",
        pytest.param(
            "ser2net",
            marks=pytest.mark.skipif(
                not have_ser2net(), reason="ser2net is not installed (apt-get install ser2net)"
            ),
        ),
    ],
)
def test_our_client_with_a_pty(peer, start_command, pty_device, tmp_path):
    far = pty_device()  # the remote serial device; the test reads its termios
    port = free_port()
    server = start_pyserial_server(far, port) if peer == "pyserial" else start_ser2net(far, port, tmp_path)
    try:
        wait_for(lambda: listening(port) or server.poll() is not None, what=f"{peer} listening")
        assert server.poll() is None, f"{peer} exited"
        link = tmp_path / "vcom0"
        hub = start_command("--pty", str(link), "127.0.0.1", str(port))
        hub.wait_line("TCP(1) connected")
        app = serial.Serial(str(link), 9600, stopbits=serial.STOPBITS_TWO, timeout=DEADLINE_S)
        try:
            # The pty reports the application's settings; they become SET-BAUDRATE
            # and SET-STOPSIZE, which the server applies to the far device.
            # (ser2net opens the device with its own 115200n81 when we connect,
            # and applies ours when they come: wait for them rather than race.)
            wait_for(lambda: device_termios(far) == (termios.B9600, True), what="9600 2 stop bits far away")
            app.baudrate = 57600
            wait_for(lambda: device_termios(far) == (termios.B57600, True), what="57600 far away")

            size = 64 * 1024
            up, down = iac_heavy(size, 3), iac_heavy(size, 4)
            app.write(up)
            assert far.read(size) == up
            writer = pump_device(far, down)
            assert read_all(app, size) == down
            writer.join(DEADLINE_S)
        finally:
            app.close()
        assert hub.proc.poll() is None
    finally:
        stop_process(server)


def test_connect_only_while_the_application_has_the_pty_open(start_command, pty_device, tmp_path):
    far = pty_device()
    port = free_port()
    server = start_pyserial_server(far, port)
    try:
        wait_for(lambda: listening(port) or server.poll() is not None, what="the pyserial server listening")
        link = tmp_path / "vcom0"
        hub = start_command("--connect", "dsr", "--pty", str(link), "127.0.0.1", str(port))
        time.sleep(0.3)
        assert not any("TCP(1) connected" in ln for ln in hub.lines), "connected with no application"
        for i in range(2):
            with serial.Serial(str(link), 19200, timeout=DEADLINE_S) as app:
                hub.wait_line("TCP(1) connected", count=i + 1)
                app.write(b"session %d" % i)
                assert far.read(9) == b"session %d" % i
            hub.wait_line("TCP(1) disconnected", count=i + 1)
    finally:
        stop_process(server)


# ---- Debian's telnet client on the chat example -----------------------------------------


class TelnetClient:
    """telnet(1) on its own pty, as a user at a terminal would run it."""

    def __init__(self, port: int):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            ["telnet", "127.0.0.1", str(port)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env={**os.environ, "TERM": "dumb"},
        )
        os.close(slave)
        self.screen = b""

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def wait_for(self, text: bytes, timeout: float = DEADLINE_S) -> None:
        end = time.monotonic() + timeout
        while text not in self.screen:
            left = end - time.monotonic()
            assert left > 0, f"telnet screen never showed {text!r}: {self.screen!r}"
            if select.select([self.master], [], [], min(left, 0.1))[0]:
                try:
                    self.screen += os.read(self.master, 4096)
                except OSError:
                    break

    def close(self) -> None:
        stop_process(self.proc)  # type: ignore[arg-type]
        os.close(self.master)


@pytest.mark.skipif(shutil.which("telnet") is None, reason="telnet is not installed (apt-get install telnet)")
def test_telnet_clients_on_the_chat_example(start_command):
    port = free_port()
    start_command(
        "--create-filter=telnet",
        "--add-filters=All:telnet",
        "--route=All:All",
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        *[f"*{port}"] * 3,
        wait_ports=3,
        hub4com=True,
    )
    a, b = TelnetClient(port), TelnetClient(port)
    try:
        a.wait_for(b"Escape character is")
        b.wait_for(b"Escape character is")
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as raw:
            raw.settimeout(DEADLINE_S)
            time.sleep(0.2)  # the third session is up
            a.type(b"hello from a\r")
            b.wait_for(b"hello from a")
            got = b""
            while b"hello from a" not in got:
                chunk = raw.recv(4096)
                assert chunk, "raw client disconnected"
                got += chunk
            assert got.startswith(b"\xff"), "the raw client also sees the telnet negotiation"
            raw.sendall(b"raw here\r\n")
            a.wait_for(b"raw here")
            b.wait_for(b"raw here")
    finally:
        a.close()
        b.close()


# ---- hostile input through the real hub -----------------------------------------------

IAC, SB, SE, WILL, DO = 255, 250, 240, 251, 253

HOSTILE = {
    "truncated IAC, then gone": bytes([IAC]),
    "truncated negotiation, then gone": bytes([IAC, WILL]),
    "SB COM-PORT cut short, then gone": bytes([IAC, SB, 44, 1, 0, 0]),
    "stray SE and unknown commands": bytes([IAC, SE, IAC, 0, IAC, 7, IAC, 244, IAC, 243, IAC, 246]),
    "unknown options": bytes([IAC, WILL, 200, IAC, DO, 99, IAC, SB, 99, 1, 2, IAC, SE, IAC, 254, 201]),
    "bad COM-PORT values": bytes(
        [
            *(IAC, SB, 44, 1, IAC, SE),  # baud rate with 0 of 4 bytes
            *(IAC, SB, 44, 2, 99, IAC, SE),  # data size 99
            *(IAC, SB, 44, 3, 200, IAC, SE),  # parity 200
            *(IAC, SB, 44, 5, 250, IAC, SE),  # SET-CONTROL 250
            *(IAC, SB, 44, 12, 7, IAC, SE),  # PURGE-DATA 7
            *(IAC, SB, 44, 150, IAC, SE),  # unknown command
            *(IAC, SB, 44, IAC, SE),  # empty
        ]
    ),
    "SB inside SB": bytes([IAC, SB, 44, IAC, SB, 44, 1, IAC, SE, IAC, SE]),
}


def test_hostile_telnet_input(start_command, pty_device):
    dev = pty_device()
    port = free_port()
    hub = start_command(
        "--create-filter=telnet,tcp,telnet:--comport=server",
        "--add-filters=1,2,3:tcp",
        "--route=0:All",
        "--route=All:0",
        "--octs=off",
        dev.path,
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        *[f"*{port}"] * 3,
        wait_ports=4,
        hub4com=True,
    )
    tick = re.compile(rb"tick (\d{6})\n")
    stop = threading.Event()

    def device_ticks() -> None:
        n = 0
        while not stop.is_set():
            dev.write(b"tick %06d\n" % n)
            n += 1
            time.sleep(0.002)

    good = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    received = bytearray()

    def good_reader() -> None:
        while True:
            try:
                chunk = good.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            received.extend(chunk)

    def device_drain() -> None:  # what the clients send reaches the device: read it
        while not stop.is_set():
            if select.select([dev.master], [], [], 0.05)[0]:
                try:
                    os.read(dev.master, 65536)
                except OSError:
                    return

    threads = [threading.Thread(target=f, daemon=True) for f in (device_ticks, good_reader, device_drain)]
    for t in threads:
        t.start()
    try:
        for name, payload in HOSTILE.items():
            with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as h:
                h.sendall(payload)
                time.sleep(0.05)
            assert hub.proc.poll() is None, f"hub died on {name}"
        # A subnegotiation that never ends: 4 MB without IAC SE, then random bytes
        # full of IAC, on one connection; another client cuts a sequence mid-way.
        rnd = random.Random(5)
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as h:
            h.sendall(bytes([IAC, SB, 44, 1]))
            junk = rnd.randbytes(1 << 20).replace(b"\xff", b"\x00")
            for _ in range(4):
                h.sendall(junk)
            h.sendall(iac_heavy(1 << 20, 6))
            h.sendall(bytes([IAC, SB, 99]) + b"x" * 100_000)
        rss_kib = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{hub.proc.pid}/status").read_text()).group(1))
        assert rss_kib < 150 * 1024, f"hub RSS {rss_kib} KiB after endless subnegotiations"

        # The hub is alive, still accepts connections, and the good client kept
        # receiving the device's ticks in order all along.
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as late:
            late.settimeout(DEADLINE_S)
            seen = b""
            while not tick.search(seen):
                chunk = late.recv(4096)
                assert chunk, "a new client was closed"
                seen += chunk
    finally:
        stop.set()
        for t in (threads[0], threads[2]):
            t.join(DEADLINE_S)
        time.sleep(0.2)
        good.shutdown(socket.SHUT_RDWR)  # ends the reader's recv()
        threads[1].join(DEADLINE_S)
        good.close()
    numbers = [int(n) for n in tick.findall(bytes(received))]
    assert len(numbers) > 100
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "the good client lost data"
    assert hub.proc.poll() is None
    assert "telnet peer:" in hub.output, "malformed input is logged"
    assert "Traceback" not in hub.output
