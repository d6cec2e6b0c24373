"""Log hygiene for a hub that peers can talk to: peer strings and repeated warnings.

Two mechanisms, each in one place:

* `peer_text` makes any string a peer sent (an RFC 2217 signature, a terminal
  type, a host name, a certificate name, an MQTT payload excerpt) safe for one
  log line: quoted, with control characters, escape sequences and line breaks
  escaped, and cut to a bound. Every log call that formats peer data uses it,
  so a peer can neither forge log lines nor drive a terminal that shows the log.

* `RepeatLimiter` is a `logging.Filter` the hub puts on its log handlers once
  start-up is done (`install_limiter`). A warning (or error) of the same kind
  on the same port is logged once; further ones within `interval_s` (10 s) are
  counted, not logged, and summarised in one line with their count: on the
  next such warning after the interval, or by a timer on the hub's loop when
  they stop. So a peer repeating a bad request writes a bounded number of log
  lines, and call sites never limit their own warnings.

  The kind is the logger and the message template (the format string before
  its arguments); the port is the ``port`` attribute a filter's logger adds
  (see `PortLogger`), else the first known port name among the arguments or
  in the message. A template with no words of its own (``"%s: %s"``) has the
  message with its digits masked as its kind. A call that limits itself (the
  per-address limiters of the TCP listeners) passes ``extra=SELF_LIMITED``.
  Info and debug lines are never limited.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PEER_TEXT_LIMIT",
    "REPEAT_INTERVAL_S",
    "SELF_LIMITED",
    "LimiterHandle",
    "PortLogger",
    "RepeatLimiter",
    "install_limiter",
    "peer_text",
]

#: Characters of a peer string kept in a log line.
PEER_TEXT_LIMIT = 80
#: A repeated warning is summarised at most this often.
REPEAT_INTERVAL_S = 10.0
#: ``extra=`` for a log call that limits itself: the RepeatLimiter lets it through.
SELF_LIMITED: dict[str, Any] = {"ratelimited": True}

#: Keys kept at most; beyond, the oldest quiet ones are forgotten.
_MAX_KEYS = 4096
_SPEC_RE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]")
_WORD_RE = re.compile(r"[A-Za-z]{2,}")
_DIGITS_RE = re.compile(r"[0-9]+")


def peer_text(value: object, limit: int = PEER_TEXT_LIMIT) -> str:
    """`value` (str, bytes or anything else) as a quoted, escaped, bounded string.

    Bytes are read as UTF-8 (undecodable bytes shown as ``\\xNN``). Non-printable
    characters (C0/C1 controls, ESC, CR, LF, Unicode line separators and
    direction overrides) are escaped as Python's repr does; past `limit`
    characters the text is cut and its full length added:
    ``'evil\\nFAKE: ...'... (200 bytes in all)``. Never raises.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        unit, total = "bytes", len(raw)
        # UTF-8 takes at most 4 bytes a character: decode no more than can be shown.
        text = raw[: 4 * limit + 4].decode("utf-8", "backslashreplace")
    else:
        text = value if isinstance(value, str) else str(value)
        unit, total = "chars", len(text)
    if len(text) > limit:
        return f"{text[:limit]!r}... ({total} {unit} in all)"
    return repr(text)


class PortLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records carry the port they are about (``record.port``).

    The hub gives each filter instance one, so the RepeatLimiter keys its
    warnings by port even when the message does not name the port.
    """

    def __init__(self, logger: logging.Logger, port: Callable[[], str]):
        super().__init__(logger, {})
        self._port = port

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(kwargs.get("extra") or {})
        extra.setdefault("port", self._port())
        kwargs["extra"] = extra
        return msg, kwargs


@dataclass(slots=True)
class _Seen:
    """One kind of warning on one port: when its interval began and what it held back."""

    since: float
    suppressed: int = 0
    last: logging.LogRecord | None = None


class RepeatLimiter(logging.Filter):
    """Lets the first warning of a kind on a port through, then one summary per interval.

    `clock` is any monotonic clock in seconds; `ports` the port names to look
    for in records without a ``port`` attribute (`set_ports`).
    """

    def __init__(
        self,
        interval_s: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        ports: Iterable[str] = (),
    ):
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self._seen: dict[tuple[str, str, str | None], _Seen] = {}
        #: Template -> it has words of its own (a cache).
        self._worded: dict[str, bool] = {}
        self._port_re: re.Pattern[str] | None = None
        self._ports: frozenset[str] = frozenset()
        #: Records held back so far (all kinds).
        self.suppressed_total = 0
        self.set_ports(ports)

    def set_ports(self, names: Iterable[str]) -> None:
        """The port names to recognise in arguments and messages."""
        self._ports = frozenset(names)
        if self._ports:
            alternatives = "|".join(re.escape(n) for n in sorted(self._ports, key=len, reverse=True))
            self._port_re = re.compile(alternatives)
        else:
            self._port_re = None

    @property
    def pending(self) -> int:
        """Records held back and not summarised yet."""
        return sum(s.suppressed for s in self._seen.values())

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "ratelimited", False):
            return True
        # One verdict per record, however many handlers the limiter sits on.
        verdict: bool | None = record.__dict__.get("_repeat_verdict")
        if verdict is None:
            verdict = record.__dict__["_repeat_verdict"] = self._decide(record)
        return verdict

    def _decide(self, record: logging.LogRecord) -> bool:
        key = (record.name, self._kind(record), self._port_of(record))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None:
            self._remember(key, _Seen(now))
            return True
        if now - seen.since < self.interval_s:
            seen.suppressed += 1
            seen.last = record
            self.suppressed_total += 1
            return False
        if seen.suppressed:
            _add_summary(record, seen.suppressed, now - seen.since)
        seen.since, seen.suppressed, seen.last = now, 0, None
        return True

    def flush(self, force: bool = False) -> list[logging.LogRecord]:
        """Summary records of what was held back in intervals that are over (all with `force`).

        Each summary is the last record held back, with the count added; it
        carries ``ratelimited`` so it passes this filter.
        """
        now = self.clock()
        out = []
        for seen in self._seen.values():
            if seen.suppressed and seen.last is not None and (force or now - seen.since >= self.interval_s):
                rec = logging.makeLogRecord(seen.last.__dict__)
                rec.__dict__.pop("_repeat_verdict", None)
                _add_summary(rec, seen.suppressed, now - seen.since)
                rec.ratelimited = True
                rec.created = time.time()
                out.append(rec)
                seen.since, seen.suppressed, seen.last = now, 0, None
        return out

    def next_due_s(self) -> float | None:
        """Seconds until the next summary is due (None: nothing held back)."""
        now = self.clock()
        due = [s.since + self.interval_s - now for s in self._seen.values() if s.suppressed]
        return max(0.0, min(due)) if due else None

    # ---- keys -------------------------------------------------------------------

    def _kind(self, record: logging.LogRecord) -> str:
        template = record.msg if isinstance(record.msg, str) else repr(type(record.msg))
        worded = self._worded.get(template)
        if worded is None:
            if len(self._worded) >= _MAX_KEYS:
                self._worded.clear()
            worded = self._worded[template] = bool(_WORD_RE.search(_SPEC_RE.sub("", template)))
        if worded:
            return template
        # No words of its own ("%s: %s"): the message, numbers masked, is the kind.
        return _DIGITS_RE.sub("#", record.getMessage())[:120]

    def _port_of(self, record: logging.LogRecord) -> str | None:
        port = getattr(record, "port", None)
        if port is not None:
            return str(port)
        args = record.args
        if isinstance(args, tuple):
            for a in args:
                if isinstance(a, str) and a in self._ports:
                    return a
        if self._port_re is not None:
            m = self._port_re.search(record.getMessage())
            if m is not None:
                return m.group(0)
        return None

    def _remember(self, key: tuple[str, str, str | None], seen: _Seen) -> None:
        if len(self._seen) >= _MAX_KEYS:
            now = self.clock()
            interval = self.interval_s
            quiet = [k for k, s in self._seen.items() if not s.suppressed and now - s.since >= interval]
            for k in quiet or list(self._seen)[: _MAX_KEYS // 4]:
                del self._seen[k]
        self._seen[key] = seen


def _add_summary(record: logging.LogRecord, count: int, elapsed_s: float) -> None:
    """Append '(N more like this in the last T s)' to `record`'s message."""
    text = record.getMessage()
    more = "1 more like this" if count == 1 else f"{count} more like this"
    record.msg = f"%s ({more} in the last {max(elapsed_s, 0.0):.0f} s)"
    record.args = (text,)
    record.exc_info = None  # the first one carried the traceback
    record.exc_text = None


class LimiterHandle:
    """A RepeatLimiter installed on handlers, with its summary timer on a loop."""

    def __init__(
        self, limiter: RepeatLimiter, handlers: list[logging.Handler], loop: asyncio.AbstractEventLoop | None
    ):
        self.limiter = limiter
        self.handlers = handlers
        self.loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        for h in handlers:
            h.addFilter(limiter)
        if loop is not None:
            self._arm(limiter.interval_s)

    def _arm(self, delay_s: float) -> None:
        if self.loop is not None and not self._closed:
            self._timer = self.loop.call_later(delay_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.emit(self.limiter.flush())
        due = self.limiter.next_due_s()
        self._arm(self.limiter.interval_s if due is None else max(0.1, due))

    def emit(self, records: list[logging.LogRecord]) -> None:
        for rec in records:
            for h in self.handlers:
                if rec.levelno >= h.level:
                    h.handle(rec)

    def close(self) -> None:
        """Stop the timer, log what is still held back, take the filter off. Never raises."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.emit(self.limiter.flush(force=True))
        for h in self.handlers:
            h.removeFilter(self.limiter)


def install_limiter(
    loop: asyncio.AbstractEventLoop | None,
    ports: Iterable[str] = (),
    interval_s: float = REPEAT_INTERVAL_S,
    handlers: list[logging.Handler] | None = None,
) -> LimiterHandle:
    """Put a RepeatLimiter on `handlers` (default: the root logger's), summaries timed on `loop`."""
    limiter = RepeatLimiter(interval_s, ports=ports)
    if loop is not None:
        limiter.clock = loop.time
    if handlers is None:
        handlers = logging.getLogger().handlers
    return LimiterHandle(limiter, list(handlers), loop)
