"""Route maps, exactly as spec 1.6 describes them.

Three maps are built in command-line order: data, explicit flow control, and
suppressed default flow control. After the last option, `finish()` adds the
default data routes (if no route option was given) and the default
flow-control routes (both directions wherever data flows both ways).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RouteBuilder", "Routes"]


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


#: Source -> its destinations.
Table = dict[int, set[int]]


@dataclass
class RouteBuilder:
    """The three maps, each source -> destinations, built with set operations so that
    All:All on 1,000 ports (a million pairs) takes milliseconds, not seconds."""

    data: Table = field(default_factory=dict)
    fc: Table = field(default_factory=dict)
    no_default_fc: Table = field(default_factory=dict)
    default_route: bool = True

    @staticmethod
    def _add(m: Table, srcs: list[int], dsts: list[int], except_self: bool = False) -> None:
        targets = set(dsts)
        for s in srcs:
            ds = m.setdefault(s, set())
            if except_self and s in targets and s not in ds:
                ds |= targets
                ds.discard(s)  # "except itself" (an echo route given before stays)
            else:
                ds |= targets

    def route(self, srcs: list[int], dsts: list[int]) -> None:
        """--route: data from every src to every dst except itself."""
        self.default_route = False
        self._add(self.data, srcs, dsts, except_self=True)

    def bi_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.route(srcs, dsts)
        self.route(dsts, srcs)

    def no_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.default_route = False
        targets = set(dsts)
        for s in srcs:
            if s in self.data:
                self.data[s] -= targets

    def echo_route(self, ports: list[int]) -> None:
        self.default_route = False
        for p in ports:
            self.data.setdefault(p, set()).add(p)

    def fc_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.default_route = False
        self._add(self.fc, srcs, dsts)

    def no_default_fc_route(self, srcs: list[int], dsts: list[int]) -> None:
        self.default_route = False
        self._add(self.no_default_fc, srcs, dsts)

    def finish(self, nports: int) -> Routes:
        data = self.data
        if self.default_route and nports >= 2:
            data = {s: set(ds) for s, ds in data.items()}
            data.setdefault(0, set()).update(range(1, nports))
            data.setdefault(1, set()).add(0)
        none: set[int] = set()
        out_data: dict[int, tuple[int, ...]] = {}
        out_fc: dict[int, tuple[int, ...]] = {}
        # One tuple per distinct route: 1,000 listener slots all route to the device.
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        for a in range(nports):
            ds = data.get(a, none)
            # default flow control: both ways wherever data flows both ways
            back = {b for b in ds if a in data.get(b, none)} - self.no_default_fc.get(a, none)
            dests, fc = tuple(sorted(ds)), tuple(sorted(self.fc.get(a, none) | back))
            out_data[a] = shared.setdefault(dests, dests)
            out_fc[a] = shared.setdefault(fc, fc)
        return Routes(out_data, out_fc, default=self.default_route and nports >= 2)
