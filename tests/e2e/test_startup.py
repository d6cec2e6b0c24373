"""Start-up errors, help and routes summary of the real command."""

import pytest

from hub.errors import EXIT_USAGE

from .conftest import run_hub


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--bogus=1", "x"], "Unknown option in '--bogus=1'"),
        (["--route=0:7", "--use-driver=connector", "a", "b"], "There is no port 7: the command line gives"),
        (["--route=x:1", "--use-driver=connector", "a", "b"], "Invalid port 'x'"),
        (["--use-driver=nosuch", "a"], "No driver nosuch"),
        (["--create-filter=nosuch", "--use-driver=connector", "a"], "No filter module named 'nosuch'"),
        (["--load=/nonexistent/args.txt"], "Can't open file /nonexistent/args.txt"),
        (["--use-driver=tcp", "localhost:notaport"], "in 'localhost:notaport'"),
        (["--use-driver=tcp", "*70000"], "in '*70000'"),
        (["--use-driver=tcp", "--interface=", "/1234/x"], "in '/1234/x'"),
        (["--baud=fast", "/dev/null"], "in '--baud=fast'"),
        (["/nonexistent/ttyUSB9"], "/nonexistent/ttyUSB9"),
        ([], "no ports given; hub4com --help shows how"),
        (["--baud", "9600", "/dev/null"], "write --baud=9600 (no space before the value)"),
    ],
)
def test_startup_error_is_one_line_and_nonzero(args, expect):
    r = run_hub(*args)
    assert r.returncode == EXIT_USAGE
    assert expect in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stdout == ""


def test_error_in_load_file_names_file_and_line(tmp_path):
    f = tmp_path / "args.txt"
    f.write_text("# comment\n--use-driver=connector\na\n--route=0:5\n")
    r = run_hub(f"--load={f}")
    assert r.returncode == EXIT_USAGE
    text = "There is no port 5: the command line gives only port 0"
    assert f"{text} in '--route=0:5' (file {f}, line 4" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_load_parameter_not_given_names_file_line_and_reference(tmp_path):
    # hub4com would drop the line silently; the hub stops with one line.
    f = tmp_path / "server.txt"
    f.write_text("--use-driver=connector\n%%1%%\n--use-driver=tcp\n*%%2%%\n")
    r = run_hub(f"--load={f}:a")
    assert r.returncode == EXIT_USAGE
    assert r.stderr.strip() == (
        f"hub4com: Parameter %%2%% is not given (1 parameter after ':') in '*%%2%%' "
        f"(file {f}, line 4, loaded by '--load={f}:a')"
    )


def test_help_lists_every_module_and_module_help_is_its_usage():
    r = run_hub("--help")
    assert r.returncode == 0
    for name in ("serial", "tcp", "pty", "connector", "echo", "trace"):
        assert f"  {name} " in r.stdout
    r = run_hub("--help=tcp,trace")
    assert r.returncode == 0
    assert "--interface=" in r.stdout and "--trace-file=" in r.stdout
    r = run_hub("--help=nosuch")
    assert r.returncode == EXIT_USAGE and r.stdout == ""
    assert r.stderr == "hub4com: there is no driver or filter 'nosuch' (hub4com --help lists them)\n"
    for flag in ("-h", "--version"):
        r = run_hub(flag)
        assert r.returncode == 0 and r.stdout.startswith("hub4com ") and r.stderr == ""
    assert "Commands built on hub4com" in run_hub("-h").stdout and "gps-share" in run_hub("-h").stdout


def test_a_load_begin_line_that_is_not_there_is_named(tmp_path):
    f = tmp_path / "args.txt"
    f.write_text("--use-driver=connector\na\n")
    r = run_hub(f"--load={f},_BEGIN_,_END_")
    assert r.returncode == EXIT_USAGE
    text = f"The begin line '_BEGIN_' is not in file {f}"
    assert r.stderr.strip() == f"hub4com: {text} in '--load={f},_BEGIN_,_END_'"


def test_help_star_prints_all_modules():
    r = run_hub("--help=*")
    assert r.returncode == 0
    assert r.stdout.count("Usage:") >= 6
