import io

import pytest

from hub.args import expand, parse_port_list, split_filter_args, split_quoted, unquote
from hub.errors import UsageError


def texts(args):
    return [a.text for a in args]


def test_plain_args_pass_through():
    assert texts(expand(["--route=0:1", "COM1"])) == ["--route=0:1", "COM1"]


def test_load_file_with_markers_params_and_comments(tmp_path):
    f = tmp_path / "cfg.txt"
    f.write_text(
        "ignored before begin\n"
        "_BEGIN_\n"
        "  --route=%%1%%:%%2%%  \n"
        "\n"
        "# a comment\n"
        "%%3%%--echo-route=0\n"
        "--baud=%%4%%\n"
        "%%abc%% stays\n"
        "name=%%0%%\n"
        "_END_\n"
        "--never\n"
    )
    out = expand([f"--load={f},_BEGIN_,_END_:0,1,#,"])
    assert texts(out) == ["--route=0:1", "--baud=", "%%abc%% stays", f"name={f}"]
    assert out[0].source.file == str(f)
    assert out[0].source.line == 3


@pytest.mark.parametrize("line", ["%%2%%", "*%%2%%", "--route=%%1%%:%%2%%"])
def test_a_parameter_not_given_is_an_error_naming_file_line_and_reference(tmp_path, line):
    # hub4com substitutes "" and so drops or changes the line; we refuse it.
    f = tmp_path / "cfg.txt"
    f.write_text(f"# %%7%% in a comment is fine\n--route=%%1%%:All\n{line}\n")
    with pytest.raises(UsageError) as e:
        expand([f"--load={f}:0"])
    text = str(e.value)
    assert "Parameter %%2%% is not given (1 parameter after ':')" in text
    assert f"file {f}, line 3" in text
    assert "\n" not in text


def test_a_parameter_given_empty_substitutes_nothing(tmp_path):
    f = tmp_path / "cfg.txt"
    f.write_text("%%1%%\nx%%2%%\n")
    assert texts(expand([f"--load={f}:,y"])) == ["xy"]


def test_lines_outside_the_section_may_name_any_parameter(tmp_path):
    f = tmp_path / "cfg.txt"
    f.write_text("run with %%5%%\n_BEGIN_\n%%1%%\n_END_\nafter %%6%%\n")
    assert texts(expand([f"--load={f},_BEGIN_,_END_:a"])) == ["a"]


def test_load_from_stdin_until_end_marker():
    stdin = io.StringIO("--use-driver=tcp\n*5555\n_END_\n*6666\n")
    assert texts(expand(["--load=,,_END_"], stdin=stdin)) == ["--use-driver=tcp", "*5555"]


def test_load_nests(tmp_path):
    inner = tmp_path / "inner.txt"
    inner.write_text("--route=0:1\n")
    outer = tmp_path / "outer.txt"
    outer.write_text(f"--load={inner}\nCOM1\n")
    assert texts(expand([f"--load={outer}"])) == ["--route=0:1", "COM1"]


def test_load_recursion_limit(tmp_path):
    f = tmp_path / "self.txt"
    f.write_text(f"--load={f}\n")
    with pytest.raises(UsageError, match="Too many recursive options --load="):
        expand([f"--load={f}"])


def test_missing_load_file_names_the_file():
    with pytest.raises(UsageError) as e:
        expand(["--load=/nonexistent/x.txt"])
    assert "Can't open file /nonexistent/x.txt" in str(e.value)
    assert "--load=/nonexistent/x.txt" in str(e.value)


def test_quoted_load_path_with_colon_and_comma(tmp_path):
    f = tmp_path / "a:b,c.txt"
    f.write_text("X\n")
    assert texts(expand([f'--load="{f}"'])) == ["X"]


def test_split_quoted_and_unquote():
    assert split_quoted('"a:b":c', ":", 1) == ['"a:b"', "c"]
    assert unquote('"a\\"b"') == 'a"b'


def test_split_filter_args():
    assert split_filter_args(' --a=1   --b="x y" --c=\\"q\\"') == ["--a=1", "--b=x y", '--c="q"']


def test_port_lists():
    assert parse_port_list("All", 3) == [0, 1, 2]
    assert parse_port_list("+1,0", 3) == [1, 0]
    with pytest.raises(UsageError, match="There is no port 3: the command line gives ports 0 to 2"):
        parse_port_list("3", 3)
    with pytest.raises(UsageError, match="Invalid port 'x'"):
        parse_port_list("x", 3)
