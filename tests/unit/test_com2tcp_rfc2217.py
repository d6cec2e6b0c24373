"""com2tcp-rfc2217: the usage text, and the hub4com command lines it generates (spec 5.2)."""

from __future__ import annotations

import shlex

import pytest

from hub.commands import com2tcp_rfc2217 as cmd

SERVER_CHAIN = [
    "--create-filter=escparse,com,parse",
    "--create-filter=purge,com,purge",
    "--create-filter=pinmap,com,pinmap:--rts=cts --dtr=dsr --break=break",
    "--create-filter=linectl,com,lc:--br=remote --lc=remote --flow=remote",
    "--add-filters=0:com",
    "--create-filter=telnet,tcp,telnet:--comport=server --suppress-echo=yes",
    "--create-filter=lsrmap,tcp,lsrmap",
    "--create-filter=pinmap,tcp,pinmap:--cts=cts --dsr=dsr --dcd=dcd --ring=ring",
    "--create-filter=linectl,tcp,lc:--br=local --lc=local --flow=local",
    "--add-filters=1:tcp",
]

CLIENT_CHAIN = [
    "--create-filter=escparse,com,parse",
    "--create-filter=pinmap,com,pinmap:--rts=cts --dtr=dsr",
    "--create-filter=linectl,com,lc:--br=local --lc=local",
    "--add-filters=0:com",
    "--create-filter=telnet,tcp,telnet:--comport=client",
    "--create-filter=pinmap,tcp,pinmap:--rts=cts --dtr=dsr --break=break",
    "--create-filter=linectl,tcp,lc:--br=remote --lc=remote",
    "--add-filters=1:tcp",
]


def args(*argv: str) -> list[str]:
    settings = cmd.parse(list(argv))
    assert settings is not None
    return cmd.hub_args(settings)


def test_server_mode_is_the_default_with_a_listen_port() -> None:
    assert args("/dev/ttyUSB0", "7000") == [
        *SERVER_CHAIN,
        "--octs=off",
        "/dev/ttyUSB0",
        "--use-driver=tcp",
        "*7000",
    ]


def test_client_mode_is_the_default_with_host_and_port() -> None:
    assert args("/dev/ttyS0", "host", "7000") == [
        *CLIENT_CHAIN,
        "--octs=off",
        "/dev/ttyS0",
        "--use-driver=tcp",
        "*host:7000",
    ]


def test_mode_can_be_forced_either_way() -> None:
    assert args("--rfc2217-mode", "c", "/dev/ttyS0", "7000")[:-4] == CLIENT_CHAIN
    assert args("--rfc2217-mode=server", "/dev/ttyS0", "h", "7000")[:-4] == SERVER_CHAIN
    assert args("--rfc2217-mode=S", "/dev/ttyS0", "h", "7000")[-1] == "*h:7000"


def test_every_option_in_the_bat_order() -> None:
    # Values given as the next argument (the .bat's way) or after '='.
    got = args(
        "--reconnect",
        "500",
        "--trace",
        "--interface=127.0.0.1",
        "--share-com-port",
        "--connect",
        "!dsr",
        "--delay-disconnect",
        "100",
        "--keep-active",
        "30",
        "/dev/ttyS0",
        "7000",
    )
    assert got == [
        # driver options in the order given
        "--reconnect=500",
        "--interface=127.0.0.1",
        "--share-mode=on",
        "--create-filter=trace,com,COM",
        "--create-filter=escparse,com,parse",
        "--create-filter=trace,com,ExM",
        "--create-filter=purge,com,purge",
        "--create-filter=pin2con,com,connect: --connect=!dsr --delay-disconnect=100",
        "--create-filter=pinmap,com,pinmap:--rts=cts --dtr=dsr --break=break",
        "--create-filter=linectl,com,lc:--br=remote --lc=remote --flow=remote",
        "--create-filter=trace,com,CxT",
        "--add-filters=0:com",
        "--create-filter=trace,tcp,TCP",
        "--create-filter=telnet,tcp,telnet:--comport=server --suppress-echo=yes --keep-active=30",
        "--create-filter=trace,tcp,TxM",
        "--create-filter=lsrmap,tcp,lsrmap",
        "--create-filter=pinmap,tcp,pinmap:--cts=cts --dsr=dsr --dcd=dcd --ring=ring",
        "--create-filter=linectl,tcp,lc:--br=local --lc=local --flow=local",
        "--add-filters=1:tcp",
        "--octs=off",
        "/dev/ttyS0",
        "--use-driver=tcp",
        "7000",  # --connect: not permanent
    ]


def test_pty_client_chain() -> None:
    # The pty replaces the com0com port; it has no modem lines to drive and no
    # break to report, so the pinmap on it and the break wire are left out.
    assert args("--pty", "/tmp/vcom0", "server.example", "7000") == [
        "--create-filter=escparse,com,parse",
        "--create-filter=linectl,com,lc:--br=local --lc=local",
        "--add-filters=0:com",
        "--create-filter=telnet,tcp,telnet:--comport=client",
        "--create-filter=pinmap,tcp,pinmap:--rts=cts --dtr=dsr",
        "--create-filter=linectl,tcp,lc:--br=remote --lc=remote",
        "--add-filters=1:tcp",
        "--use-driver=pty",
        "/tmp/vcom0",
        "--use-driver=tcp",
        "*server.example:7000",
    ]


def test_print_args_prints_one_shell_quoted_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main(["--print-args", "--pty=/tmp/my port", "h", "7000"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    words = shlex.split(out)
    assert words[0] == "hub4com"
    assert words[1:] == args("--pty=/tmp/my port", "h", "7000")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Serve a serial port over RFC 2217")
    assert "--rfc2217-mode=<m>" in out


@pytest.mark.parametrize(
    "argv,text",
    [
        ([], "missing arguments"),
        (["/dev/ttyS0"], "wrong number of arguments"),
        (["a", "b", "c", "d"], "wrong number of arguments"),
        (["--bogus", "a", "7000"], "unknown option --bogus"),
        (["-x", "a", "7000"], "unknown option -x"),
        (["--share-mode=on", "a", "7000"], "unknown option --share-mode"),  # hub4com's, not ours
        (["--pty=/tmp/v", "7000"], "wrong number of arguments"),
        (["a", "7000", "--interface"], "--interface requires argument"),
        (["--rfc2217-mode=x", "a", "7000"], "invalid --rfc2217-mode value 'x'"),
        (["--pty", "/tmp/v", "--rfc2217-mode=s", "h", "7000"], "--pty works in client mode only"),
        (["--share-com-port", "--pty", "/tmp/v", "h", "7000"], "--share-com-port applies to a serial port"),
        (["--delay-disconnect=5", "a", "7000"], "--delay-disconnect only works together with --connect"),
        (["a", "70000"], "listen port 70000 is out of range"),
        (["a", "h", "70000"], "port 70000 is out of range"),
        (["a", "seventy"], "'seventy' is not a listen port"),  # the user's word, not '*seventy'
        (["--baud", "fast", "a", "7000"], "invalid --baud value 'fast'"),
        (["--baud", "9600", "--pty", "/tmp/v", "h", "7000"], "--baud applies to a serial port, not to --pty"),
        (["--allow", "10.0.0.0/8", "a", "h", "7000"], "--allow works in server mode only"),
        (["--max-clients", "2", "a", "h", "7000"], "--max-clients works in server mode only"),
    ],
)
def test_bad_command_lines_give_one_line_and_status_2(
    argv: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cmd.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"com2tcp-rfc2217: {text}")
    assert captured.err.rstrip().endswith("(see com2tcp-rfc2217 --help)")


def test_server_settings_and_security_options_pass_on_in_order() -> None:
    """The device's initial settings and the tcp driver's TLS and access options, which
    --print-args users used to add by hand, go before the ports (sticky options)."""
    argv = ["--tls-cert=s.pem", "--baud", "d", "--baud=115200", "--parity", "even", "--allow", "127.0.0.1"]
    with pytest.raises(SystemExit):  # docopt: an option given twice is not ours to guess
        cmd.parse([*argv, "/dev/ttyS0", "7000"])
    argv = ["--tls-cert=s.pem", "--baud", "115200", "--parity", "even", "--allow", "127.0.0.1"]
    got = cmd.hub_args(cmd.parse([*argv, "--max-rate=5", "/dev/ttyS0", "7000"]))  # type: ignore[arg-type]
    want = ["--tls-cert=s.pem", "--baud=115200", "--parity=even", "--allow=127.0.0.1", "--max-rate=5"]
    assert got[:5] == want
    assert got[-4:] == ["--octs=off", "/dev/ttyS0", "--use-driver=tcp", "*7000"]
    got = cmd.hub_args(cmd.parse(["--baud=d", "--tls-ca=ca.pem", "/dev/ttyS0", "h", "7000"]))  # type: ignore[arg-type]
    assert got[:2] == ["--baud=c", "--tls-ca=ca.pem"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("com2tcp-rfc2217 (hub4com-py) ")


def test_runs_the_hub_with_the_generated_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_main(argv: list[str], prog: str) -> int:
        seen.append([prog, *argv])
        return 7

    monkeypatch.setattr("hub.main.main", fake_main)
    assert cmd.main(["/dev/ttyS0", "7000"]) == 7
    assert seen == [["com2tcp-rfc2217", *args("/dev/ttyS0", "7000")]]  # errors name the wrapper
