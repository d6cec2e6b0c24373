"""purge: a peer's purge request becomes PURGE_TX; other PURGE_TX are dropped."""

from __future__ import annotations

import pytest

from filters.purge import PurgeFilter
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import Connect, LineData, PurgeTx, PurgeTxIn
from hub.options import option_names
from hub.testing import make_filter, run_out


def test_usage_and_capabilities() -> None:
    assert option_names(PurgeFilter.USAGE) == frozenset()
    f = make_filter(PurgeFilter)
    assert f.needs == In.PURGE_TX_IN
    assert f.sends == Out.PURGE_TX
    assert PurgeFilter.has_out() and not PurgeFilter.has_in()


@pytest.mark.parametrize(
    ("msgs", "expected"),
    [
        ([PurgeTxIn()], [PurgeTxIn(), PurgeTx()]),
        ([PurgeTx()], []),
        ([PurgeTxIn(), PurgeTx(), PurgeTxIn()], [PurgeTxIn(), PurgeTx(), PurgeTxIn(), PurgeTx()]),
        ([LineData(b"x"), Connect(True)], [LineData(b"x"), Connect(True)]),
    ],
)
def test_mapping(msgs: list, expected: list) -> None:
    assert run_out(make_filter(PurgeFilter), msgs, src=3) == expected


def test_other_messages_pass_unchanged() -> None:
    data = LineData(b"x")
    assert run_out(make_filter(PurgeFilter), [data])[0] is data


def test_takes_no_options() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(PurgeFilter, ["--tx"])
    assert exc.value.arg == "--tx"
