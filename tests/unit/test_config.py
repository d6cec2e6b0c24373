"""The config file: schema, errors, command-line equivalence, print-config, ser2net import."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from drivers._usbid import UsbIdentity
from hub.cli import compile_args
from hub.commands import com2tcp_rfc2217
from hub.config import parse_config
from hub.configout import model_table, model_toml
from hub.errors import UsageError
from hub.registry import Registry
from hub.runtime import Runtime
from hub.ser2net import ser2net_to_toml

from ..examples import EXAMPLES, example_command

REG = Registry()


def table_of_args(*argv: str) -> str:
    return model_table(compile_args(list(argv), REG))


def table_of_config(text: str, file: str = "test.toml") -> str:
    """What --check-config prints: the config is compiled and every component built."""
    cfg = parse_config(text, file, REG)
    loop = asyncio.new_event_loop()
    try:
        Runtime.for_config(cfg, loop, REG)
    finally:
        loop.close()
    return model_table(cfg.merged())


GPS_ARGS = example_command("gps.toml")


def lab_rack_args() -> list[str]:
    """The lab rack example as one command line: 40 devices, 120 ports."""
    argv = ["--baud=115200", "--octs=off", "--interface=127.0.0.1", "--status-interval=300"]
    for i in range(1, 41):
        d, r, w = 3 * (i - 1), 3 * (i - 1) + 1, 3 * (i - 1) + 2
        g = f"d{i}"
        argv += [
            f"--create-filter=purge,{g}com,purge",
            f"--create-filter=pinmap,{g}com,pinmap:--rts=cts --dtr=dsr --break=break",
            f"--create-filter=linectl,{g}com,lc:--br=remote --lc=remote --flow=remote",
            f"--add-filters={d}:{g}com({r})",
            f"--create-filter=telnet,{g}tcp,telnet:--comport=server --suppress-echo=yes",
            f"--create-filter=lsrmap,{g}tcp,lsrmap",
            f"--create-filter=pinmap,{g}tcp,pinmap:--cts=cts --dsr=dsr --dcd=dcd --ring=ring",
            f"--create-filter=linectl,{g}tcp,lc:--br=local --lc=local --flow=local",
            f"--add-filters={r}:{g}tcp",
            f"--bi-route={d}:{r},{w}",
            "--use-driver=serial",
            "--if-absent=wait",
            f"usb:0403:6001,serial=LAB{i:05d}",
            "--use-driver=tcp-multi",
            "--max-clients=4",
            "--no-kick-oldest",
            f"{7000 + i}",
            "--max-clients=1",
            "--kick-oldest",
            f"{8000 + i}",
        ]
    return argv


@pytest.mark.parametrize(
    ("example", "argv"),
    [("gps.toml", GPS_ARGS), ("lab-rack.toml", lab_rack_args())],
)
def test_example_config_equals_its_command_line(example: str, argv: list[str]) -> None:
    text = (EXAMPLES / example).read_text()
    assert table_of_config(text, example) == table_of_args(*argv)


@pytest.mark.parametrize(
    "multi",
    [
        ["--max-clients=4", "--recv-from=first"],
        ["--read-only", "--send-to=last"],
    ],
)
def test_rfc2217_service_runs_the_chains_of_com2tcp_rfc2217(multi: list[str]) -> None:
    """The same ports, chains and routes as the command (its escparse aside: it has
    nothing to parse on Linux), --flow on both linectl filters included."""
    argv = [*multi, "--interface=127.0.0.1", "/dev/null", "7000"]
    settings = com2tcp_rfc2217.parse(argv)
    assert settings is not None
    args = [a for a in com2tcp_rfc2217.hub_args(settings) if not a.startswith("--create-filter=escparse")]
    options = ", ".join(f"{o[2:].partition('=')[0]} = {_toml_value(o)}" for o in multi)
    text = (
        '[device.d]\npath = "/dev/null"\nrequired = true\n'
        f'rfc2217 = {{ port = 7000, interface = "127.0.0.1", {options} }}\n'
    )
    table = table_of_config(text)
    assert table == table_of_args(*args)
    assert "--flow=remote" in table and "--flow=local" in table and "--octs=off" in table


def _toml_value(option: str) -> str:
    _, sep, value = option.partition("=")
    return f'"{value}"' if sep else "true"


def test_rfc2217_service_with_other_services_and_session_policies() -> None:
    """Requests reach the device from the RFC 2217 ports only; tcp-multi's --control and
    --read-only and serial's --restore have their config spellings; an octs of the
    device's own is kept."""
    text = """
[device.d]
path = "/dev/null"
octs = "on"
restore = false
rfc2217 = [{ port = 7001, control = "none" }, { port = 7002, read-only = true }]
raw = 7003
"""
    table = table_of_config(text)
    assert "/dev/null  --if-absent=wait --restore=off" in table  # octs on: the default
    assert "tcp-multi  7001  --control=none" in table
    assert "tcp-multi  7002  --read-only" in table
    assert "purge.OUT(1,2)[purge] -> pinmap.OUT(1,2)[pinmap" in table
    assert "lc.OUT(1,2)[linectl --br=remote --lc=remote --flow=remote]" in table


def test_print_config_round_trips_to_the_same_model() -> None:
    argv = [
        "--octs=off",
        "--baud=4800",
        "/dev/null",
        "--create-filter=telnet,t:--comport=server",
        "--create-filter=linectl,t,lc:--br=local --lc=local",
        "--add-filters=1:t.OUT(0),t",
        "--use-driver=tcp-multi",
        "--interface=127.0.0.1",
        "--read-only",
        "7000",
        "--use-driver=connector",
        "a",
        "b",
        "--bi-connect=a:b",
        "--route=0:1,2",
        "--echo-route=3",
        "--fc-route=2:1",
        "--no-default-fc-route=1:0",
        "--required=0,3",
        "--http=127.0.0.1:0",
        "--http-allow=127.0.0.0/8",
    ]
    model = compile_args(argv, REG)
    back = parse_config(model_toml(model, "from a test"), "printed.toml", REG).merged()
    assert back.same_as(model)
    assert back.http == model.http
    assert model_table(back) == model_table(model)
    assert "Health checks: 0 3" in model_table(back)
    assert "HTTP: --http=127.0.0.1:0 --http-allow=127.0.0.0/8" in model_table(back)


def test_health_and_http_in_a_config() -> None:
    """[hub] takes the HTTP options; a group's required lists its ports /healthz checks
    (names or numbers, [] for none); a device's ports all count."""
    text = """
[hub]
http = 8080
http-max-connections = 8

[device.d]
path = "/dev/null"

[group.g]
required = ["pty"]
[[group.g.port]]
path = "/dev/zero"
[[group.g.port]]
name = "pty"
driver = "pty"
path = "/tmp/x"
"""
    cfg = parse_config(text, "h.toml", REG)
    assert cfg.http == ("--http=8080", "--http-max-connections=8")
    assert cfg.merged().required == (0, 2)
    table = table_of_config(text)
    assert "Health checks: 0 2" in table and "HTTP: --http=8080 --http-max-connections=8" in table
    assert table_of_config(text.replace('["pty"]', "[]")).count("Health checks: 0\n") == 1


def test_sticky_spellings_do_not_matter() -> None:
    a = table_of_args("--BAUD=9600", "--baud=4800", "/dev/null", "--write-limit=262144", "/dev/zero")
    b = table_of_config(
        '[group.g]\n[[group.g.port]]\npath="/dev/null"\nbaud=4800\n'
        '[[group.g.port]]\npath="/dev/zero"\nbaud=4800\n'
    )
    assert a == b


def test_a_device_with_rfc2217_telnet_and_mqtt_services() -> None:
    text = """
[device.dev]
path = "/dev/null"
rfc2217 = [7001, { port = "127.0.0.1:7002", max-clients = 2 }]
telnet = 2323
pty = { path = "/tmp/x", write-limit = 0 }
"""
    table = table_of_config(text)
    assert "tcp-multi  127.0.0.1:7002  --max-clients=2" in table
    assert "telnet[telnet --comport=server --suppress-echo=yes]" in table
    assert "purge.OUT(1,2)[purge]" in table
    assert "telnet[telnet --suppress-echo=yes]" in table


BAD = [
    ("[device.x\npath=1", "invalid TOML", None),
    ('[device.x]\npath = "/dev/null"\nbogus = 1\n', "unknown key 'bogus'", 3),
    ('[device.x]\npath = "/dev/null"\nbaud = [{a = 1}]\n', "expected a string, number", 3),
    ('[device.x]\npath = "/dev/null"\nbaud = "fast"\n', "Invalid --baud value", 3),
    (
        '[device.x]\npath = "/dev/null"\n\n[device.y]\nrequired = true\npath = "/no/such/dev"\n',
        "no such device",
        6,
    ),
    ('[group.g]\nroute = ["a:0"]\n[[group.g.port]]\npath = "/dev/null"\n', "unknown port 'a'", 2),
    ('[device.x]\nusb = "zz"\n', "vendor:product in hex", 2),
    ("[devices.x]\n", "unknown key 'devices'", 1),
    ("[defaults.nosuch]\nx = 1\n", "unknown driver 'nosuch'", 1),
    ('[device.x]\npath = "/dev/null"\nraw = { port = 7000, recv-from = "everyone" }\n', "recv-from", 3),
    ('[hub]\nhttp = "localhost:99999"\n[device.x]\npath = "/dev/null"\n', "Invalid --http port", 2),
    ('[hub]\nhttp-allow = "10.0.0.0/8"\n[device.x]\npath = "/dev/null"\n', "needs --http", 2),
    ('[group.g]\nrequired = ["nosuch"]\n[[group.g.port]]\npath = "/dev/null"\n', "unknown port", 2),
]


@pytest.mark.parametrize(("text", "expect", "line"), BAD)
def test_every_error_names_file_key_and_line(text: str, expect: str, line: int | None) -> None:
    with pytest.raises(UsageError) as e:
        table_of_config(text, "bad.toml")
    msg = str(e.value)
    assert expect in msg
    assert "bad.toml" in msg
    if line is not None:
        assert f"line {line}" in msg
    assert "\n" not in msg


def test_ser2net_debian_example_imports_and_loads() -> None:
    path = "/etc/ser2net.yaml"
    if not os.path.exists(path):
        pytest.skip("ser2net's example config is not installed (apt-get install ser2net)")
    text = ser2net_to_toml(Path(path).read_text(), path)
    cfg = parse_config(text, "imported.toml", REG)
    table = model_table(cfg.merged())
    assert "/dev/ttyS0  --baud=9600 --if-absent=wait --octs=off --share-mode=on" in table
    assert "localhost:2000  --kick-oldest --max-clients=1" in table
    assert "option banner" in text  # left out, and said so


SER2NET_FORMS = """
connection: &rfc
    accepter: telnet(rfc2217),tcp,3001
    connector: serialdev,/dev/ttyUSB0,115200e71,local,rtscts
    options:
      max-connections: 3

connection: &plain
  accepter: telnet,2001
  connector: serialdev, /dev/ttyS2, 9600n82
  enable: on

connection: &off
  accepter: tcp,2002
  enable: off
  connector: serialdev,/dev/ttyS3,9600n81

connection: &v6
  accepter: tcp,ipv6,::1,2003
  connector: serialdev,/dev/ttyS4,38400o81,local
"""


def test_ser2net_man_page_forms() -> None:
    text = ser2net_to_toml(SER2NET_FORMS, "forms.yaml")
    assert "# off: enable: off, left out" in text
    table = model_table(parse_config(text, "forms.toml", REG).merged())
    assert "/dev/ttyUSB0  --baud=115200 --data=7 --if-absent=wait --parity=e --share-mode=on" in table
    assert "3001  --max-clients=3" in table and "telnet --comport=server" in table
    assert "/dev/ttyS2  --baud=9600 --if-absent=wait --octs=off --share-mode=on --stop=2" in table
    assert "::1:2003" in table and "2002" not in table


def test_ser2net_unsupported_connector_names_the_line() -> None:
    with pytest.raises(UsageError) as e:
        ser2net_to_toml("connection: &a\n  accepter: tcp,2000\n  connector: tcp,host,23\n", "x.yaml")
    assert "line 3" in str(e.value) and "connector" in str(e.value)


def _fake_usb(sysfs: Path, tty: str, vendor: str, product: str, serial: str, interface: int) -> None:
    usbdev = sysfs / "devices" / "pci0" / "usb1" / f"1-{tty[-1]}"
    intf = usbdev / f"1-{tty[-1]}:1.{interface}"
    (intf / tty).mkdir(parents=True, exist_ok=True)
    (usbdev / "idVendor").write_text(vendor + "\n")
    (usbdev / "idProduct").write_text(product + "\n")
    (usbdev / "serial").write_text(serial + "\n")
    (intf / "bInterfaceNumber").write_text(f"{interface:02x}\n")
    cls = sysfs / "class" / "tty" / tty
    cls.mkdir(parents=True, exist_ok=True)
    (cls / "device").symlink_to(os.path.relpath(intf / tty, cls))


def test_usb_identity_found_in_a_fake_sysfs(tmp_path: Path) -> None:
    _fake_usb(tmp_path, "ttyUSB0", "0403", "6001", "A1", 0)
    _fake_usb(tmp_path, "ttyUSB1", "0403", "6001", "B2", 1)
    (tmp_path / "class" / "tty" / "console").mkdir()  # no device link: ignored
    find = lambda text: UsbIdentity.parse(text).find(str(tmp_path), "/dev")  # noqa: E731
    assert find("usb:0403:6001") == ["/dev/ttyUSB0", "/dev/ttyUSB1"]
    assert find("usb:0403:6001,serial=B2") == ["/dev/ttyUSB1"]
    assert find("usb:0403:6001,interface=0") == ["/dev/ttyUSB0"]
    assert find("usb:0403:6010") == []
    shutil.rmtree(tmp_path / "class" / "tty" / "ttyUSB0")
    assert find("usb:0403:6001,serial=A1") == []
    with pytest.raises(ValueError):
        UsbIdentity.parse("usb:0403:6001,colour=red")


def test_network_options_in_a_config_are_those_of_the_command_line(tmp_path: Path) -> None:
    """Issue 14's options (udp ports, keepalive, buffers, passwords, on-demand listeners,
    link takeover) are plain keys, spelt as on the command line without --."""
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    pw.chmod(0o600)
    text = f"""
[group.boat]
route = ["gps:plotter,console,app"]
[[group.boat.port]]
name = "gps"
driver = "sim"
path = "gps"
[[group.boat.port]]
name = "plotter"
driver = "udp"
path = "239.192.0.1:10110"
frame = "line"
datagram-size = 1000
[[group.boat.port]]
name = "console"
driver = "tcp"
path = "*7000"
interface = "127.0.0.1"
listen = "on-demand"
buffer = 4096
password-file = "{pw}"
keepalive = 30
keepalive-interval = 5
keepalive-count = 4
idle-timeout = 600
[[group.boat.port]]
name = "app"
driver = "pty"
path = "{tmp_path / "gps0"}"
replace-link = true
"""
    argv = [
        "--route=0:1,2,3",
        "--use-driver=sim",
        "gps",
        "--use-driver=udp",
        "--frame=line",
        "--datagram-size=1000",
        "239.192.0.1:10110",
        "--frame=bytes",  # sticky: the config's ports have their own options only
        "--use-driver=tcp",
        "--interface=127.0.0.1",
        "--listen=on-demand",
        "--buffer=4096",
        f"--password-file={pw}",
        "--keepalive=30",
        "--keepalive-interval=5",
        "--keepalive-count=4",
        "--idle-timeout=600",
        "*7000",
        "--use-driver=pty",
        "--buffer=0",
        "--replace-link",
        str(tmp_path / "gps0"),
    ]
    table = table_of_config(text)
    assert table == table_of_args(*argv)
    assert "secret" not in table and str(pw) in table


def test_a_device_served_as_udp() -> None:
    text = """
[device.gps]
sim = "gps"
udp = [{ address = "239.192.0.1:10110", frame = "line", ttl = 2 }, "127.0.0.1:2947"]
"""
    table = table_of_config(text)
    assert table == table_of_args(
        "--bi-route=0:1,2",
        "--use-driver=sim",
        "gps",
        "--use-driver=udp",
        "--frame=line",
        "--ttl=2",
        "239.192.0.1:10110",
        "--frame=bytes",
        "--ttl=1",
        "127.0.0.1:2947",
    )
    with pytest.raises(UsageError, match="expected the address of this udp service"):
        table_of_config('[device.gps]\nsim = "gps"\nudp = { frame = "line" }\n')
