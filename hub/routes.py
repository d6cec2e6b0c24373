"""Route maps, exactly as spec 1.6 describes them.

Three maps are built in command-line order: data, explicit flow control, and
suppressed default flow control. After the last option, `finish()` adds the
default data routes (if no route option was given) and the default
flow-control routes (both directions wherever data flows both ways).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RouteBuilder", "Routes"]

Pair = tuple[int, int]


@dataclass(frozen=True)
class Routes:
    """Final routes: source index -> destination indexes, in port order."""

    data: dict[int, tuple[int, ...]]
    fc: dict[int, tuple[int, ...]]
    #: True when the default data routes were used.
    default: bool = False

    def sources(self) -> dict[int, list[int]]:
        """Destination -> the sources whose data reaches it, in port order."""
        out: dict[int, list[int]] = {}
        for s, ds in sorted(self.data.items()):
            for d in ds:
                out.setdefault(d, []).append(s)
        return out


@dataclass
class RouteBuilder:
    data: dict[Pair, None] = field(default_factory=dict)
    fc: dict[Pair, None] = field(default_factory=dict)
    no_default_fc: dict[Pair, None] = field(default_factory=dict)
    default_route: bool = True

    @staticmethod
    def _add(m: dict[Pair, None], frm: int, to: int, no_route: bool, no_echo: bool) -> None:
        if frm == to and no_echo and not no_route:
            return  # "except itself"
        if no_route:
            m.pop((frm, to), None)
        else:
            m.setdefault((frm, to), None)

    def route(self, srcs: list[int], dsts: list[int]) -> None:
        """--route: data from every src to every dst except itself."""
        self.default_route = False
        for s in srcs:
            for d in dsts:
                self._add(self.data, s, d, False, True)

    def bi_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.route(srcs, dsts)
        self.route(dsts, srcs)

    def no_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.default_route = False
        for s in srcs:
            for d in dsts:
                self._add(self.data, s, d, True, False)

    def echo_route(self, ports: list[int]) -> None:
        self.default_route = False
        for p in ports:
            self._add(self.data, p, p, False, False)

    def fc_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.default_route = False
        for s in srcs:
            for d in dsts:
                self._add(self.fc, s, d, False, False)

    def no_default_fc_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.default_route = False
        for s in srcs:
            for d in dsts:
                self._add(self.no_default_fc, s, d, False, False)

    def finish(self, nports: int) -> Routes:
        data = dict(self.data)
        if self.default_route and nports >= 2:
            for d in range(1, nports):
                data.setdefault((0, d), None)
            data.setdefault((1, 0), None)
        default_fc = {(b, a) for (a, b) in data if (b, a) in data}
        fc = set(self.fc) | (default_fc - set(self.no_default_fc))
        return Routes(
            data=_by_source(data, nports),
            fc=_by_source(fc, nports),
            default=self.default_route and nports >= 2,
        )


def _by_source(pairs: dict[Pair, None] | set[Pair], nports: int) -> dict[int, tuple[int, ...]]:
    """Source -> sorted destinations, in one pass over the pairs (All:All on 1,000
    ports is a million pairs; a scan of them per source took minutes)."""
    table: dict[int, list[int]] = {s: [] for s in range(nports)}
    for s, d in pairs:
        table[s].append(d)
    return {s: tuple(sorted(ds)) for s, ds in table.items()}
