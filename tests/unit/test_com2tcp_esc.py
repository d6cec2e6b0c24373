"""com2tcp-esc: the hub4com command lines it generates (spec 5.3), usage errors, main()."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from docopt import DocoptExit

from hub.cli import build
from hub.commands import com2tcp_esc as cmd
from hub.commands._common import CommandError

COM = [
    "--create-filter=escparse,com,parse",
    "--create-filter=pinmap,com,pinmap:--rts=cts --dtr=dsr --break=break",
    "--create-filter=linectl,com,lc",
    "--add-filters=0:com",
]
TCP_HEAD = [
    "--create-filter=escparse,tcp,parse:--request-esc-mode=no",
    "--create-filter=escinsert,tcp,insert",
    "--create-filter=pinmap,tcp,pinmap:--cts=cts --dsr=dsr --ring=ring --dcd=dcd --break=break",
]
LC_REMOTE = "--create-filter=linectl,tcp,lc"
LC_LOCAL = "--create-filter=linectl,tcp,lc:--br=local --lc=local"


@pytest.fixture
def device() -> Iterator[str]:
    """The path of a pty slave: a serial device the hub can look at (nothing is opened)."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(slave)
    os.close(master)


def args(*argv: str) -> list[str]:
    command = cmd.build(list(argv))
    assert command is not None
    return command.args


def hub_warnings(hub_args: list[str]) -> list[str]:
    """Interpret `hub_args` as hub4com does (no I/O); return the start-up warnings."""
    loop = asyncio.new_event_loop()
    try:
        return build(hub_args, loop).warnings
    finally:
        loop.close()


def test_client_mode_forwards_line_settings_by_default() -> None:
    assert args("/dev/ttyS0", "host", "7000") == [
        *COM,
        *TCP_HEAD,
        LC_REMOTE,
        "--add-filters=1:tcp",
        "--octs=off",
        "/dev/ttyS0",
        "--use-driver=tcp",
        "*host:7000",  # always permanent
    ]


def test_server_mode_sends_the_ports_own_settings_by_default() -> None:
    assert args("/dev/ttyS0", "7000") == [
        *COM,
        *TCP_HEAD,
        LC_LOCAL,
        "--add-filters=1:tcp",
        "--octs=off",
        "/dev/ttyS0",
        "--use-driver=tcp",
        "*7000",
    ]


@pytest.mark.parametrize(
    ("argv", "lc"),
    [
        (["--linectl", "yes", "/dev/ttyS0", "7000"], LC_REMOTE),
        (["--linectl=no", "/dev/ttyS0", "h", "7000"], LC_LOCAL),
        (["--linectl", "Y", "/dev/ttyS0", "7000"], LC_REMOTE),
    ],
)
def test_linectl_option(argv: list[str], lc: str) -> None:
    assert args(*argv)[len(COM) + len(TCP_HEAD)] == lc


def test_interface_comes_first() -> None:
    got = args("--interface", "127.0.0.1", "/dev/ttyS0", "7000")
    assert got[0] == "--interface=127.0.0.1"
    assert got[1:] == args("/dev/ttyS0", "7000")


def test_pty_has_no_pins_to_drive_and_reports_no_ring_or_break(tmp_path) -> None:
    link = str(tmp_path / "vcom")
    got = args("--pty", link, "127.0.0.1", "7000")
    assert got == [
        "--create-filter=escparse,com,parse",
        "--create-filter=linectl,com,lc",
        "--add-filters=0:com",
        "--create-filter=escparse,tcp,parse:--request-esc-mode=no",
        "--create-filter=escinsert,tcp,insert",
        "--create-filter=pinmap,tcp,pinmap:--cts=cts --dsr=dsr --dcd=dcd",
        LC_REMOTE,
        "--add-filters=1:tcp",
        "--use-driver=pty",
        link,
        "--use-driver=tcp",
        "*127.0.0.1:7000",
    ]
    assert hub_warnings(got) == []
    # A pty has no settings of its own: in server mode it forwards the application's
    # settings too, and --linectl=no forwards none.
    assert LC_REMOTE in args("--pty", link, "7000")
    no = args("--linectl", "no", "--pty", link, "7000")
    assert not any(a.startswith("--create-filter=linectl,tcp") for a in no)
    assert hub_warnings(no) == []


def test_serial_port_chain_is_accepted_by_the_hub(device: str) -> None:
    warnings = hub_warnings(args(device, "127.0.0.1", "7000"))
    # Linux serial drivers report no break state; everything else is provided.
    assert warnings == [f"{device[5:]}(0) does not provide break state needed by pinmap on TCP(1)"]


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (
            ["--linectl", "maybe", "/dev/ttyS0", "7000"],
            "invalid --linectl value 'maybe' (expected yes or no)",
        ),
        (["/dev/ttyS0", "x y"], "'x y' is not a listen port"),
        (["--pty=", "7000"], "--pty needs a link path"),
    ],
)
def test_bad_values(argv: list[str], text: str) -> None:
    with pytest.raises(CommandError) as exc:
        cmd.build(argv)
    assert str(exc.value).startswith(text)


@pytest.mark.parametrize("argv", [[], ["/dev/ttyS0"], ["--telnet", "/dev/ttyS0", "1"]])
def test_wrong_command_lines(argv: list[str]) -> None:
    with pytest.raises(DocoptExit):
        cmd.build(argv)


def test_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main(["--telnet", "/dev/ttyS0", "1"]) == 2
    assert capsys.readouterr().err == "com2tcp-esc: unknown option --telnet (see com2tcp-esc --help)\n"
    assert cmd.main(["--print-args", "--interface", "::1", "/dev/ttyS0", "7000"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hub4com --interface=::1 --create-filter=escparse,com,parse ")
    assert out.endswith(" --octs=off /dev/ttyS0 --use-driver=tcp '*7000'\n")
    assert cmd.main(["-h"]) == 0
    assert "--linectl=<yn>" in capsys.readouterr().out
