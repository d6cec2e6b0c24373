"""The hub as a service: --config, sd_notify, reload on SIGHUP, devices by identity, unit files."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from ..examples import EXAMPLES, example_command
from .conftest import DEADLINE_S, Hub, free_port, free_ports, recv_exactly, wait_for
from .test_gps_share import connect, open_pty_app, payload, read_until
from .test_http import get, get_json
from .test_rfc2217 import device_termios, read_all
from .test_sessions import cflag, nothing_from, rfc2217

UNITS = Path(__file__).parents[2] / "examples" / "systemd"


@pytest.mark.parametrize("unit", ["hub4com.service", "hub4com@.service"])
def test_unit_files_pass_systemd_analyze_verify(tmp_path: Path, unit: str) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    exe = shutil.which("hub4com") or str(Path(sys.executable).parent / "hub4com")
    text = (UNITS / unit).read_text().replace("/usr/local/bin/hub4com", exe)
    name = "hub4com@lab.service" if "@" in unit else unit
    (tmp_path / unit).write_text(text)
    args = ["systemd-analyze", "verify", "--man=no", str(tmp_path / name)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def _device_toml(name: str, path: str, port: int, baud: int = 9600) -> str:
    return (
        f'[device.{name}]\npath = "{path}"\nbaud = {baud}\nocts = "off"\n'
        f'raw = {{ port = {port}, interface = "127.0.0.1", slow-client = "block" }}\n\n'
    )


def _run_config(file: Path, text: str) -> Hub:
    """hub4com --config=`file`, with `text` written to it."""
    file.write_text(text)
    return Hub([f"--config={file}"])


def _connect(port: int) -> socket.socket:
    def attempt() -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1)
        except OSError:
            return None

    return wait_for(attempt, what=f"a listener on {port}")  # type: ignore[return-value]


def test_config_notify_reload_and_untouched_stream(tmp_path: Path, pty_device) -> None:
    devs = {n: pty_device() for n in "abcd"}
    ports = dict(zip("abcd", free_ports(4), strict=True))
    cfg = tmp_path / "hub.toml"
    cfg.write_text("".join(_device_toml(n, devs[n].path, ports[n]) for n in "abc"))
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(DEADLINE_S)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"}
    old = dict(os.environ)
    os.environ.update(env)  # Hub starts the command with this process's environment
    try:
        hub = Hub([f"--config={cfg}"])
    finally:
        os.environ.clear()
        os.environ.update(old)
    got: list[str] = []

    def until(field: str) -> str:
        while True:
            msg = sock.recv(4096).decode()
            got.append(msg)
            if field in msg:
                return msg

    try:
        ready = until("READY=1")
        assert "STATUS=6 ports in 3 components" in ready
        until("WATCHDOG=1")
        client = _connect(ports["a"])
        removed = _connect(ports["b"])
        hub.wait_line("connected from", count=2)
        devs["a"].write(b"x")
        assert recv_exactly(client, 1) == b"x"

        # a continuous stream through the untouched device while the file changes
        total = 2_000_000
        data = hashlib.sha256(b"seed").digest() * (total // 32)
        received = bytearray()

        def reader() -> None:
            client.settimeout(DEADLINE_S)
            while len(received) < len(data):
                chunk = client.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        writer = threading.Thread(target=devs["a"].write, args=(data,))
        writer.start()
        cfg.write_text(
            _device_toml("a", devs["a"].path, ports["a"])
            + _device_toml("c", devs["c"].path, ports["c"], baud=19200)
            + _device_toml("d", devs["d"].path, ports["d"])
        )
        hub.proc.send_signal(signal.SIGHUP)
        until("RELOADING=1")
        assert "READY=1" in until("READY=1")
        hub.wait_line("Reloaded")
        writer.join(DEADLINE_S)
        t.join(DEADLINE_S)
        assert hashlib.sha256(received).hexdigest() == hashlib.sha256(data).hexdigest()
        assert "started device.c, device.d; stopped device.b, device.c; unchanged 1" in hub.output
        removed.settimeout(DEADLINE_S)
        assert removed.recv(10) == b""  # the removed device's client was closed
        new = _connect(ports["d"])
        hub.wait_line("connected from", count=3)
        devs["d"].write(b"new")
        assert recv_exactly(new, 3) == b"new"

        # a bad file is logged and the running config kept
        cfg.write_text("[device.a\n")
        hub.proc.send_signal(signal.SIGHUP)
        hub.wait_line("keeping the running config")
        devs["a"].write(b"still")
        assert recv_exactly(client, 5) == b"still"
    finally:
        assert hub.stop() == 0
        sock.settimeout(2)
        try:
            until("STOPPING=1")
        finally:
            sock.close()


def test_bad_config_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[device.x]\npath = "/dev/null"\nspeed = 9600\n')
    r = subprocess.run(
        [sys.executable, "-m", "hub", f"--config={cfg}"], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "line 3" in r.stderr and "key device.x.speed" in r.stderr


def test_usb_device_follows_its_identity_across_replug(tmp_path: Path, pty_device) -> None:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()

    def plug(tty: str, target: str) -> None:
        usbdev = sysfs / "devices" / "usb1" / "1-1"
        intf = usbdev / "1-1:1.0"
        (intf / tty).mkdir(parents=True, exist_ok=True)
        for name, value in (("idVendor", "0403"), ("idProduct", "6001"), ("serial", "LAB1")):
            (usbdev / name).write_text(value + "\n")
        (intf / "bInterfaceNumber").write_text("00\n")
        cls = sysfs / "class" / "tty" / tty
        cls.mkdir(parents=True)
        (cls / "device").symlink_to(os.path.relpath(intf / tty, cls))
        (dev / tty).symlink_to(target)  # the node appears last, as udev makes it

    def unplug(tty: str) -> None:
        shutil.rmtree(sysfs / "class" / "tty" / tty)
        (dev / tty).unlink()

    port = free_port()
    first = pty_device()
    plug("ttyUSB0", first.path)
    hub = _run_config(
        tmp_path / "usb.toml",
        f'[defaults.serial]\nsysfs = "{sysfs}"\ndev = "{dev}"\nreopen-interval = 100\n\n'
        f'[device.console]\nusb = "0403:6001"\nserial-number = "LAB1"\nocts = "off"\n'
        f'raw = {{ port = {port}, interface = "127.0.0.1" }}\n',
    )
    try:
        hub.wait_started(2)
        client = _connect(port)
        hub.wait_line("connected from")
        first.write(b"one")
        assert recv_exactly(client, 3) == b"one"
        os.close(first.master)  # unplugged: the hub sees the device hang up
        first.master = os.open("/dev/null", os.O_RDONLY)
        unplug("ttyUSB0")
        hub.wait_line("is absent; waiting")
        second = pty_device()
        plug("ttyUSB3", second.path)  # back under another name
        hub.wait_line("reopened")
        second.write(b"two")
        assert recv_exactly(client, 3) == b"two"  # the same client, still connected
        client.sendall(b"back")
        assert second.read(4) == b"back"
    finally:
        hub.stop()


@pytest.mark.parametrize("front_end", ["config", "command line"])
def test_gps_example_moves_the_same_data_through_both_front_ends(
    front_end: str, tmp_path: Path, pty_device
) -> None:
    """examples/gps.toml and the command line its comment gives, on a pty GPS: both
    applications and the TCP client get every sentence; an application's writes
    reach the receiver, the TCP client's (--recv-from=none) do not."""
    dev = pty_device()
    links = [tmp_path / "gps0", tmp_path / "gps1"]
    port = free_port()
    ours = {
        "/dev/ttyACM0": dev.path,
        "/tmp/gps0": str(links[0]),
        "/tmp/gps1": str(links[1]),
        "2947": str(port),
    }
    if front_end == "config":
        text = (EXAMPLES / "gps.toml").read_text()
        for old, new in ours.items():
            text = text.replace(old, new)
        hub = _run_config(tmp_path / "gps.toml", text)
    else:
        hub = Hub([ours.get(a, a) for a in example_command("gps.toml")])
    fds: list[int] = []
    client: socket.socket | None = None
    try:
        hub.wait_started(4)
        fds = [open_pty_app(link) for link in links]
        client = connect(port)
        for text in ("gps0(1) connected", "gps1(2) connected", "client 1 connected from"):
            hub.wait_line(text)
        readers: dict[object, int | socket.socket] = {"app0": fds[0], "app1": fds[1], "tcp": client}
        # each reader starts at the first whole sentence it sees (--frame=line)
        prime = b"$PRIME,2*00\r\n"
        dev.write(b"$PRIME,1*00\r\n" + prime)
        got = read_until(readers, lambda b: all(v.endswith(prime) for v in b.values()), DEADLINE_S)
        assert set(got.values()) == {prime}
        stream = b"".join(payload(500))
        dev.write(stream)
        got = read_until(readers, lambda b: all(len(v) >= len(stream) for v in b.values()), 3 * DEADLINE_S)
        assert all(v == stream for v in got.values()), {k: len(v) for k, v in got.items()}

        client.sendall(b"$NOT,FROM,THE,NETWORK*00\r\n")
        for fd, command in zip(fds, (b"$PUBX,40,GGA,0,0,0,0*5A\r\n", b"$PUBX,00*33\r\n"), strict=True):
            os.write(fd, command)
            # the second arrives after the first: nothing from the network in between
            assert dev.read(len(command)) == command
    finally:
        if client is not None:
            client.close()
        for fd in fds:
            os.close(fd)
        assert hub.stop() == 0
    assert "Traceback" not in hub.output


def test_rfc2217_service_against_pyserial(tmp_path: Path, pty_device) -> None:
    """A device served as RFC 2217 from the config: the writer's baud rate and flow
    control reach the device, a read-only listener watches, and the device is back
    at its configured settings when the writer leaves (serial --restore)."""
    dev = pty_device()
    writer_port, observer_port = free_ports(2)
    hub = _run_config(
        tmp_path / "rfc.toml",
        f'[device.dev]\npath = "{dev.path}"\nrequired = true\nbaud = 9600\n'
        f'rfc2217 = [{{ port = {writer_port}, interface = "127.0.0.1", max-clients = 1 }},\n'
        f'           {{ port = {observer_port}, interface = "127.0.0.1", read-only = true }}]\n',
    )
    try:
        hub.wait_started(3)
        observer = rfc2217(observer_port, baudrate=9600)  # asks for what the device has
        writer = rfc2217(writer_port, baudrate=57600, rtscts=True)
        try:
            assert device_termios(dev)[0] == termios.B57600
            assert cflag(dev) & termios.CRTSCTS
            with pytest.raises(ValueError, match="remote rejected value for option 'baudrate'"):
                observer.baudrate = 115200
            dev.write(b"to both\xff\n")
            assert read_all(writer, 9) == b"to both\xff\n"
            assert read_all(observer, 9) == b"to both\xff\n"
            writer.write(b"from the writer\xff")
            assert dev.read(16) == b"from the writer\xff"
            observer.write(b"not me")
            assert nothing_from(dev)
        finally:
            writer.close()
            observer.close()
        wait_for(lambda: device_termios(dev)[0] == termios.B9600, what="the configured 9600 again")
        assert not cflag(dev) & termios.CRTSCTS  # octs off, as com2tcp-rfc2217 has it
    finally:
        assert hub.stop() == 0
    assert "Traceback" not in hub.output


def test_status_page_follows_the_config_components_across_a_reload(tmp_path: Path, pty_device) -> None:
    """[hub] http serves the runtime's hubs, one per device, labelled by component;
    an absent device fails /healthz until a reload removes it."""
    dev = pty_device()
    http, tcp, other = free_ports(3)
    present = _device_toml("a", dev.path, tcp)
    absent = f'[device.b]\npath = "{tmp_path / "ttyUSB9"}"\nraw = {{ port = {other} }}\n'
    cfg = tmp_path / "web.toml"
    hub = _run_config(cfg, f'[hub]\nhttp = "127.0.0.1:{http}"\n\n{present}{absent}')
    try:
        hub.wait_line("HTTP: status page on")
        assert [h["hub"] for h in get_json(http, "/api/hubs")] == ["device.a", "device.b"]
        status, body = get(http, "/healthz")
        assert status == 503 and "absent" in body and "b/ttyUSB9(0)" in body
        cfg.write_text(f'[hub]\nhttp = "127.0.0.1:{http}"\n\n{present}')
        hub.proc.send_signal(signal.SIGHUP)
        hub.wait_line("Reloaded")
        assert [h["hub"] for h in get_json(http, "/api/hubs")] == ["device.a"]
        assert get(http, "/healthz")[0] == 200
    finally:
        assert hub.stop() == 0
    assert "Traceback" not in hub.output
