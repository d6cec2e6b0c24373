"""tag and tag-sync: interleave, demultiplex across chunks, resynchronise after garbage."""

from __future__ import annotations

import docopt
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from filters.tag import TagDemux, TagFilter, TagSyncFilter, interleave
from hub.errors import UsageError
from hub.messages import Connect, LineData, Message, ModemStatus
from hub.options import option_names
from hub.testing import make_filter, run_in, run_out


def tag(n: int) -> TagFilter:
    f = make_filter(TagFilter, [f"--tag={n}"])
    assert isinstance(f, TagFilter)
    return f


def sync(s: int, period: int | None = None) -> TagSyncFilter:
    argv = [f"--sync={s}"] + ([] if period is None else [f"--period={period}"])
    f = make_filter(TagSyncFilter, argv)
    assert isinstance(f, TagSyncFilter)
    return f


def data_of(msgs: list[Message]) -> bytes:
    assert all(type(m) is LineData for m in msgs)
    return b"".join(m.data for m in msgs if isinstance(m, LineData))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@pytest.mark.parametrize(("cls", "names"), [(TagFilter, {"--tag"}), (TagSyncFilter, {"--sync", "--period"})])
def test_usage_parses(cls: type, names: set[str]) -> None:
    assert option_names(cls.USAGE) == names
    after = docopt.parse_docstring_sections(cls.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert cls.has_in() and cls.has_out()


# ---- tag ------------------------------------------------------------------------


def test_in_tags_every_byte() -> None:
    f = tag(7)
    assert run_in(f, [LineData(b"abc")]) == ([LineData(b"\x07a\x07b\x07c")], [])
    assert interleave(0, b"\x00\xff") == b"\x00\x00\x00\xff"


def test_in_passes_other_messages_unchanged() -> None:
    f = tag(7)
    msgs = [LineData(b""), Connect(True), ModemStatus(0x10, 0x10)]
    out, _ = run_in(f, msgs)
    assert all(a is b for a, b in zip(out, msgs, strict=True))


# (chunks sent to the port, expected data for tag 1)
OUT_CASES = [
    ([b"\x01a\x01b"], b"ab"),
    ([b"\x02a\x02b"], b""),
    ([b"\x01a\x02b\x01c\x02d"], b"ac"),
    # values equal to tags are values, not tags
    ([b"\x02\x01\x01\x02"], b"\x02"),
    # alignment carries across chunks, including a split pair
    ([b"\x01", b"a\x02", b"b\x01", b"c"], b"ac"),
    ([b"\x01a\x02", b"b"], b"a"),
    ([b"\x02", b"\x01", b"\x01", b"\x02"], b"\x02"),
]


@pytest.mark.parametrize(("chunks", "expected"), OUT_CASES)
def test_out_keeps_own_tag(chunks: list[bytes], expected: bytes) -> None:
    assert data_of(run_out(tag(1), [LineData(c) for c in chunks])) == expected


def test_out_drops_empty_results_and_passes_other_messages() -> None:
    f = tag(1)
    c = Connect(True)
    out = run_out(f, [LineData(b"\x02x"), c, LineData(b"")])
    assert out[0] is c and out[1] == LineData(b"") and len(out) == 2


@given(
    streams=st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=30)), max_size=20),
    cuts=st.lists(st.integers(0, 2000), max_size=15),
)
def test_mux_demux_round_trip(streams: list[tuple[int, bytes]], cuts: list[int]) -> None:
    senders = {t: tag(t) for t in range(4)}
    link = b"".join(data_of(run_in(senders[t], [LineData(d)])[0]) for t, d in streams)
    for t in range(4):
        receiver = tag(t)
        got = data_of(run_out(receiver, [LineData(c) for c in split(link, cuts)]))
        assert got == b"".join(d for s, d in streams if s == t)


@given(data=st.binary(max_size=400), mine=st.integers(0, 254))
def test_demux_matches_a_reference(data: bytes, mine: int) -> None:
    expected = bytes(v for t, v in zip(data[0::2], data[1::2], strict=False) if t == mine)
    assert TagDemux(mine).feed(data) == expected


# ---- tag-sync ----------------------------------------------------------------------


def test_sync_out_before_first_tag_only_by_default() -> None:
    f = sync(0xAA)
    out = run_out(f, [LineData(b"\x01a\x02b"), LineData(b"\x01c")])
    assert out == [LineData(b"\xaa\x01a\x02b"), LineData(b"\x01c")]


def test_sync_out_passes_unchanged_when_nothing_is_due() -> None:
    f = sync(0xAA)
    run_out(f, [LineData(b"\x01a")])
    msg = LineData(b"\x01b")
    assert run_out(f, [msg])[0] is msg


@pytest.mark.parametrize(
    ("period", "chunks", "expected"),
    [
        (1, [b"\x01a\x02b"], b"S\x01aS\x02b"),
        (2, [b"\x01a\x02b\x03c\x04d\x05e"], b"S\x01a\x02bS\x03c\x04dS\x05e"),
        # the count carries across chunks, also across a split pair
        (2, [b"\x01a\x02", b"b\x03c", b"\x04d"], b"S\x01a\x02bS\x03c\x04d"),
        (3, [b"\x01", b"a", b"\x02", b"b\x03c\x04d"], b"S\x01a\x02b\x03cS\x04d"),
    ],
)
def test_sync_out_period(period: int, chunks: list[bytes], expected: bytes) -> None:
    f = sync(ord("S"), period)
    assert data_of(run_out(f, [LineData(c) for c in chunks])) == expected


def test_sync_out_restarts_when_the_link_connects() -> None:
    f = sync(ord("S"))
    assert data_of(run_out(f, [LineData(b"\x01a")])) == b"S\x01a"
    assert data_of(run_out(f, [LineData(b"\x01b")])) == b"\x01b"
    c = Connect(True)
    assert run_in(f, [c])[0][0] is c
    assert data_of(run_out(f, [LineData(b"\x01c")])) == b"S\x01c"


# (chunks read from the link, expected data passed on)
IN_CASES = [
    ([b"S\x01a\x02b"], b"\x01a\x02b"),
    # a sync value in a value position is data
    ([b"S\x01S\x02b"], b"\x01S\x02b"),
    ([b"SS\x01a"], b"\x01a"),
    ([b"\x01aS\x02bS"], b"\x01a\x02b"),
    # position tracking across chunks
    ([b"\x01", b"S", b"S\x02b"], b"\x01S\x02b"),
    ([b"S", b"\x01aS", b"\x02S"], b"\x01a\x02S"),
]


@pytest.mark.parametrize(("chunks", "expected"), IN_CASES)
def test_sync_in_drops_sync_where_a_tag_is_expected(chunks: list[bytes], expected: bytes) -> None:
    f = sync(ord("S"))
    assert data_of(run_in(f, [LineData(c) for c in chunks])[0]) == expected


def test_sync_in_passes_unchanged_without_sync_bytes() -> None:
    f = sync(ord("S"))
    msg = LineData(b"\x01a\x02S")  # the S is a value
    assert run_in(f, [msg])[0][0] is msg
    assert run_in(f, [LineData(b"S")])[0] == []  # all dropped: no empty message


def test_misaligned_reader_resynchronises_on_the_sync_byte() -> None:
    link_in = sync(ord("S"))
    demux = tag(1)
    # one stray byte puts the reader out of step; the next sync re-aligns it
    stream = [b"\x07", b"S\x01a\x02bS\x01c"]
    passed = run_in(link_in, [LineData(c) for c in stream])[0]
    assert data_of(run_out(demux, passed)) == b"ac"


@given(
    sync_value=st.integers(0, 254),
    tags=st.lists(st.integers(0, 254), min_size=1, max_size=4, unique=True),
    streams=st.lists(
        st.tuples(st.integers(0, 3), st.binary(min_size=1, max_size=20)), min_size=1, max_size=10
    ),
    garbage=st.binary(max_size=9),
    cuts=st.lists(st.integers(0, 1000), max_size=10),
)
def test_link_recovers_after_garbage(
    sync_value: int,
    tags: list[int],
    streams: list[tuple[int, bytes]],
    garbage: bytes,
    cuts: list[int],
) -> None:
    assume(sync_value not in tags)
    senders = [tag(t) for t in tags]
    link_out = sync(sync_value, 1)
    wire = b"".join(
        data_of(run_out(link_out, run_in(senders[i % len(tags)], [LineData(d)])[0])) for i, d in streams
    )
    link_in = sync(sync_value)
    passed = run_in(link_in, [LineData(c) for c in split(garbage + wire, cuts)])[0]
    for i, t in enumerate(tags):
        got = data_of(run_out(tag(t), passed))
        expected = b"".join(d for s, d in streams if s % len(tags) == i)
        # whatever the garbage produced, the real stream follows intact
        assert got.endswith(expected)
        assert len(got) - len(expected) <= len(garbage) // 2 + 1


@pytest.mark.parametrize(
    ("cls", "argv", "arg", "text"),
    [
        (TagFilter, [], "--tag=<0..254>", "Missing mandatory option"),
        (TagFilter, ["--tag=255"], "--tag=255", "Invalid value (expected a number from 0 to 254)"),
        (TagFilter, ["--tag=-1"], "--tag=-1", "Invalid value (expected a number from 0 to 254)"),
        (TagFilter, ["--tag=x"], "--tag=x", "Invalid value (expected a number from 0 to 254)"),
        (TagFilter, ["--tag="], "--tag=", "Invalid value (expected a number from 0 to 254)"),
        (TagSyncFilter, [], "--sync=<0..254>", "Missing mandatory option"),
        (TagSyncFilter, ["--period=2"], "--sync=<0..254>", "Missing mandatory option"),
        (TagSyncFilter, ["--sync=300"], "--sync=300", "Invalid value (expected a number from 0 to 254)"),
        (
            TagSyncFilter,
            ["--sync=1", "--period=x"],
            "--period=x",
            "Invalid period (expected a number of tags, 0 or more)",
        ),
        (
            TagSyncFilter,
            ["--sync=1", "--period=-1"],
            "--period=-1",
            "Invalid period (expected a number of tags, 0 or more)",
        ),
    ],
)
def test_bad_options(cls: type, argv: list[str], arg: str, text: str) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(cls, argv)
    assert (exc.value.arg, exc.value.text) == (arg, text)


@pytest.mark.parametrize(
    ("cls", "argv"), [(TagFilter, ["--tag=1", "--tag=2"]), (TagSyncFilter, ["--sync=1", "--sync=2"])]
)
def test_duplicated_option(cls: type, argv: list[str]) -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(cls, argv)
    assert exc.value.text.startswith("Duplicated")
