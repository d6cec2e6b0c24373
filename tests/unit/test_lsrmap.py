"""lsrmap: line errors from the sources become SET_LSR for the port."""

from __future__ import annotations

import pytest

from filters.lsrmap import LsrMapFilter
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import LineData, LineStatus, Lsr, SetLsr
from hub.options import option_names
from hub.testing import make_filter, run_out

ERR = Lsr.OE | Lsr.PE | Lsr.FE | Lsr.BI | Lsr.FIFOERR


def test_usage_and_capabilities() -> None:
    assert option_names(LsrMapFilter.USAGE) == frozenset()
    f = make_filter(LsrMapFilter)
    assert f.needs == In.LSR
    assert f.sends == Out.LSR
    assert LsrMapFilter.has_out() and not LsrMapFilter.has_in()


@pytest.mark.parametrize(
    ("msg", "inserted"),
    [
        (LineStatus(Lsr.PE, Lsr.PE), [SetLsr(Lsr.PE, Lsr.PE)]),
        (LineStatus(0xFF, 0xFF), [SetLsr(ERR, ERR)]),
        (LineStatus(Lsr.BI | Lsr.DR, 0xFF), [SetLsr(Lsr.BI, Lsr.BI)]),
        # bits outside the mask are not reported
        (LineStatus(Lsr.OE | Lsr.FE, Lsr.FE), [SetLsr(Lsr.FE, Lsr.FE)]),
        (LineStatus(Lsr.OE, Lsr.PE), []),
        # cleared errors and non-error bits insert nothing
        (LineStatus(0, ERR), []),
        (LineStatus(Lsr.DR | Lsr.THRE | Lsr.TEMT, 0xFF), []),
    ],
)
def test_line_status(msg: LineStatus, inserted: list) -> None:
    f = make_filter(LsrMapFilter)
    out = run_out(f, [msg])
    assert out[0] is msg
    assert out[1:] == inserted


def test_other_messages_pass_unchanged() -> None:
    f = make_filter(LsrMapFilter)
    msgs = [LineData(b"x"), SetLsr(Lsr.PE, Lsr.PE)]
    out = run_out(f, msgs)
    assert all(a is b for a, b in zip(out, msgs, strict=True))


def test_takes_no_options() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(LsrMapFilter, ["--lsr=pe"])
    assert exc.value.arg == "--lsr=pe"
