"""Start-up errors, help and routes summary of the real command."""

import pytest

from .conftest import run_hub


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--bogus=1", "x"], "Unknown option in '--bogus=1'"),
        (["--route=0:7", "--use-driver=connector", "a", "b"], "Invalid port '7'"),
        (["--route=x:1", "--use-driver=connector", "a", "b"], "Invalid port 'x'"),
        (["--use-driver=nosuch", "a"], "No driver nosuch"),
        (["--create-filter=nosuch", "--use-driver=connector", "a"], "No filter module named 'nosuch'"),
        (["--load=/nonexistent/args.txt"], "Can't open file /nonexistent/args.txt"),
        (["--use-driver=tcp", "localhost:notaport"], "in 'localhost:notaport'"),
        (["--use-driver=tcp", "*70000"], "in '*70000'"),
        (["--use-driver=tcp", "--interface=", "/1234/x"], "in '/1234/x'"),
        (["--baud=fast", "/dev/null"], "in '--baud=fast'"),
        (["/nonexistent/ttyUSB9"], "/nonexistent/ttyUSB9"),
        ([], "Usage:"),
    ],
)
def test_startup_error_is_one_line_and_nonzero(args, expect):
    r = run_hub(*args)
    assert r.returncode != 0
    out = r.stderr.strip() if args else r.stdout
    assert expect in out
    assert "Traceback" not in r.stderr + r.stdout
    if args:
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_error_in_load_file_names_file_and_line(tmp_path):
    f = tmp_path / "args.txt"
    f.write_text("# comment\n--use-driver=connector\na\n--route=0:5\n")
    r = run_hub(f"--load={f}")
    assert r.returncode == 1
    assert f"--route=0:5' (file {f}, line 4" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_load_parameter_not_given_names_file_line_and_reference(tmp_path):
    # hub4com would drop the line silently; the hub stops with one line.
    f = tmp_path / "server.txt"
    f.write_text("--use-driver=connector\n%%1%%\n--use-driver=tcp\n*%%2%%\n")
    r = run_hub(f"--load={f}:a")
    assert r.returncode == 1
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
    assert r.returncode == 1 and "The module nosuch not found." in r.stdout


def test_help_star_prints_all_modules():
    r = run_hub("--help=*")
    assert r.returncode == 0
    assert r.stdout.count("Usage:") >= 6
