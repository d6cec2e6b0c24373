"""multiplexer: the hub4com command lines it generates (spec 5.4), usage errors, main()."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from hub.cli import build
from hub.commands import multiplexer as cmd
from hub.commands._common import CommandError

SERVER_FILTERS = [
    "--create-filter=escparse,serialS,parse",
    "--create-filter=purge,serialS,purge",
    "--create-filter=pinmap,serialS,pinmap:--rts=cts --dtr=dsr --break=break",
    "--create-filter=linectl,serialS,lc:--br=remote --lc=remote",
    "--create-filter=telnet,telnetS,telnet:--comport=server --suppress-echo=yes",
    "--create-filter=lsrmap,telnetS,lsrmap",
    "--create-filter=pinmap,telnetS,pinmap:--cts=cts --dsr=dsr --dcd=dcd --ring=ring",
    "--create-filter=linectl,telnetS,lc:--br=local --lc=local",
]
# multiplexer.bat's client groups, less what a pty cannot do (no output pins, no break).
CLIENT_FILTERS = [
    "--create-filter=escparse,serialC,parse",
    "--create-filter=linectl,serialC,lc:--br=local --lc=local",
    "--create-filter=telnet,telnetC,telnet:--comport=client",
    "--create-filter=pinmap,telnetC,pinmap:--rts=cts --dtr=dsr",
    "--create-filter=linectl,telnetC,lc:--br=remote --lc=remote",
]


@pytest.fixture
def device() -> Iterator[str]:
    """The path of a pty slave: a serial device the hub can look at (nothing is opened)."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(slave)
    os.close(master)


def subport(name: str, path: str, mode: str, tag: int) -> list[str]:
    """multiplexer.bat's BEGIN_ADD_SUBPORT fragment, without traces, with Linux drivers."""
    a, b, s = 1 + 3 * tag, 2 + 3 * tag, 3 + 3 * tag
    driver = ["--use-driver=serial", "--octs=off"] if mode == "S" else ["--use-driver=pty"]
    return [
        "--use-driver=connector",
        f"{name}-muxA",
        f"--create-filter=tag,tag{tag}:--tag={tag}",
        f"--add-filters={a}:tag{tag}",
        f"--bi-route=0:{a}",
        f"--no-default-fc-route={a}:0",
        f"{name}-muxB",
        f"--bi-connect={name}-muxA:{name}-muxB",
        f"--add-filters={b}:telnet{mode}",
        *driver,
        "--write-limit=65536",
        path,
        f"--bi-route={b}:{s}",
        f"--add-filters={s}:serial{mode}",
    ]


def args(*argv: str) -> list[str]:
    command = cmd.build(list(argv))
    assert command is not None
    return command.args


def hub_config(hub_args: list[str]):  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    try:
        return build(hub_args, loop)
    finally:
        loop.close()


def test_the_spec_server_example() -> None:
    # multiplexer --baud 115200 COM1 --mode server CNCB1 CNCB2 CNCB3 (spec 5.4), Linux names
    got = args("--baud", "115200", "ttyS0", "--mode", "server", "ttyUSB1", "ttyUSB2", "ttyUSB3")
    assert got == [
        *SERVER_FILTERS,
        "--write-limit=196608",
        "--baud=115200",
        "ttyS0",
        *subport("ttyUSB1", "ttyUSB1", "S", 0),
        *subport("ttyUSB2", "ttyUSB2", "S", 1),
        *subport("ttyUSB3", "ttyUSB3", "S", 2),
    ]


def test_the_spec_client_example(tmp_path, device: str) -> None:
    links = [str(tmp_path / f"vcom{i}") for i in range(3)]
    got = args("--baud", "115200", device, *links)
    assert got == [
        *CLIENT_FILTERS,
        "--write-limit=196608",
        "--baud=115200",
        device,
        *subport("vcom0", links[0], "C", 0),
        *subport("vcom1", links[1], "C", 1),
        *subport("vcom2", links[2], "C", 2),
    ]
    config = hub_config(got)
    assert config.warnings == []
    routes = config.hub.routes
    assert routes.data[0] == (1, 4, 7)  # the link goes to every muxA ...
    assert all(routes.data[a] == (0,) for a in (1, 4, 7))  # ... and each muxA to the link
    assert routes.fc[0] == (1, 4, 7)  # a full link queue pauses the sub-ports
    assert all(routes.fc[a] == () for a in (1, 4, 7))  # a slow sub-port never pauses the link
    assert [(routes.data[b], routes.data[b + 1]) for b in (2, 5, 8)] == [
        ((3,), (2,)),
        ((6,), (5,)),
        ((9,), (8,)),
    ]
    names = [p.name for p in config.hub.ports]
    assert names[:4] == [f"{device[5:]}(0)", "vcom0-muxA(1)", "vcom0-muxB(2)", "vcom0(3)"]
    assert [p.write_limit for p in config.hub.ports[:4:3]] == [3 * 65536, 65536]


def test_tcp_link_both_ends(tmp_path) -> None:
    server = args("--link-type", "tcp", "--interface", "127.0.0.1", "7000", "--mode", "s", "/dev/ttyUSB0")
    assert server == [
        *SERVER_FILTERS,
        "--write-limit=65536",
        "--interface=127.0.0.1",
        "--use-driver=tcp",
        "*7000",
        "--use-driver=serial",
        *subport("ttyUSB0", "/dev/ttyUSB0", "S", 0),
    ]
    link = str(tmp_path / "vcom")
    client = args("--link-type=TCP", "server.example:7000", link)
    assert client[len(CLIENT_FILTERS) :] == [
        "--write-limit=65536",
        "--use-driver=tcp",
        "*server.example:7000",
        "--use-driver=serial",
        *subport("vcom", link, "C", 0),
    ]
    assert hub_config(client).warnings == []


def test_modes_and_serial_options_apply_in_place(tmp_path) -> None:
    link = str(tmp_path / "v")
    got = args(
        "/dev/ttyS0",
        link,
        "--Mode",  # option names and values in any case, as in the .bat
        "S",
        "--stop",
        "2",
        "/dev/ttyUSB0",
        "--mode=c",
        "--parity",
        "d",
        link + "2",
    )
    # client groups first, then server groups, as the .bat's --load options stand
    assert got[: len(CLIENT_FILTERS) + len(SERVER_FILTERS)] == CLIENT_FILTERS + SERVER_FILTERS
    rest = got[len(CLIENT_FILTERS) + len(SERVER_FILTERS) :]
    assert rest == [
        "--write-limit=196608",
        "/dev/ttyS0",
        *subport("v", link, "C", 0),
        "--stop=2",
        *subport("ttyUSB0", "/dev/ttyUSB0", "S", 1),
        "--parity=c",
        *subport("v2", link + "2", "C", 2),
    ]


def test_trace_applies_to_what_follows(device: str) -> None:
    got = args("--trace", "ttyS0", "--mode", "s", "ttyUSB0")
    assert got[:2] == ["--create-filter=trace,linkport,COM", "--add-filters=0:linkport"]
    assert "--create-filter=trace,serialS,COM" in got
    assert "--create-filter=trace,tag0,muxA" in got and "--create-filter=trace,tag0,TxL" in got
    assert sum(a.startswith("--create-filter=trace,") for a in got) == 1 + 5 + 2  # link, groups, tag
    # trace after the link port: no link-port trace; the filter groups are traced
    # as their first sub-port is, each sub-port as it is
    got = args("ttyS0", "--mode", "s", "ttyUSB0", "--trace", "ttyUSB1")
    assert not any("linkport" in a for a in got)
    assert not any(a.startswith("--create-filter=trace,serialS") for a in got)
    assert "--create-filter=trace,tag0,muxA" not in got
    assert "--create-filter=trace,tag1,muxA" in got
    hub_config(args("--trace", device, "--mode", "s", device))  # the hub takes it


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        ([], "missing the link port and sub-ports"),
        (["ttyS0"], "missing sub-ports after the link port"),
        (["--secret", "phrase", "--link-type", "tcp", "5555", "a"], "--secret is not supported"),
        (["--secret=phrase", "ttyS0", "a"], "--secret is not supported"),
        (["--link-type", "udp", "l", "a"], "invalid --link-type value 'udp'"),
        (["l", "--link-type", "tcp", "a"], "--link-type must come before the link port"),
        (["--interface", "::1", "l", "a"], "--interface needs a tcp link"),
        (["--mode", "x", "l", "a"], "invalid --mode value 'x'"),
        (["--baud", "fast", "l", "a"], "invalid --baud value 'fast'"),
        (["l", "a", "--baud", "9600"], "--baud must come before a port it applies to"),
        (["l", "a", "--mode"], "--mode requires a value"),
        (["--bogus", "l", "a"], "unknown option --bogus"),
        (["-x", "l", "a"], "unknown option -x"),
        (["--trace=yes", "l", "a"], "unknown option --trace=yes"),
        (["l", "/a/x", "/b/x"], "sub-ports '/a/x' and '/b/x' end in the same name 'x'"),
        (["l", "/a/x:1"], "sub-port '/a/x:1': its name cannot contain"),
        (["l", *[f"s{i}" for i in range(256)]], "too many sub-ports (at most 255"),
        # the user's link port, not the '*host:seventy' made of it
        (["--link-type", "tcp", "host:seventy", "a"], "'seventy' is not a link port"),
        (["--link-type", "tcp", "70000", "a"], "link port 70000 is out of range (1 to 65535)"),
    ],
)
def test_usage_errors(argv: list[str], text: str) -> None:
    with pytest.raises(CommandError) as exc:
        cmd.build(argv)
    assert str(exc.value).startswith(text)


def test_255_subports_get_tags_0_to_254() -> None:
    got = args("l", *[f"s{i}" for i in range(255)])
    assert "--create-filter=tag,tag254:--tag=254" in got
    assert f"--write-limit={65536 * 255}" in got


def test_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main(["ttyS0"]) == 2
    assert (
        capsys.readouterr().err
        == "multiplexer: missing sub-ports after the link port (see multiplexer --help)\n"
    )
    assert cmd.main(["--print-args", "--link-type", "tcp", "7000", "--mode", "s", "ttyUSB0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "hub4com --create-filter=escparse,serialS,parse --create-filter=purge,serialS,purge "
    )
    assert " --write-limit=65536 --use-driver=tcp '*7000' --use-driver=serial --use-driver=connector " in out
    assert cmd.main(["l", "--HELP", "a"]) == 0  # option names in any case, as the .bat
    assert capsys.readouterr().out.startswith("Carry several serial ports over one serial or TCP link")
