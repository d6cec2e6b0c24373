"""linectl: local/remote baud rate and line control become settings; others are dropped."""

from __future__ import annotations

import docopt
import pytest

from filters.linectl import LineCtlFilter
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import (
    Flow,
    FlowMode,
    LineControl,
    LineData,
    LocalBaudStatus,
    LocalFlowStatus,
    LocalLcStatus,
    Parity,
    RemoteBaudStatus,
    RemoteFlowStatus,
    RemoteLcStatus,
    SetBaud,
    SetFlow,
    SetLineControl,
    StopBits,
)
from hub.options import option_names
from hub.testing import make_filter, run_out

LC = LineControl(7, Parity.EVEN, StopBits.TWO)
LBR, RBR = LocalBaudStatus(9600), RemoteBaudStatus(115200)
LLC, RLC = LocalLcStatus(LC), RemoteLcStatus(LineControl(8, None, None))
OTHER_BR, OTHER_LC = SetBaud(300), SetLineControl(LC)
ALL = [LBR, RBR, LLC, RLC, OTHER_BR, OTHER_LC]


def test_usage_parses() -> None:
    names = option_names(LineCtlFilter.USAGE)
    assert names == {"--br", "--lc", "--flow"}
    after = docopt.parse_docstring_sections(LineCtlFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert LineCtlFilter.has_out() and not LineCtlFilter.has_in()


# (argv, needs, sends, what ALL becomes)
CASES = [
    (
        [],
        In.RBR | In.RLC,
        Out.SET_BR | Out.SET_LC,
        [LBR, RBR, SetBaud(115200), LLC, RLC, SetLineControl(RLC.lc)],
    ),
    (
        ["--br=remote", "--lc=remote"],
        In.RBR | In.RLC,
        Out.SET_BR | Out.SET_LC,
        [LBR, RBR, SetBaud(115200), LLC, RLC, SetLineControl(RLC.lc)],
    ),
    (
        ["--br=local", "--lc=local"],
        In.LBR | In.LLC,
        Out.SET_BR | Out.SET_LC,
        [LBR, SetBaud(9600), RBR, LLC, SetLineControl(LC), RLC],
    ),
    # only the first letter counts, in either case
    (
        ["--br=L", "--lc=rem"],
        In.LBR | In.RLC,
        Out.SET_BR | Out.SET_LC,
        [LBR, SetBaud(9600), RBR, LLC, RLC, SetLineControl(RLC.lc)],
    ),
    # one option: the other setting is not owned and passes
    (["--br=l"], In.LBR, Out.SET_BR, [LBR, SetBaud(9600), RBR, LLC, RLC, OTHER_LC]),
    (["--lc=r"], In.RLC, Out.SET_LC, [LBR, RBR, LLC, RLC, SetLineControl(RLC.lc), OTHER_BR]),
]


FLOW = Flow(FlowMode.HARDWARE, FlowMode.HARDWARE)
LFLOW, RFLOW = LocalFlowStatus(Flow(FlowMode.NONE, FlowMode.NONE)), RemoteFlowStatus(FLOW)
CASES += [
    # --flow works like the others; without it flow control messages pass untouched
    (
        ["--flow=remote"],
        In.RFLOW,
        Out.SET_FLOW,
        [*ALL, LFLOW, RFLOW, SetFlow(FLOW)],
    ),
    (
        ["--br=l", "--flow=l"],
        In.LBR | In.LFLOW,
        Out.SET_BR | Out.SET_FLOW,
        [LBR, SetBaud(9600), RBR, LLC, RLC, OTHER_LC, LFLOW, SetFlow(LFLOW.flow), RFLOW],
    ),
]
ALL_WITH_FLOW = [*ALL, LFLOW, RFLOW, SetFlow(Flow(FlowMode.XON_XOFF))]


@pytest.mark.parametrize(("argv", "needs", "sends", "expected"), CASES)
def test_mapping(argv: list[str], needs: In, sends: Out, expected: list) -> None:
    f = make_filter(LineCtlFilter, argv)
    assert f.needs == needs
    assert f.sends == sends
    got = run_out(f, ALL_WITH_FLOW)
    if "--flow" not in " ".join(argv):
        expected = [*expected, LFLOW, RFLOW, SetFlow(Flow(FlowMode.XON_XOFF))]
    assert got == expected


def test_unrelated_messages_pass_unchanged() -> None:
    f = make_filter(LineCtlFilter, [])
    data = LineData(b"x")
    assert run_out(f, [data])[0] is data


@pytest.mark.parametrize("arg", ["--br=x", "--lc=", "--br=1200"])
def test_bad_value(arg: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(LineCtlFilter, [arg])
    assert exc.value.arg == arg
    assert exc.value.text == "Invalid value (expected l[ocal] or r[emote])"


def test_duplicated_option() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(LineCtlFilter, ["--br=l", "--br=r"])
    assert exc.value.text.startswith("Duplicated")


def test_unknown_option() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(LineCtlFilter, ["--baud=l"])
    assert exc.value.arg == "--baud=l"
