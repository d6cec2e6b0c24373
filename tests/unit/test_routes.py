from hypothesis import given
from hypothesis import strategies as st

from hub.routes import RouteBuilder


def test_default_routes_port0_to_all_and_1_back():
    r = RouteBuilder().finish(3)
    assert r.data == {0: (1, 2), 1: (0,), 2: ()}
    # flow control only where data flows both ways
    assert r.fc == {0: (1,), 1: (0,), 2: ()}


def test_single_port_has_no_routes():
    assert RouteBuilder().finish(1).data == {0: ()}


def test_route_all_all_excludes_self():
    b = RouteBuilder()
    b.route([0, 1, 2], [0, 1, 2])
    r = b.finish(3)
    assert r.data == {0: (1, 2), 1: (0, 2), 2: (0, 1)}


def test_echo_route_adds_self_and_self_fc():
    b = RouteBuilder()
    b.echo_route([0])
    r = b.finish(2)
    assert r.data[0] == (0,)
    assert r.fc[0] == (0,)


def test_no_route_then_route_in_order():
    b = RouteBuilder()
    b.route([0], [1, 2])
    b.no_route([0], [1])
    assert b.finish(3).data[0] == (2,)
    b.route([0], [1])
    assert b.finish(3).data[0] == (1, 2)


def test_fc_route_alone_leaves_no_data_routes():
    b = RouteBuilder()
    b.fc_route([2], [0])
    r = b.finish(3)
    assert all(not d for d in r.data.values())
    assert r.fc[2] == (0,)


def test_no_default_fc_route():
    b = RouteBuilder()
    b.bi_route([0], [1])
    b.no_default_fc_route([1], [0])
    r = b.finish(2)
    assert r.fc == {0: (1,), 1: ()}


def test_all_all_on_many_ports_and_sources_by_destination():
    n = 300
    b = RouteBuilder()
    b.route(list(range(n)), list(range(n)))
    r = b.finish(n)
    assert all(r.data[s] == tuple(d for d in range(n) if d != s) for s in range(n))
    assert r.fc == r.data  # data flows both ways everywhere
    assert r.sources() == {d: [s for s in range(n) if s != d] for d in range(n)}


def test_sources_lists_each_destinations_sources_in_port_order():
    b = RouteBuilder()
    b.route([2], [0])
    b.route([1], [0, 2])
    b.echo_route([1])
    assert b.finish(3).sources() == {0: [1, 2], 1: [1], 2: [1]}


# ---- the builder against the spec's pair-by-pair rules (hypothesis) ------------------------


class PairModel:
    """Spec 1.6 pair by pair, as plainly as possible: the reference for RouteBuilder."""

    def __init__(self) -> None:
        self.data: set[tuple[int, int]] = set()
        self.fc: set[tuple[int, int]] = set()
        self.no_fc: set[tuple[int, int]] = set()
        self.default = True

    def apply(self, op: str, srcs: list[int], dsts: list[int]) -> None:
        self.default = False
        pairs = {(s, d) for s in srcs for d in dsts}
        if op == "route":
            self.data |= {(s, d) for s, d in pairs if s != d}
        elif op == "no_route":
            self.data -= pairs
        elif op == "echo_route":
            self.data |= {(p, p) for p in srcs}
        elif op == "fc_route":
            self.fc |= pairs
        else:
            self.no_fc |= pairs

    def finish(self, n: int) -> tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]]]:
        data = set(self.data)
        if self.default and n >= 2:
            data |= {(0, d) for d in range(1, n)} | {(1, 0)}
        fc = self.fc | ({(b, a) for a, b in data if (b, a) in data} - self.no_fc)
        table = lambda pairs: {s: tuple(sorted(d for a, d in pairs if a == s)) for s in range(n)}  # noqa: E731
        return table(data), table(fc)


OPS = ["route", "no_route", "echo_route", "fc_route", "no_default_fc_route"]
lists = st.lists(st.integers(0, 5), max_size=6)


@given(st.lists(st.tuples(st.sampled_from(OPS), lists, lists), max_size=8), st.integers(1, 6))
def test_builder_matches_the_pair_rules(ops: list[tuple[str, list[int], list[int]]], n: int) -> None:
    b, model = RouteBuilder(), PairModel()
    for op, srcs, dsts in ops:
        srcs, dsts = [s % n for s in srcs], [d % n for d in dsts]
        if op == "echo_route":
            b.echo_route(srcs)
        else:
            getattr(b, op)(srcs, dsts)
        model.apply(op, srcs, dsts)
    r = b.finish(n)
    assert (r.data, r.fc) == model.finish(n)
