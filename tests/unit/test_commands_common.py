"""hub.commands._common: what the wrapper commands share."""

from __future__ import annotations

import pytest
from docopt import DocoptExit
from hypothesis import given
from hypothesis import strategies as st

from hub.args import split_filter_args
from hub.commands._common import (
    CommandError,
    HubCommand,
    client_address,
    docopt_reason,
    filter_value,
    format_command,
    listen_address,
    long_options,
    option_order,
    run_command,
    serial_value,
    yes_no,
)

USAGE = """Usage:
  prog [options] <a>

Options:
  --baud=<b>      Baud.
  --base=<x>      Another.
  --telnet        A flag.
  -h, --help      Help.
"""


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--baud", "9600", "9600"),
        ("--baud", "d", "c"),
        ("--baud", "default", "c"),
        ("--data", "D", "c"),
        ("--data", "7", "7"),
        ("--parity", "e", "e"),
        ("--parity", "space", "space"),
        ("--stop", "1.5", "1.5"),
        ("--stop", "1,5", "1,5"),
    ],
)
def test_serial_values(option: str, value: str, expected: str) -> None:
    assert serial_value(option, value) == expected


@pytest.mark.parametrize(
    ("option", "value"),
    [("--baud", "0"), ("--baud", "x"), ("--data", "4"), ("--parity", "q"), ("--parity", ""), ("--stop", "3")],
)
def test_bad_serial_values(option: str, value: str) -> None:
    with pytest.raises(CommandError, match=f"^invalid {option} value"):
        serial_value(option, value)


def test_yes_no() -> None:
    assert yes_no("--x", "Yes") is True and yes_no("--x", "n") is False
    with pytest.raises(CommandError, match="expected yes or no"):
        yes_no("--x", "")


def test_addresses() -> None:
    assert client_address("host", "telnet") == "host:telnet"
    assert client_address("::1", "7000") == "[::1]:7000"
    assert client_address("[::1]", "7000") == "[::1]:7000"
    assert listen_address("65535") == "65535"
    for bad in ("0", "65536", "-1", "7 0", ""):
        with pytest.raises(CommandError):
            listen_address(bad)
    with pytest.raises(CommandError, match="invalid host"):
        client_address("a b", "1")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\\"), max_size=30))
def test_filter_values_reach_the_filter_unchanged(value: str) -> None:
    assert split_filter_args(filter_value("--awak-seq", value)) == [f"--awak-seq={value}"]


def test_long_options_and_their_order() -> None:
    assert long_options(USAGE) == ["--baud", "--base", "--telnet", "--help"]
    assert option_order(["--tel", "x", "--base=1", "--baud", "2", "--telnet"], USAGE) == [
        "--telnet",
        "--base",
        "--baud",
    ]


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        ([], "missing arguments"),
        (["a", "b"], "wrong number of arguments"),
        (["--bogus", "a"], "unknown option --bogus"),
        (["-x", "a"], "unknown option -x"),
        (["--baud=1", "--baud", "2", "a"], "option --baud given twice"),
        (["a", "--baud"], "--baud requires argument"),
        (["--ba=1", "a"], "ambiguous option --ba (--baud, --base)"),
    ],
)
def test_docopt_reasons(argv: list[str], reason: str) -> None:
    from docopt import docopt

    with pytest.raises(DocoptExit) as exc:
        docopt(USAGE, argv, default_help=False)
    assert docopt_reason(exc.value, argv, USAGE) == reason


def test_format_command_quotes_for_the_shell() -> None:
    assert format_command(["--create-filter=pinmap:--rts=cts --dtr=dsr", "*7000"]) == (
        "hub4com '--create-filter=pinmap:--rts=cts --dtr=dsr' '*7000'"
    )


def test_run_command(capsys: pytest.CaptureFixture[str]) -> None:
    def build(argv: list[str]) -> HubCommand | None:
        if argv == ["help"]:
            return None
        if argv == ["bad"]:
            raise CommandError("bad value")
        return HubCommand(["--use-driver=connector", "a b"], print_args=True)

    assert run_command("prog", USAGE, build, ["help"]) == 0
    assert capsys.readouterr().out == USAGE.rstrip() + "\n"
    assert run_command("prog", USAGE, build, ["bad"]) == 2
    assert capsys.readouterr().err == "prog: bad value (see prog --help)\n"
    assert run_command("prog", USAGE, build, []) == 0
    assert capsys.readouterr().out == "hub4com --use-driver=connector 'a b'\n"
