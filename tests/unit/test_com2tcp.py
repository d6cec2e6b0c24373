"""com2tcp: the hub4com command lines it generates (spec 5.1), usage errors, main()."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from docopt import DocoptExit

from hub.cli import build
from hub.commands import com2tcp as cmd
from hub.commands._common import CommandError

PIN2CON = ["--create-filter=pin2con", "--add-filters=0:pin2con"]


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


def hub_accepts(hub_args: list[str]) -> list[str]:
    """Interpret `hub_args` as hub4com does (no I/O); return the start-up warnings."""
    loop = asyncio.new_event_loop()
    try:
        return build(hub_args, loop).warnings
    finally:
        loop.close()


def test_the_spec_example() -> None:
    # com2tcp --telnet \\.\CNCB0 your.telnet.server telnet (spec 5.1), port name kept as given
    assert args("--telnet", r"\\.\CNCB0", "your.telnet.server", "telnet") == [
        "--create-filter=pin2con",
        "--add-filters=0:pin2con",
        "--create-filter=telnet",
        "--add-filters=1:telnet",
        r"\\.\CNCB0",
        "--use-driver=tcp",
        "--reconnect=1000",
        "your.telnet.server:telnet",
    ]


def test_raw_server_by_default() -> None:
    assert args("/dev/ttyS0", "7000") == [
        *PIN2CON,
        "/dev/ttyS0",
        "--use-driver=tcp",
        "--reconnect=1000",
        "7000",
    ]


def test_every_option_in_the_bat_order(device: str) -> None:
    got = args(
        "--baud",
        "9600",
        "--interface",
        "127.0.0.1",
        "--parity=e",
        "--connect-dtr",
        "--awak-seq",
        "WAKE",
        "--telnet",
        "--terminal",
        "vt100",
        "--data",
        "d",
        "--stop",
        "2",
        device,
        "host",
        "23",
    )
    assert got == [
        # --interface and the serial options in the order given; d[efault] becomes c
        "--baud=9600",
        "--interface=127.0.0.1",
        "--parity=e",
        "--data=c",
        "--stop=2",
        "--create-filter=pinmap:--dtr=connect",
        "--add-filters=0:pinmap",
        *PIN2CON,
        '--create-filter=awakseq:--awak-seq="WAKE"',
        "--add-filters=0:awakseq",
        '--create-filter=telnet:--terminal="vt100"',
        "--add-filters=1:telnet",
        device,
        "--use-driver=tcp",
        "--reconnect=d",  # --awak-seq
        "host:23",
    ]
    assert hub_accepts(got) == []


def test_ignore_dsr_drops_pin2con_and_makes_the_address_permanent() -> None:
    assert args("--ignore-dsr", "/dev/ttyS0", "host", "7000") == [
        "/dev/ttyS0",
        "--use-driver=tcp",
        "--reconnect=d",
        "*host:7000",
    ]
    assert args("--ignore-dsr", "/dev/ttyS0", "7000")[-1] == "*7000"


def test_terminal_only_counts_with_telnet() -> None:
    assert args("--terminal", "vt100", "/dev/ttyS0", "7000") == args("/dev/ttyS0", "7000")


def test_values_with_spaces_and_quotes_reach_the_filter_unchanged(device: str) -> None:
    got = args("--telnet", "--terminal", "vt 100", "--awak-seq", 'say "hi"', device, "7000")
    assert '--create-filter=telnet:--terminal="vt 100"' in got
    assert r'--create-filter=awakseq:--awak-seq="say \"hi\""' in got
    loop = asyncio.new_event_loop()
    try:
        hub = build(got, loop).hub
    finally:
        loop.close()
    filters = {s.filter.NAME: s.filter for slots in hub.slots for s in slots}
    assert filters["telnet"].cfg.terminal == "vt 100"
    assert filters["awakseq"].config == b'say "hi"'


def test_pty_instead_of_a_serial_port() -> None:
    got = args("--telnet", "--pty", "/tmp/vcom0", "bbs.example.org", "telnet")
    assert got == [
        *PIN2CON,
        "--create-filter=telnet",
        "--add-filters=1:telnet",
        "--use-driver=pty",
        "/tmp/vcom0",
        "--use-driver=tcp",
        "--reconnect=1000",
        "bbs.example.org:telnet",
    ]
    assert args("--pty=/tmp/vcom0", "7000")[-5:] == [
        "--use-driver=pty",
        "/tmp/vcom0",
        "--use-driver=tcp",
        "--reconnect=1000",
        "7000",
    ]


def test_pty_port_dsr_is_provided(tmp_path) -> None:
    # pin2con on a pty: DSR follows the application's open state, so no warning.
    assert hub_accepts(args("--pty", str(tmp_path / "v"), "127.0.0.1", "7000")) == []


def test_ipv6_host_gets_brackets() -> None:
    assert args("/dev/ttyS0", "::1", "7000")[-1] == "[::1]:7000"


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--pty", "/tmp/v", "--baud", "9600", "h", "1"], "--baud applies to a serial device, not to --pty"),
        (["--pty", "/tmp/v", "--connect-dtr", "1"], "--connect-dtr applies to a serial device, not to --pty"),
        (["--pty=", "h", "1"], "--pty needs a link path"),
        (["/dev/ttyS0", "0"], "listen port 0 is out of range"),
        (["/dev/ttyS0", "h", "70000"], "port 70000 is out of range"),
        (["/dev/ttyS0", "", "7"], "invalid host ''"),
        (["--baud", "fast", "/dev/ttyS0", "7"], "invalid --baud value 'fast'"),
        (["--data", "9", "/dev/ttyS0", "7"], "invalid --data value '9'"),
        (["--parity", "x", "/dev/ttyS0", "7"], "invalid --parity value 'x'"),
        (["--stop", "3", "/dev/ttyS0", "7"], "invalid --stop value '3'"),
    ],
)
def test_bad_values(argv: list[str], text: str) -> None:
    with pytest.raises(CommandError, match="^" + text.replace("[", r"\[")):
        cmd.build(argv)


@pytest.mark.parametrize("argv", [[], ["/dev/ttyS0"], ["/dev/ttyS0", "h", "1", "x"], ["--bogus", "a", "1"]])
def test_wrong_command_lines(argv: list[str]) -> None:
    with pytest.raises(DocoptExit):
        cmd.build(argv)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        ([], "com2tcp: missing arguments (see com2tcp --help)"),
        (["/dev/ttyS0"], "com2tcp: wrong number of arguments (see com2tcp --help)"),
        (["--bogus", "/dev/ttyS0", "1"], "com2tcp: unknown option --bogus (see com2tcp --help)"),
        (
            ["--baud", "1", "--baud", "2", "/dev/x", "1"],
            "com2tcp: option --baud given twice (see com2tcp --help)",
        ),
        (["/dev/ttyS0", "1", "--interface"], "com2tcp: --interface requires argument (see com2tcp --help)"),
        (
            ["--baud", "x", "/dev/x", "1"],
            "com2tcp: invalid --baud value 'x' (expected a positive number or d[efault])"
            " (see com2tcp --help)",
        ),
    ],
)
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> None:
    assert cmd.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == line + "\n"


def test_print_args(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main(["--print-args", "--telnet", "--terminal", "vt 100", "/dev/ttyS0", "7000"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "hub4com --create-filter=pin2con --add-filters=0:pin2con "
        "'--create-filter=telnet:--terminal=\"vt 100\"' --add-filters=1:telnet "
        "/dev/ttyS0 --use-driver=tcp --reconnect=1000 7000\n"
    )


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Connect a serial port to a TCP client or server")
    assert "--print-args" in out and "--pty=<link>" in out
