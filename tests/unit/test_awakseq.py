"""awakseq: connect on a byte sequence, found wherever it first occurs, across chunks."""

from __future__ import annotations

import docopt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from filters.awakseq import AwakSeqFilter, SequenceFinder
from hub.caps import In, Out
from hub.errors import UsageError
from hub.messages import Connect, LineData, ModemStatus
from hub.options import option_names
from hub.testing import FakeContext, make_filter, run_in, run_out

ON, OFF = Connect(True), Connect(False)


def awak(seq: str | None, ctx: FakeContext | None = None) -> AwakSeqFilter:
    f = make_filter(AwakSeqFilter, [] if seq is None else [f"--awak-seq={seq}"], ctx=ctx)
    assert isinstance(f, AwakSeqFilter)
    return f


def feed(f: AwakSeqFilter, *chunks: bytes) -> list:
    return run_in(f, [LineData(c) for c in chunks])[0]


def test_usage_parses() -> None:
    names = option_names(AwakSeqFilter.USAGE)
    assert names == {"--awak-seq"}
    after = docopt.parse_docstring_sections(AwakSeqFilter.USAGE).after_usage
    assert {o.longer for o in docopt.parse_options(after)} == names
    assert AwakSeqFilter.has_in() and AwakSeqFilter.has_out()
    f = awak("x")
    assert (f.needs, f.sends) == (In.NONE, Out.NONE)


# (sequence, chunks read from the port, expected output)
CASES = [
    ("abc", [b"xxabcyy"], [ON, LineData(b"yy")]),
    ("abc", [b"abc"], [ON]),
    ("abc", [b"xxab", b"cyy"], [ON, LineData(b"yy")]),
    ("abc", [b"a", b"b", b"c", b"d"], [ON, LineData(b"d")]),
    ("abc", [b"ab", b"xabc"], [ON]),
    # overlapping partial matches (hub4com missed these)
    ("aab", [b"aaab!"], [ON, LineData(b"!")]),
    ("aab", [b"aa", b"ab!"], [ON, LineData(b"!")]),
    ("abab", [b"ababab"], [ON, LineData(b"ab")]),
    ("abac", [b"aba", b"bac."], [ON, LineData(b".")]),
    # nothing until the sequence arrives; everything after it passes
    ("abc", [b"ab", b"zz"], []),
    ("abc", [b"abc", b"next", b"abc"], [ON, LineData(b"next"), LineData(b"abc")]),
    # empty chunks pass and do not disturb the search
    ("ab", [b"a", b"", b"b1"], [LineData(b""), ON, LineData(b"1")]),
]


@pytest.mark.parametrize(("seq", "chunks", "expected"), CASES)
def test_matching(seq: str, chunks: list[bytes], expected: list) -> None:
    assert feed(awak(seq), *chunks) == expected


def test_empty_sequence_connects_on_the_first_byte() -> None:
    f = awak(None)
    first = LineData(b"hello")
    out = run_in(f, [LineData(b""), first, LineData(b"more")])[0]
    assert out == [LineData(b""), ON, first, LineData(b"more")]
    assert out[2] is first


def test_data_passes_unchanged_once_connected() -> None:
    f = awak("go")
    feed(f, b"go")
    data = LineData(b"payload")
    assert run_in(f, [data])[0][0] is data


def test_ports_connect_true_is_discarded_and_false_rearms() -> None:
    f = awak("go")
    # not connected yet: the port's CONNECT(FALSE) is discarded too
    assert run_in(f, [ON, LineData(b"g"), OFF, LineData(b"o")])[0] == []
    assert feed(f, b"go") == [ON]
    # connected: CONNECT(FALSE) passes, then waiting starts again
    assert run_in(f, [OFF, LineData(b"data")])[0] == [OFF]
    assert feed(f, b"xgo!") == [ON, LineData(b"!")]


def test_other_messages_pass_while_waiting() -> None:
    f = awak("go")
    ms = ModemStatus(0x10, 0x10)
    assert run_in(f, [ms])[0][0] is ms


def test_out_counter_rearms_with_connect_false() -> None:
    ctx = FakeContext()
    f = awak("go", ctx)
    assert feed(f, b"go") == [ON]
    assert run_out(f, [ON, ON], src=1) == [ON, ON]
    assert run_out(f, [OFF], src=1) == [OFF]
    assert ctx.sent_in == [] and not f.waiting
    assert run_out(f, [OFF], src=1) == [OFF]
    assert ctx.sent_in == [OFF]  # hub4com sent no CONNECT(FALSE) here
    assert f.waiting
    assert feed(f, b"data") == []
    assert feed(f, b"go") == [ON]


def test_out_counter_rearm_while_waiting_sends_nothing() -> None:
    ctx = FakeContext()
    f = awak("go", ctx)
    feed(f, b"g")
    run_out(f, [ON, OFF])
    assert ctx.sent_in == []
    assert feed(f, b"o") == []  # the partial match was forgotten


def test_unbalanced_out_connect_false_rearms() -> None:
    ctx = FakeContext()
    f = awak("go", ctx)
    feed(f, b"go")
    run_out(f, [OFF])
    assert f.connections == 0
    assert ctx.sent_in == [OFF]
    assert f.waiting


def test_sequence_is_the_arguments_bytes() -> None:
    f = awak("é\udcff")  # what Python gives for the arguments bytes c3 a9 ff
    assert feed(f, b"\xc3\xa9\xff!") == [ON, LineData(b"!")]


def test_duplicated_option() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(AwakSeqFilter, ["--awak-seq=a", "--awak-seq=b"])
    assert exc.value.text.startswith("Duplicated")


def test_unknown_option() -> None:
    with pytest.raises(UsageError) as exc:
        make_filter(AwakSeqFilter, ["--seq=a"])
    assert exc.value.arg == "--seq=a"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    seq=st.binary(min_size=1, max_size=6),
    stream=st.binary(max_size=200),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=20),
    alphabet=st.sampled_from([b"ab", b"abc", None]),
)
def test_finds_the_first_occurrence_anywhere(
    seq: bytes, stream: bytes, cuts: list[int], alphabet: bytes | None
) -> None:
    if alphabet is not None:  # small alphabets make overlapping partial matches common
        seq = seq.translate(bytes(alphabet[i % len(alphabet)] for i in range(256)))
        stream = stream.translate(bytes(alphabet[i % len(alphabet)] for i in range(256)))
    finder = SequenceFinder(seq)
    passed: list[bytes] = []
    found = False
    for chunk in split(stream, cuts):
        if found:
            passed.append(chunk)
            continue
        end = finder.feed(chunk)
        if end >= 0:
            found = True
            passed.append(chunk[end:])
    first = stream.find(seq)
    assert found == (first >= 0)
    if found:
        assert b"".join(passed) == stream[first + len(seq) :]


@given(
    seq=st.binary(min_size=1, max_size=4).map(lambda b: b.translate(bytes(b"xy"[i % 2] for i in range(256)))),
    stream=st.binary(max_size=100).map(lambda b: b.translate(bytes(b"xy"[i % 2] for i in range(256)))),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_filter_passes_exactly_the_bytes_after_the_sequence(
    seq: bytes, stream: bytes, cuts: list[int]
) -> None:
    f = make_filter(AwakSeqFilter, ["--awak-seq=" + seq.decode()])
    out = run_in(f, [LineData(c) for c in split(stream, cuts)])[0]
    first = stream.find(seq)
    if first < 0:
        assert all(m == LineData(b"") for m in out)
    else:
        assert out.count(ON) == 1
        after = out[out.index(ON) + 1 :]
        assert b"".join(m.data for m in after) == stream[first + len(seq) :]
