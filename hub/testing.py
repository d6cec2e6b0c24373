"""Test helpers: a fake filter context with a manual clock.

Used by unit tests of filters and engines::

    ctx = FakeContext()
    f = PinMapFilter(ctx, PinMapFilter.configure({"--rts": "cts"}, {}))
    out = run_out(f, [ModemStatus(0x10, 0x10)], src=0)
    ctx.advance(1.5)   # fires timers due by then
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

from .filter import Filter
from .messages import Message
from .options import parse_options

__all__ = ["FakeContext", "FakeTimer", "make_filter", "run_in", "run_out"]


class FakeTimer:
    def __init__(self, when: float, callback: Callable[[], None]):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeContext:
    """A FilterContext whose clock only moves when the test calls advance()."""

    def __init__(self, port: int = 0, port_name: str = "P(0)", name: str = "filter"):
        self.port = port
        self.port_name = port_name
        self.name = name
        #: FilterContext.observer; a test may set it.
        self.observer = False
        self.log = logging.getLogger(f"test.{name}")
        self.now = 0.0
        self.sent_in: list[Message] = []
        self.sent_out: list[Message] = []
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._seq = itertools.count()

    def port_name_of(self, index: int) -> str:
        return f"P({index})"

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + delay_s, callback)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def send_in(self, msgs: list[Message]) -> None:
        self.sent_in.extend(msgs)

    def time(self) -> float:
        return self.now

    def send_out(self, msgs: list[Message], src: int | None = None) -> None:
        self.sent_out.extend(msgs)

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing due timers in order."""
        end = self.now + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            self.now = when
            if not timer.cancelled:
                timer.callback()
        self.now = end

    @property
    def pending_timers(self) -> int:
        return sum(1 for _, _, t in self._timers if not t.cancelled)


def make_filter(
    cls: type[Filter], argv: list[str] | None = None, ctx: Any = None, sticky: dict | None = None
) -> Filter:
    """Create a filter the way --create-filter does: parse `argv` with its usage text."""
    options = parse_options(cls.USAGE, argv or [])
    config = cls.configure(options, sticky or {})
    return cls(ctx or FakeContext(name=cls.NAME), config)


def run_in(f: Filter, msgs: list[Message]) -> tuple[list[Message], list[Message]]:
    """Feed `msgs` to f.on_in; return (out, echo)."""
    out: list[Message] = []
    echo: list[Message] = []
    for m in msgs:
        f.on_in(m, out, echo)
    return out, echo


def run_out(f: Filter, msgs: list[Message], src: int = 0) -> list[Message]:
    """Feed `msgs` (from port `src`) to f.on_out; return what it passes on."""
    out: list[Message] = []
    for m in msgs:
        f.on_out(m, src, out)
    return out
